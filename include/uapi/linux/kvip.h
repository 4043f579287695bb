/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * kvip: Kubernetes Service VIPs in the kernel - generic netlink contract.
 *
 * Family "kvip", version 1. This header is the specification and is shared
 * byte for byte by the kernel module and the tools. Attribute and command
 * numbers are append-only: never renumber, never reuse.
 *
 * Objects
 * -------
 * A service is identified by its name (KVIP_A_NAME, a NUL-terminated string
 * of at most KVIP_NAME_MAX bytes without the NUL, e.g. "default/elastic:http"),
 * has one L4 protocol (KVIP_A_PROTO: IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP),
 * a set of frontends and one endpoint set. A frontend (KVIP_FRONTEND_A_*) is
 * a cluster IP or an external IP with a port, or a node port. An endpoint
 * (KVIP_ENDPOINT_A_*) is an address and port with a weight and flags. A
 * service may mix IPv4 and IPv6 frontends and endpoints; a connection is only
 * ever translated to an endpoint of its own family.
 *
 * All state is per network namespace. Changes need CAP_NET_ADMIN in the
 * user namespace that owns the netns (so a container with its own user and
 * network namespaces configures its own table, and only that). Reading
 * (KVIP_CMD_GET_SERVICE, dumps) needs no capability, like `ip route show`:
 * any process that can open a generic netlink socket in the netns may read
 * its table. Per netns, at most kvip.max_services services and
 * kvip.max_endpoints endpoints (module parameters; staged endpoints count)
 * exist; beyond that requests fail with ENOSPC. Memory is charged to the
 * caller's memory cgroup.
 *
 * Lists
 * -----
 * KVIP_A_FRONTENDS and KVIP_A_ENDPOINTS are nests holding a list of nests,
 * one per frontend or endpoint. The type of each list entry is ignored;
 * tools use 0. Validation is strict: every nest must carry NLA_F_NESTED,
 * unknown attributes are rejected, and the genetlink header's reserved
 * field must be 0.
 *
 * Commands
 * --------
 * KVIP_CMD_NEW_SERVICE (needs CAP_NET_ADMIN in the netns's user namespace)
 *   Creates a service; EEXIST if the name exists. Attributes: KVIP_A_NAME,
 *   KVIP_A_PROTO, KVIP_A_FRONTENDS (required, at least one), KVIP_A_FLAGS
 *   (optional, must be a subset of __KVIP_SERVICE_F_ALL), KVIP_A_ENDPOINTS
 *   (optional: the initial endpoint set, when it fits in one message).
 *   A frontend owned by another service fails with EEXIST (the extack names
 *   the owner). On any error nothing has changed.
 *
 * KVIP_CMD_REPLACE_SERVICE (CAP_NET_ADMIN)
 *   Same attributes; creates the service or replaces its protocol, flags,
 *   options and frontends. The endpoint set is kept unless KVIP_A_ENDPOINTS is
 *   given. (Generic netlink rejects NLM_F_CREATE/EXCL/REPLACE, hence two
 *   commands.)
 *
 * KVIP_CMD_DEL_SERVICE (CAP_NET_ADMIN)
 *   Deletes the service KVIP_A_NAME; ENOENT if unknown.
 *
 * KVIP_CMD_GET_SERVICE
 *   Without NLM_F_DUMP: replies with the service KVIP_A_NAME, or EMSGSIZE
 *   when its endpoints do not fit in one attribute (about 900 endpoints):
 *   those need the dump.
 *   With NLM_F_DUMP: one or more messages per service, every service of the
 *   netns, or only KVIP_A_NAME when given. Each message carries KVIP_A_NAME;
 *   the first message of a service also carries KVIP_A_PROTO, KVIP_A_FLAGS,
 *   KVIP_A_FRONTENDS, KVIP_A_STATS, KVIP_A_ENDPOINT_COUNT, the options
 *   (KVIP_A_AFFINITY_TIMEOUT with KVIP_SERVICE_F_AFFINITY, KVIP_A_SOURCE_RANGES
 *   when not empty) and KVIP_A_AFFINITY_COUNT. Only the reply to a GET
 *   without NLM_F_DUMP lists the affinity entries (KVIP_A_AFFINITY, as many
 *   as fit after the endpoints; KVIP_A_AFFINITY_COUNT says how many exist). When a service's
 *   endpoints do not fit in one message, they continue in the following
 *   messages, which carry KVIP_A_NAME and KVIP_A_ENDPOINTS only; a reader
 *   concatenates consecutive messages of the same name. Dumps are resumable
 *   and NLM_F_DUMP_INTR is set when the table changed while dumping: the
 *   reader should retry. Needs no privilege.
 *
 * KVIP_CMD_SET_ENDPOINTS (CAP_NET_ADMIN)
 *   Replaces the endpoint set of service KVIP_A_NAME atomically: a packet
 *   sees either the old set or the new one, never a mix. KVIP_A_ENDPOINTS
 *   holds the endpoints (absent or empty: the empty set). Sets too large for
 *   one message are sent in several, using KVIP_A_SET_FLAGS:
 *     first message              KVIP_SET_F_MORE
 *     middle messages            KVIP_SET_F_APPEND | KVIP_SET_F_MORE
 *     last message               KVIP_SET_F_APPEND
 *   Messages with KVIP_SET_F_MORE are staged and change nothing visible;
 *   the last one commits the whole set. A staged set belongs to the sending
 *   socket: an APPEND from another socket, or one without a staged set,
 *   fails with ESRCH. A new first message (or a single-message set)
 *   discards an older staged set, even one of another socket and even when
 *   the new message then fails; so does closing the socket or any
 *   error kvip reports for a message of the sequence. (A message the
 *   genetlink core rejects before kvip sees it, for failing the attribute
 *   policy, leaves the staged set as it was.) After any error the sender
 *   starts again with a first message.
 *   Duplicate endpoints (same address and port) are rejected (EEXIST).
 *
 * KVIP_CMD_FLUSH (CAP_NET_ADMIN)
 *   Deletes every service of the netns.
 *
 * KVIP_CMD_SET_CONFIG (CAP_NET_ADMIN)
 *   Changes the netns settings in KVIP_A_CONFIG (KVIP_CONFIG_A_*); an
 *   attribute that is absent keeps its value. A list attribute replaces the
 *   whole list; an empty list restores the default. Applies atomically: new
 *   connections see either all of the old settings or all of the new ones.
 *
 * KVIP_CMD_GET_CONFIG
 *   Replies with KVIP_A_CONFIG holding every setting. Needs no privilege.
 *
 * Service options (KVIP_A_FLAGS, KVIP_A_AFFINITY_TIMEOUT,
 * KVIP_A_SOURCE_RANGES; NEW and REPLACE, REPLACE sets all three: an absent
 * option is reset to its default)
 * ---------------------------------------------------------------------
 * Endpoint choice follows kube-proxy. Per address family, the cluster pool
 * is the ready endpoints (READY; weight > 0), or if there are none the
 * SERVING and TERMINATING ones; the local pool is the same restricted to
 * LOCAL endpoints. KVIP_SERVICE_F_INTERNAL_LOCAL makes cluster IP frontends
 * use the local pool, KVIP_SERVICE_F_EXTERNAL_LOCAL does so for external
 * and node-port frontends (which then keep the client's source address);
 * otherwise the cluster pool is used. A service whose cluster pool of the
 * connection's family is empty (no endpoint at all, or none ready or
 * serving-and-terminating with a weight: kube-proxy's "has no endpoints")
 * rejects new connections (TCP reset, ICMP port unreachable); when only
 * the local pool is empty, they are dropped. Traffic that the node itself
 * sends to an external or node-port frontend is treated as cluster
 * traffic even with EXTERNAL_LOCAL; so is traffic from a source inside
 * KVIP_CONFIG_A_CLUSTER_CIDRS (a pod of this node: kube-proxy's "pod
 * traffic for external destinations" with a local-traffic detector),
 * which is not masqueraded either.
 *
 * KVIP_SERVICE_F_AFFINITY: a client address keeps its endpoint (per
 * service) until KVIP_A_AFFINITY_TIMEOUT seconds (1..KVIP_AFFINITY_TIMEOUT_MAX,
 * default KVIP_AFFINITY_TIMEOUT_DEFAULT) pass without a new connection; an
 * endpoint that leaves the set or its pool releases its clients. Entries are
 * bounded per netns (module parameter kvip.max_affinity) and reclaimed after
 * they expire. Turning the flag off forgets the service's entries.
 *
 * KVIP_SERVICE_F_ENDPOINT_STATS: count new connections per endpoint
 * (KVIP_ENDPOINT_A_STATS in replies). Off by default: the counters are
 * per CPU, 8 bytes per endpoint and possible CPU, which on a large node
 * is several times what the endpoint itself costs. Turning the flag on
 * starts the endpoints' counters from zero; turning it off discards them.
 *
 * KVIP_SERVICE_F_CONN_STATS: count the service's new connections
 * (KVIP_STATS_A_CONNS in KVIP_A_STATS, present only with the flag). Off
 * by default: the counter is the one write of the first packet to memory
 * of its own, a cache miss per new connection on a node with many
 * services. It counts while the flag is set and keeps its value while it
 * is not. The service's rejects and drops are always counted.
 *
 * KVIP_A_SOURCE_RANGES: when present and not empty, new connections to the
 * service's external and node-port frontends from a source outside these
 * CIDRs are dropped. Cluster IP traffic and traffic from the node itself
 * are not restricted.
 *
 * Source NAT: a translated connection is masqueraded (its source becomes
 * the address of the node's outgoing interface) when
 *   - KVIP_CONFIG_A_MASQUERADE_ALL is on, or
 *   - the client is the chosen endpoint itself (hairpin), or
 *   - it reached a cluster IP frontend from outside every
 *     KVIP_CONFIG_A_CLUSTER_CIDRS (if that list is not empty), or
 *   - it reached an external or node-port frontend and the service has no
 *     KVIP_SERVICE_F_EXTERNAL_LOCAL (or the node itself sent it).
 * The decision is taken from the connection's original destination when
 * it leaves the node (a POST_ROUTING NAT hook); no iptables rule is used.
 *
 * Conntrack: when an endpoint leaves the set of a UDP or SCTP service, or
 * stops being ready or serving (as kube-proxy's stale-endpoint detection),
 * the conntrack entries of that service's frontends towards that endpoint
 * are deleted; when a UDP service goes from no ready endpoint to at least one,
 * the UDP entries towards its frontends are deleted (entries created while
 * traffic was rejected would otherwise black-hole the flow). Deleting a UDP
 * or SCTP service deletes its entries too.
 *
 * Events
 * ------
 * The multicast group KVIP_MCGRP_EVENTS announces every change, after it
 * is applied, with the command that made it: KVIP_CMD_NEW_SERVICE (created
 * or replaced: KVIP_A_NAME, KVIP_A_PROTO, KVIP_A_FLAGS, KVIP_A_FRONTENDS,
 * the options and KVIP_A_ENDPOINT_COUNT), KVIP_CMD_DEL_SERVICE
 * (KVIP_A_NAME), KVIP_CMD_SET_ENDPOINTS (KVIP_A_NAME, KVIP_A_ENDPOINT_COUNT;
 * endpoints are not repeated; a set sent in several messages is announced
 * once, by the message that commits it), KVIP_CMD_FLUSH (no attribute) and
 * KVIP_CMD_SET_CONFIG (KVIP_A_CONFIG, every setting). A request that fails
 * announces nothing. Events carry sequence number 0 and port id 0. Joining
 * needs no privilege, like reading. A listener that does not keep up loses
 * events (its socket reports ENOBUFS) and should then re-read the table.
 *
 * Errors carry an extended ACK message naming the offending attribute:
 * ENOENT unknown service, EEXIST name/frontend/endpoint in use, EINVAL bad
 * family, address length, port 0, protocol, missing attribute, a prefix
 * with bits set past its length or longer than its family allows, or
 * KVIP_A_AFFINITY_TIMEOUT without KVIP_SERVICE_F_AFFINITY, ERANGE frontend
 * type, weight, affinity timeout, prefix length (above 128) or a 0/1 setting
 * out of range, EOPNOTSUPP unknown flag bits,
 * E2BIG too many frontends or endpoints for one service or prefixes in a
 * list, ENOSPC a per-netns limit reached, ESRCH no staged endpoint set,
 * EPERM missing CAP_NET_ADMIN (no extack: checked by the genetlink core).
 */
#ifndef _UAPI_LINUX_KVIP_H
#define _UAPI_LINUX_KVIP_H

#include <linux/types.h>

#define KVIP_GENL_NAME		"kvip"
#define KVIP_GENL_VERSION	1

#define KVIP_NAME_MAX		255	/* bytes, without the terminating NUL */
#define KVIP_FRONTENDS_MAX	256	/* per service */
#define KVIP_ENDPOINTS_MAX	65536	/* per service */
#define KVIP_WEIGHT_MAX		65535
#define KVIP_WEIGHT_DEFAULT	1
#define KVIP_SOURCE_RANGES_MAX	64	/* per service */
#define KVIP_CIDRS_MAX		64	/* per config list */
#define KVIP_AFFINITY_TIMEOUT_DEFAULT	10800	/* seconds, as Kubernetes */
#define KVIP_AFFINITY_TIMEOUT_MAX	86400

#define KVIP_MCGRP_EVENTS	"events"

enum kvip_cmd {
	KVIP_CMD_UNSPEC,
	KVIP_CMD_NEW_SERVICE,
	KVIP_CMD_DEL_SERVICE,
	KVIP_CMD_GET_SERVICE,
	KVIP_CMD_SET_ENDPOINTS,
	KVIP_CMD_FLUSH,
	KVIP_CMD_REPLACE_SERVICE,
	KVIP_CMD_SET_CONFIG,
	KVIP_CMD_GET_CONFIG,
	__KVIP_CMD_MAX
};
#define KVIP_CMD_MAX (__KVIP_CMD_MAX - 1)

/* Top-level attributes of every command. */
enum kvip_attr {
	KVIP_A_UNSPEC,
	KVIP_A_NAME,		/* NUL string, <= KVIP_NAME_MAX bytes */
	KVIP_A_PROTO,		/* u8: IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
	KVIP_A_FLAGS,		/* u32: enum kvip_service_flags */
	KVIP_A_FRONTENDS,	/* nest: list of nests of KVIP_FRONTEND_A_* */
	KVIP_A_ENDPOINTS,	/* nest: list of nests of KVIP_ENDPOINT_A_* */
	KVIP_A_STATS,		/* nest: KVIP_STATS_A_*, replies only */
	KVIP_A_SET_FLAGS,	/* u32: enum kvip_set_flags */
	KVIP_A_ENDPOINT_COUNT,	/* u32: size of the endpoint set, replies only */
	KVIP_A_AFFINITY_TIMEOUT, /* u32: seconds, with KVIP_SERVICE_F_AFFINITY */
	KVIP_A_SOURCE_RANGES,	/* nest: list of nests of KVIP_CIDR_A_* */
	KVIP_A_CONFIG,		/* nest: KVIP_CONFIG_A_* */
	KVIP_A_AFFINITY,	/* nest: list of KVIP_AFFINITY_A_*, replies only */
	KVIP_A_AFFINITY_COUNT,	/* u32: affinity entries in use, replies only */
	__KVIP_A_LAST
};
#define KVIP_A_MAX (__KVIP_A_LAST - 1)

/* Service options; unknown bits are rejected. */
enum kvip_service_flags {
	KVIP_SERVICE_F_EXTERNAL_LOCAL	= 1U << 0,	/* externalTrafficPolicy: Local */
	KVIP_SERVICE_F_INTERNAL_LOCAL	= 1U << 1,	/* internalTrafficPolicy: Local */
	KVIP_SERVICE_F_AFFINITY		= 1U << 2,	/* sessionAffinity: ClientIP */
	/*
	 * Owned by a controller (kvipctl sync): it may change or delete the
	 * service; nothing else should. The kernel only stores it.
	 */
	KVIP_SERVICE_F_MANAGED		= 1U << 3,
	KVIP_SERVICE_F_ENDPOINT_STATS	= 1U << 4,	/* per-endpoint counters */
	KVIP_SERVICE_F_CONN_STATS	= 1U << 5,	/* the service's conns */
	__KVIP_SERVICE_F_ALL		= (1U << 6) - 1
};

enum kvip_set_flags {
	KVIP_SET_F_MORE		= 1U << 0,	/* more messages follow: stage */
	KVIP_SET_F_APPEND	= 1U << 1,	/* add to the staged set */
	__KVIP_SET_F_ALL	= KVIP_SET_F_MORE | KVIP_SET_F_APPEND
};

enum kvip_frontend_type {
	KVIP_FRONTEND_UNSPEC,
	KVIP_FRONTEND_CLUSTERIP,	/* ADDR:PORT */
	KVIP_FRONTEND_EXTERNAL,		/* ADDR:PORT: externalIPs, LB ingress */
	KVIP_FRONTEND_NODEPORT,		/* PORT on the node's own addresses */
	__KVIP_FRONTEND_TYPE_LAST
};
#define KVIP_FRONTEND_TYPE_MAX (__KVIP_FRONTEND_TYPE_LAST - 1)

enum kvip_frontend_attr {
	KVIP_FRONTEND_A_UNSPEC,
	KVIP_FRONTEND_A_TYPE,	/* u8: enum kvip_frontend_type */
	KVIP_FRONTEND_A_FAMILY,	/* u16: AF_INET or AF_INET6; not for NODEPORT */
	KVIP_FRONTEND_A_ADDR,	/* binary: 4 or 16 bytes, network order */
	KVIP_FRONTEND_A_PORT,	/* u16: 1..65535, host order */
	__KVIP_FRONTEND_A_LAST
};
#define KVIP_FRONTEND_A_MAX (__KVIP_FRONTEND_A_LAST - 1)

enum kvip_endpoint_flags {
	KVIP_ENDPOINT_F_READY		= 1U << 0,
	KVIP_ENDPOINT_F_SERVING		= 1U << 1,
	KVIP_ENDPOINT_F_TERMINATING	= 1U << 2,
	KVIP_ENDPOINT_F_LOCAL		= 1U << 3,
	__KVIP_ENDPOINT_F_ALL		= (1U << 4) - 1
};
/* Flags of an endpoint given without KVIP_ENDPOINT_A_FLAGS. */
#define KVIP_ENDPOINT_F_DEFAULT (KVIP_ENDPOINT_F_READY | KVIP_ENDPOINT_F_SERVING)

enum kvip_endpoint_attr {
	KVIP_ENDPOINT_A_UNSPEC,
	KVIP_ENDPOINT_A_FAMILY,	/* u16: AF_INET or AF_INET6 */
	KVIP_ENDPOINT_A_ADDR,	/* binary: 4 or 16 bytes, network order */
	KVIP_ENDPOINT_A_PORT,	/* u16: 1..65535, host order */
	KVIP_ENDPOINT_A_WEIGHT,	/* u32: 0..KVIP_WEIGHT_MAX, 0 = no new flows */
	KVIP_ENDPOINT_A_FLAGS,	/* u32: enum kvip_endpoint_flags */
	KVIP_ENDPOINT_A_STATS,	/* nest: KVIP_STATS_A_*, replies only, with
				 * KVIP_SERVICE_F_ENDPOINT_STATS */
	__KVIP_ENDPOINT_A_LAST
};
#define KVIP_ENDPOINT_A_MAX (__KVIP_ENDPOINT_A_LAST - 1)

enum kvip_stats_attr {
	KVIP_STATS_A_UNSPEC,
	KVIP_STATS_A_PAD,
	KVIP_STATS_A_CONNS,	/* u64: new connections translated; for the
				 * service, with KVIP_SERVICE_F_CONN_STATS */
	KVIP_STATS_A_REJECTS,	/* u64: new connections refused (service) */
	KVIP_STATS_A_DROPS,	/* u64: new connections dropped (service): no
				 * endpoint in the local pool, or a source
				 * outside KVIP_A_SOURCE_RANGES */
	__KVIP_STATS_A_LAST
};
#define KVIP_STATS_A_MAX (__KVIP_STATS_A_LAST - 1)

/* An address prefix; the address's bits past the prefix must be zero. */
enum kvip_cidr_attr {
	KVIP_CIDR_A_UNSPEC,
	KVIP_CIDR_A_FAMILY,	/* u16: AF_INET or AF_INET6 */
	KVIP_CIDR_A_ADDR,	/* binary: 4 or 16 bytes, network order */
	KVIP_CIDR_A_PREFIX,	/* u8: 0..32 or 0..128 */
	__KVIP_CIDR_A_LAST
};
#define KVIP_CIDR_A_MAX (__KVIP_CIDR_A_LAST - 1)

/* Per-netns settings (KVIP_CMD_SET_CONFIG / KVIP_CMD_GET_CONFIG). */
enum kvip_config_attr {
	KVIP_CONFIG_A_UNSPEC,
	/*
	 * nest: list of KVIP_CIDR_A_* nests. Node ports answer on the node's
	 * local addresses inside these prefixes. Default (empty list): every
	 * local address except loopback ones; a loopback address is only
	 * used when a prefix names it (CVE-2020-8558). Addresses are checked
	 * per packet, so changes of the node's addresses need no update.
	 */
	KVIP_CONFIG_A_NODEPORT_ADDRS,
	/* nest: list of KVIP_CIDR_A_* nests: pod addresses. Default: none. */
	KVIP_CONFIG_A_CLUSTER_CIDRS,
	KVIP_CONFIG_A_MASQUERADE_ALL,	/* u8: 0 or 1, default 0 */
	/*
	 * u8: 0 or 1, default 0. Drop packets conntrack finds INVALID (e.g.
	 * out-of-window TCP segments) when they are addressed to a frontend
	 * or belong to a translated connection, so that they never reach an
	 * endpoint untranslated.
	 */
	KVIP_CONFIG_A_DROP_INVALID,
	__KVIP_CONFIG_A_LAST
};
#define KVIP_CONFIG_A_MAX (__KVIP_CONFIG_A_LAST - 1)

/* A session affinity entry (replies only). */
enum kvip_affinity_attr {
	KVIP_AFFINITY_A_UNSPEC,
	KVIP_AFFINITY_A_FAMILY,		/* u16: AF_INET or AF_INET6 */
	KVIP_AFFINITY_A_CLIENT,		/* binary: client address */
	KVIP_AFFINITY_A_ENDPOINT,	/* binary: endpoint address */
	KVIP_AFFINITY_A_PORT,		/* u16: endpoint port, host order */
	KVIP_AFFINITY_A_EXPIRES,	/* u32: milliseconds left */
	__KVIP_AFFINITY_A_LAST
};
#define KVIP_AFFINITY_A_MAX (__KVIP_AFFINITY_A_LAST - 1)

#endif /* _UAPI_LINUX_KVIP_H */
