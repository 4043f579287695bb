/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * libkvip: a small client for the "kvip" generic netlink family.
 *
 * The contract is <linux/kvip.h> (include/uapi/linux/kvip.h in the repo).
 * This library is shared by kvipctl and the sync daemon, so it never prints
 * and never exits: every function returns 0 or a negative errno, and
 * kvip_errmsg() gives the details of the last failure (the kernel's extended
 * ACK message when there is one).
 *
 * A session (struct kvip) is one netlink socket; it is not thread safe. A
 * chunked endpoint set is staged per socket in the kernel, so one session
 * must be used for all the chunks (kvip_set_endpoints does that).
 */
#ifndef KVIP_LIB_H
#define KVIP_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <linux/kvip.h>

union kvip_addr {
	struct in_addr in;
	struct in6_addr in6;
	uint8_t raw[16];
};

struct kvip_stats {
	bool has_conns;			/* a service's: KVIP_SERVICE_F_CONN_STATS */
	uint64_t conns;
	uint64_t rejects;
	uint64_t drops;
};

/* An address prefix: bits of addr past prefix are zero. */
struct kvip_cidr {
	uint16_t family;		/* AF_INET or AF_INET6 */
	uint8_t prefix;			/* 0..32 or 0..128 */
	union kvip_addr addr;		/* network order */
};

/* A session affinity entry (replies only). */
struct kvip_affinity {
	uint16_t family;
	uint16_t port;			/* endpoint port, host order */
	uint32_t expires_ms;		/* milliseconds left */
	union kvip_addr client;
	union kvip_addr endpoint;
};

struct kvip_frontend {
	uint8_t type;			/* KVIP_FRONTEND_* */
	uint16_t family;		/* AF_INET or AF_INET6; 0 for NODEPORT */
	uint16_t port;			/* host order */
	union kvip_addr addr;		/* network order */
};

struct kvip_endpoint {
	uint16_t family;		/* AF_INET or AF_INET6 */
	uint16_t port;			/* host order */
	uint32_t weight;		/* 0..KVIP_WEIGHT_MAX */
	uint32_t flags;			/* KVIP_ENDPOINT_F_* */
	union kvip_addr addr;		/* network order */
	bool has_stats;			/* replies: KVIP_ENDPOINT_A_STATS */
	struct kvip_stats stats;	/* replies only */
};

struct kvip_service {
	char name[KVIP_NAME_MAX + 1];
	uint8_t proto;			/* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
	uint32_t flags;			/* KVIP_SERVICE_F_* */
	uint32_t affinity_timeout;	/* seconds; 0: the kernel's default */

	struct kvip_cidr *source_ranges;
	size_t n_source_ranges, cap_source_ranges;

	struct kvip_frontend *frontends;
	size_t n_frontends, cap_frontends;

	struct kvip_endpoint *endpoints;
	size_t n_endpoints, cap_endpoints;

	/* Requests: send KVIP_A_ENDPOINTS with NEW_SERVICE (even if empty). */
	bool has_endpoints;

	/* Replies only. */
	bool has_endpoint_count;
	uint32_t endpoint_count;	/* KVIP_A_ENDPOINT_COUNT */
	struct kvip_stats stats;
	uint32_t affinity_count;	/* KVIP_A_AFFINITY_COUNT */
	struct kvip_affinity *affinity;	/* GET of one service only */
	size_t n_affinity, cap_affinity;
};

/*
 * Per-netns settings. For kvip_config_set(), has_* / a negative value
 * leave a setting unchanged; an empty list restores its default.
 */
struct kvip_config {
	bool has_nodeport_addrs;
	struct kvip_cidr *nodeport_addrs;
	size_t n_nodeport_addrs;
	bool has_cluster_cidrs;
	struct kvip_cidr *cluster_cidrs;
	size_t n_cluster_cidrs;
	int masquerade_all;		/* 0, 1; -1: unchanged */
	int drop_invalid;		/* 0, 1; -1: unchanged */
};

struct kvip_service_list {
	struct kvip_service *v;
	size_t n, cap;
};

struct kvip;

/*
 * Open a session: generic netlink socket with extended ACKs and capped ACKs,
 * family "kvip" resolved. On failure returns -errno and writes a one-line
 * reason into msg (-ENOENT: "kvip module not loaded (...)").
 */
int kvip_open(struct kvip **kp, char *msg, size_t msglen);
void kvip_close(struct kvip *k);

/*
 * Details of the last operation: on failure the kernel's extack message
 * (possibly followed by the offending attribute, e.g.
 * "invalid port (attribute endpoints[3].port)"), or a library message; after
 * a success a kernel warning, if any. Empty string if none. Never NULL.
 */
const char *kvip_errmsg(const struct kvip *k);

/* Largest message kvip_set_endpoints() builds; default 32 KiB. */
void kvip_set_chunk_size(struct kvip *k, size_t bytes);

/*
 * Pipelining. After kvip_pipe_start(), kvip_service_add(),
 * kvip_service_replace(), kvip_service_del(), kvip_flush(),
 * kvip_config_set() and kvip_set_endpoints() of a set that fits in one
 * message do not wait for the kernel's answer: they queue their request and
 * return 0, or return a negative errno at once when it could not be built
 * (then nothing was queued, and the answers to the requests queued before
 * have been delivered). The queue goes to the kernel in one sendmsg() when
 * it holds @window requests (1..KVIP_PIPE_MAX) or about KVIP_PIPE_BYTES,
 * and on kvip_pipe_flush(); the call that sends it reads every answer and
 * calls cb(cookie, err, arg) for each request, in order, with the cookie of
 * the last kvip_pipe_cookie() before the request was queued, err 0 or a
 * negative errno, and kvip_errmsg() set to that request's message.
 *
 * The kernel runs every message of a sendmsg() whatever happened to the
 * ones before it. A caller that must not run a request once an earlier one
 * failed uses @window 1: each request is sent, and answered, when queued.
 * Requests that wait for their answer (dumps, kvip_config_get(), sets in
 * several messages) flush the queue first. kvip_pipe_stop() flushes it and
 * ends pipelining. Both return 0, or a negative errno when the queue could
 * not be sent or its answers not read (each request's cb got that error).
 */
#define KVIP_PIPE_MAX		64
#define KVIP_PIPE_BYTES		(64 * 1024)

typedef void (*kvip_pipe_cb)(void *cookie, int err, void *arg);
int kvip_pipe_start(struct kvip *k, unsigned int window, kvip_pipe_cb cb,
		    void *arg);
void kvip_pipe_cookie(struct kvip *k, void *cookie);
int kvip_pipe_flush(struct kvip *k);
int kvip_pipe_stop(struct kvip *k);

/*
 * KVIP_CMD_NEW_SERVICE (add: -EEXIST if the name exists) and
 * KVIP_CMD_REPLACE_SERVICE (create, or replace protocol, flags and frontends;
 * the endpoint set is kept unless svc->has_endpoints).
 * Endpoints are sent only if svc->has_endpoints; they must fit in one message
 * (else -EMSGSIZE: create the service, then kvip_set_endpoints()).
 */
int kvip_service_add(struct kvip *k, const struct kvip_service *svc);
int kvip_service_replace(struct kvip *k, const struct kvip_service *svc);
int kvip_service_del(struct kvip *k, const char *name);
int kvip_flush(struct kvip *k);

/*
 * KVIP_CMD_SET_ENDPOINTS: atomically replace the endpoint set of a service.
 * Sends one message when it fits, else a MORE/APPEND chunk sequence (each
 * chunk is acked; the set becomes visible with the last one).
 */
int kvip_set_endpoints(struct kvip *k, const char *name,
		       const struct kvip_endpoint *eps, size_t n);
/*
 * Whether kvip_set_endpoints() sends this set in one message; then
 * kvip_service_add() can carry it as well (svc->has_endpoints).
 */
bool kvip_endpoints_fit(const struct kvip *k, const char *name,
			const struct kvip_endpoint *eps, size_t n);

/*
 * Dump every service (name == NULL) or only one (dump with a KVIP_A_NAME
 * filter, so huge endpoint sets work). Continuation messages are merged and
 * the dump is retried when the kernel reports NLM_F_DUMP_INTR. The result is
 * in kernel order. A named dump that finds nothing returns -ENOENT.
 * kvip_service_list() stores the result in *list (free it with
 * kvip_service_list_free); kvip_service_dump() calls cb for each service
 * once the dump is complete and consistent; a non-zero return from cb stops
 * the iteration and is returned.
 */
int kvip_service_list(struct kvip *k, const char *name,
		      struct kvip_service_list *list);
void kvip_service_list_free(struct kvip_service_list *list);

typedef int (*kvip_service_cb)(const struct kvip_service *svc, void *arg);
int kvip_service_dump(struct kvip *k, const char *name, kvip_service_cb cb,
		      void *arg);

/* KVIP_CMD_GET_CONFIG / KVIP_CMD_SET_CONFIG. */
void kvip_config_init(struct kvip_config *cfg);	/* everything unchanged */
void kvip_config_free(struct kvip_config *cfg);
int kvip_config_get(struct kvip *k, struct kvip_config *cfg);
int kvip_config_set(struct kvip *k, const struct kvip_config *cfg);

/*
 * Join KVIP_MCGRP_EVENTS and call cb for each event until cb returns
 * non-zero (returned) or an error. cmd is KVIP_CMD_*; svc holds what the
 * event carries (name only for DEL_SERVICE; endpoint_count for
 * SET_ENDPOINTS), cfg is set for SET_CONFIG, both NULL for FLUSH.
 */
typedef int (*kvip_event_cb)(uint8_t cmd, const struct kvip_service *svc,
			     const struct kvip_config *cfg, void *arg);
int kvip_monitor(struct kvip *k, kvip_event_cb cb, void *arg);

/* Service model helpers. */
void kvip_service_init(struct kvip_service *svc);
/* Forget frontends, endpoints and everything else, keep the allocations. */
void kvip_service_reset(struct kvip_service *svc);
void kvip_service_free(struct kvip_service *svc);
/* Return a pointer to a new zeroed entry, or NULL on ENOMEM. */
struct kvip_frontend *kvip_service_add_frontend(struct kvip_service *svc);
struct kvip_endpoint *kvip_service_add_endpoint(struct kvip_service *svc);
struct kvip_cidr *kvip_service_add_source_range(struct kvip_service *svc);

/* "10.0.0.0/8" -> cidr; 0 or -EINVAL (host bits set, bad prefix). */
int kvip_cidr_parse(const char *s, struct kvip_cidr *c);
const char *kvip_cidr_str(const struct kvip_cidr *c, char *buf, size_t len);

/* Formatting: "10.0.0.1", "fd00::1"; "10.0.0.1:80", "[fd00::1]:80". */
#define KVIP_ADDR_STRLEN	46	/* INET6_ADDRSTRLEN */
#define KVIP_ADDRPORT_STRLEN	(KVIP_ADDR_STRLEN + 8)
const char *kvip_addr_str(int family, const union kvip_addr *a, char *buf,
			  size_t len);
const char *kvip_addrport_str(int family, const union kvip_addr *a,
			      uint16_t port, char *buf, size_t len);
/* "tcp", "udp", "sctp" or NULL. */
const char *kvip_proto_name(uint8_t proto);
/* "clusterip", "external", "nodeport" or NULL. */
const char *kvip_frontend_type_name(uint8_t type);

/*
 * Internal, exported for the unit tests: the pause in milliseconds before
 * the retry number @attempt (1, 2, ...) of a dump interrupted by changes,
 * given a random number @rnd.
 */
unsigned int kvip__dump_backoff_ms(unsigned int attempt, uint32_t rnd);

#endif /* KVIP_LIB_H */
