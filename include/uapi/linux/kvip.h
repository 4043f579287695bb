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
 *   Same attributes; creates the service or replaces its protocol, flags
 *   and frontends. The endpoint set is kept unless KVIP_A_ENDPOINTS is
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
 *   KVIP_A_FRONTENDS, KVIP_A_STATS and KVIP_A_ENDPOINT_COUNT. When a service's
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
 * Errors carry an extended ACK message naming the offending attribute:
 * ENOENT unknown service, EEXIST name/frontend/endpoint in use, EINVAL bad
 * family, address length, port 0, protocol or missing attribute, ERANGE
 * frontend type or weight out of range, EOPNOTSUPP unknown flag bits,
 * E2BIG too many frontends or endpoints for one service, ENOSPC a
 * per-netns limit reached, ESRCH no staged endpoint set,
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

enum kvip_cmd {
	KVIP_CMD_UNSPEC,
	KVIP_CMD_NEW_SERVICE,
	KVIP_CMD_DEL_SERVICE,
	KVIP_CMD_GET_SERVICE,
	KVIP_CMD_SET_ENDPOINTS,
	KVIP_CMD_FLUSH,
	KVIP_CMD_REPLACE_SERVICE,
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
	__KVIP_A_LAST
};
#define KVIP_A_MAX (__KVIP_A_LAST - 1)

/* No service flag is defined yet; any bit set is rejected. */
enum kvip_service_flags {
	__KVIP_SERVICE_F_ALL = 0
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
	KVIP_ENDPOINT_A_STATS,	/* nest: KVIP_STATS_A_*, replies only */
	__KVIP_ENDPOINT_A_LAST
};
#define KVIP_ENDPOINT_A_MAX (__KVIP_ENDPOINT_A_LAST - 1)

enum kvip_stats_attr {
	KVIP_STATS_A_UNSPEC,
	KVIP_STATS_A_PAD,
	KVIP_STATS_A_CONNS,	/* u64: new connections translated */
	KVIP_STATS_A_REJECTS,	/* u64: new connections refused (service) */
	__KVIP_STATS_A_LAST
};
#define KVIP_STATS_A_MAX (__KVIP_STATS_A_LAST - 1)

#endif /* _UAPI_LINUX_KVIP_H */
