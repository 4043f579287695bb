// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * libkvip: generic netlink client for the kvip kernel module.
 *
 * Receive path: one struct nl_cb per session with our own handlers for
 * sequence checking (stale replies of an aborted request are skipped), ACK,
 * error (keeps the real errno and parses the extended ACK TLVs), NLMSG_DONE
 * (a dump may end with an error code and an extack) and NLM_F_DUMP_INTR.
 * Auto-ACK is off: requests that want an ACK set NLM_F_ACK themselves, dumps
 * don't (the kernel does not ACK a successful dump start).
 */
#include "kvip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

#define KVIP_CHUNK_DEFAULT	(32 * 1024)
#define KVIP_CHUNK_MIN		1024
#define KVIP_SOCKBUF		(4 * 1024 * 1024)
#define KVIP_RECV_BUF		(64 * 1024)
/*
 * A dump interrupted by changes (NLM_F_DUMP_INTR) is retried after a
 * randomised, exponentially growing pause (1 ms, 2 ms, ... capped at
 * 128 ms, each scaled by a random 50..100 %), for at most
 * KVIP_DUMP_BUDGET_MS of pauses in total: a writer that changes the table
 * steadily cannot starve readers, and readers do not retry in lockstep.
 */
#define KVIP_DUMP_TRIES		40
#define KVIP_DUMP_BACKOFF_MS	1
#define KVIP_DUMP_BACKOFF_MAX_MS 128
#define KVIP_DUMP_BUDGET_MS	2000
#define NEST_MAX		0xffff	/* nla_len is a u16 */

/* Encoded sizes (upper bounds, IPv6) of one list entry. */
#define FE_ENC_SIZE	(NLA_HDRLEN + 2 * NLA_ALIGN(NLA_HDRLEN + 2) + \
			 NLA_ALIGN(NLA_HDRLEN + 1) + NLA_HDRLEN + 16)

struct dump_ctx {
	struct kvip_service_list *list;
	const char *name;	/* filter, or NULL */
	bool skipping;		/* current service is filtered out */
	int err;		/* first parse error, reported after DONE */
};

struct monitor_ctx {
	kvip_event_cb cb;
	void *arg;
	int ret;		/* non-zero: stop */
};

/*
 * Pipelining: requests queued for one sendmsg(). The kernel processes every
 * message of it before sendmsg() returns, so the answers are then waiting
 * on the socket; the receive buffer holds a window's worth of them easily
 * (an answer is well under 1 KiB of buffer space with capped ACKs).
 */
#define PIPE_ANSWER_SIZE	8192	/* receive buffer of one answer */

struct pipe_req {
	struct nl_msg *msg;	/* sequence number set */
	void *cookie;
};

struct kvip_pipe {
	kvip_pipe_cb cb;
	void *arg;
	unsigned int window;
	void *cookie;		/* of the next request */
	unsigned int n;		/* queued */
	size_t bytes;
	struct pipe_req q[KVIP_PIPE_MAX];
	char *rbuf;		/* window * PIPE_ANSWER_SIZE */
};

struct kvip {
	struct nl_sock *sk;
	struct nl_cb *cb;
	int family;
	size_t chunk;
	struct kvip_pipe *pipe;	/* NULL: each request waits for its answer */

	/* State of the request in flight. */
	uint32_t seq;
	bool done;
	bool intr;
	int err;
	const struct nlmsghdr *req;	/* for extack offsets */
	size_t req_ep_base;		/* index of the request's 1st endpoint */
	struct dump_ctx *dump;
	struct kvip_config *config;	/* GET_CONFIG reply goes here */
	struct monitor_ctx *monitor;

	char msg[1024];
};

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

static void set_msg(struct kvip *k, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_msg(struct kvip *k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->msg, sizeof(k->msg), fmt, ap);
	va_end(ap);
}

static int nlerr_to_errno(int err)
{
	switch (err < 0 ? -err : err) {
	case NLE_SUCCESS:	return 0;
	case NLE_INTR:		return -EINTR;
	case NLE_BAD_SOCK:	return -EBADF;
	case NLE_AGAIN:		return -EAGAIN;
	case NLE_NOMEM:		return -ENOMEM;
	case NLE_EXIST:		return -EEXIST;
	case NLE_INVAL:		return -EINVAL;
	case NLE_RANGE:		return -ERANGE;
	case NLE_MSGSIZE:	return -EMSGSIZE;
	case NLE_OPNOTSUPP:	return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:	return -EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:	return -ENOENT;
	case NLE_MSG_OVERFLOW:	return -ENOBUFS;
	case NLE_MSG_TRUNC:	return -EMSGSIZE;
	case NLE_BUSY:		return -EBUSY;
	case NLE_NOACCESS:	return -EACCES;
	case NLE_PERM:		return -EPERM;
	case NLE_NODEV:		return -ENODEV;
	case NLE_DUMP_INTR:	return -EINTR;
	case NLE_ATTRSIZE:	return -EMSGSIZE;
	case NLE_PROTO_MISMATCH:
	case NLE_SEQ_MISMATCH:
	case NLE_MSG_TOOSHORT:
	case NLE_MSGTYPE_NOSUPPORT:
		return -EPROTO;
	default:		return -EIO;
	}
}

static int fail_nl(struct kvip *k, int nlerr, const char *what)
{
	set_msg(k, "%s: %s", what, nl_geterror(nlerr));
	return nlerr_to_errno(nlerr);
}

const char *kvip_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:	return "tcp";
	case IPPROTO_UDP:	return "udp";
	case IPPROTO_SCTP:	return "sctp";
	default:		return NULL;
	}
}

const char *kvip_frontend_type_name(uint8_t type)
{
	switch (type) {
	case KVIP_FRONTEND_CLUSTERIP:	return "clusterip";
	case KVIP_FRONTEND_EXTERNAL:	return "external";
	case KVIP_FRONTEND_NODEPORT:	return "nodeport";
	default:			return NULL;
	}
}

const char *kvip_addr_str(int family, const union kvip_addr *a, char *buf,
			  size_t len)
{
	if (!inet_ntop(family, a, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

const char *kvip_addrport_str(int family, const union kvip_addr *a,
			      uint16_t port, char *buf, size_t len)
{
	char s[KVIP_ADDR_STRLEN];

	kvip_addr_str(family, a, s, sizeof(s));
	if (family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", s, port);
	else
		snprintf(buf, len, "%s:%u", s, port);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Service model                                                      */

void kvip_service_init(struct kvip_service *svc)
{
	memset(svc, 0, sizeof(*svc));
}

void kvip_service_reset(struct kvip_service *svc)
{
	struct kvip_frontend *fe = svc->frontends;
	struct kvip_endpoint *ep = svc->endpoints;
	struct kvip_cidr *sr = svc->source_ranges;
	struct kvip_affinity *af = svc->affinity;
	size_t cf = svc->cap_frontends, ce = svc->cap_endpoints;
	size_t cs = svc->cap_source_ranges, ca = svc->cap_affinity;

	memset(svc, 0, sizeof(*svc));
	svc->frontends = fe;
	svc->cap_frontends = cf;
	svc->endpoints = ep;
	svc->cap_endpoints = ce;
	svc->source_ranges = sr;
	svc->cap_source_ranges = cs;
	svc->affinity = af;
	svc->cap_affinity = ca;
}

void kvip_service_free(struct kvip_service *svc)
{
	free(svc->frontends);
	free(svc->endpoints);
	free(svc->source_ranges);
	free(svc->affinity);
	kvip_service_init(svc);
}

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 4;
	if (ncap > SIZE_MAX / size)
		return NULL;
	nv = realloc(v, ncap * size);
	if (nv)
		*cap = ncap;
	return nv;
}

struct kvip_frontend *kvip_service_add_frontend(struct kvip_service *svc)
{
	struct kvip_frontend *v;

	v = grow(svc->frontends, &svc->cap_frontends, svc->n_frontends,
		 sizeof(*v));
	if (!v)
		return NULL;
	svc->frontends = v;
	v = &v[svc->n_frontends++];
	memset(v, 0, sizeof(*v));
	return v;
}

struct kvip_endpoint *kvip_service_add_endpoint(struct kvip_service *svc)
{
	struct kvip_endpoint *v;

	v = grow(svc->endpoints, &svc->cap_endpoints, svc->n_endpoints,
		 sizeof(*v));
	if (!v)
		return NULL;
	svc->endpoints = v;
	v = &v[svc->n_endpoints++];
	memset(v, 0, sizeof(*v));
	return v;
}

struct kvip_cidr *kvip_service_add_source_range(struct kvip_service *svc)
{
	struct kvip_cidr *v;

	v = grow(svc->source_ranges, &svc->cap_source_ranges,
		 svc->n_source_ranges, sizeof(*v));
	if (!v)
		return NULL;
	svc->source_ranges = v;
	v = &v[svc->n_source_ranges++];
	memset(v, 0, sizeof(*v));
	return v;
}

static struct kvip_affinity *add_affinity(struct kvip_service *svc)
{
	struct kvip_affinity *v;

	v = grow(svc->affinity, &svc->cap_affinity, svc->n_affinity,
		 sizeof(*v));
	if (!v)
		return NULL;
	svc->affinity = v;
	v = &v[svc->n_affinity++];
	memset(v, 0, sizeof(*v));
	return v;
}

/* Append to a plain array of prefixes (the config lists). */
static struct kvip_cidr *add_cidr(struct kvip_cidr **v, size_t *n)
{
	struct kvip_cidr *nv;

	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return NULL;
	*v = nv;
	nv = &nv[(*n)++];
	memset(nv, 0, sizeof(*nv));
	return nv;
}

/* ------------------------------------------------------------------ */
/* Prefixes                                                           */

int kvip_cidr_parse(const char *s, struct kvip_cidr *c)
{
	char buf[KVIP_ADDR_STRLEN + 8], *slash, *end;
	unsigned long plen;
	unsigned int max, i;

	memset(c, 0, sizeof(*c));
	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash++ = '\0';
	if (inet_pton(AF_INET, buf, &c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, &c->addr) == 1)
		c->family = AF_INET6;
	else
		return -EINVAL;
	max = c->family == AF_INET ? 32 : 128;
	if (*slash < '0' || *slash > '9' || strlen(slash) > 3)
		return -EINVAL;
	errno = 0;
	plen = strtoul(slash, &end, 10);
	if (errno || *end || plen > max)
		return -EINVAL;
	c->prefix = (uint8_t)plen;
	/* Host bits must be zero, as the kernel insists. */
	for (i = c->prefix; i < max; i++)
		if (c->addr.raw[i / 8] & (0x80 >> (i % 8)))
			return -EINVAL;
	return 0;
}

const char *kvip_cidr_str(const struct kvip_cidr *c, char *buf, size_t len)
{
	char a[KVIP_ADDR_STRLEN];

	snprintf(buf, len, "%s/%u", kvip_addr_str(c->family, &c->addr, a,
						 sizeof(a)), c->prefix);
	return buf;
}

void kvip_service_list_free(struct kvip_service_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		kvip_service_free(&list->v[i]);
	free(list->v);
	memset(list, 0, sizeof(*list));
}

static void list_clear(struct kvip_service_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		kvip_service_free(&list->v[i]);
	list->n = 0;
}

/* ------------------------------------------------------------------ */
/* Extended ACK                                                       */

enum attr_ns { NS_NONE, NS_TOP, NS_FE_LIST, NS_EP_LIST, NS_FE, NS_EP,
	       NS_CIDR_LIST, NS_CIDR, NS_CONFIG };

static const char *attr_name(enum attr_ns ns, int type)
{
	static const char *const top[] = {
		[KVIP_A_NAME] = "name",
		[KVIP_A_PROTO] = "proto",
		[KVIP_A_FLAGS] = "flags",
		[KVIP_A_FRONTENDS] = "frontends",
		[KVIP_A_ENDPOINTS] = "endpoints",
		[KVIP_A_STATS] = "stats",
		[KVIP_A_SET_FLAGS] = "set-flags",
		[KVIP_A_ENDPOINT_COUNT] = "endpoint-count",
		[KVIP_A_AFFINITY_TIMEOUT] = "affinity-timeout",
		[KVIP_A_SOURCE_RANGES] = "source-ranges",
		[KVIP_A_CONFIG] = "config",
		[KVIP_A_AFFINITY] = "affinity",
		[KVIP_A_AFFINITY_COUNT] = "affinity-count",
	};
	static const char *const cidr[] = {
		[KVIP_CIDR_A_FAMILY] = "family",
		[KVIP_CIDR_A_ADDR] = "addr",
		[KVIP_CIDR_A_PREFIX] = "prefix",
	};
	static const char *const cfg[] = {
		[KVIP_CONFIG_A_NODEPORT_ADDRS] = "nodeport-addresses",
		[KVIP_CONFIG_A_CLUSTER_CIDRS] = "cluster-cidr",
		[KVIP_CONFIG_A_MASQUERADE_ALL] = "masquerade-all",
		[KVIP_CONFIG_A_DROP_INVALID] = "drop-invalid",
	};
	static const char *const fe[] = {
		[KVIP_FRONTEND_A_TYPE] = "type",
		[KVIP_FRONTEND_A_FAMILY] = "family",
		[KVIP_FRONTEND_A_ADDR] = "addr",
		[KVIP_FRONTEND_A_PORT] = "port",
	};
	static const char *const ep[] = {
		[KVIP_ENDPOINT_A_FAMILY] = "family",
		[KVIP_ENDPOINT_A_ADDR] = "addr",
		[KVIP_ENDPOINT_A_PORT] = "port",
		[KVIP_ENDPOINT_A_WEIGHT] = "weight",
		[KVIP_ENDPOINT_A_FLAGS] = "flags",
		[KVIP_ENDPOINT_A_STATS] = "stats",
	};
	const char *const *tab;
	size_t n;

	switch (ns) {
	case NS_TOP: tab = top; n = sizeof(top) / sizeof(top[0]); break;
	case NS_FE: tab = fe; n = sizeof(fe) / sizeof(fe[0]); break;
	case NS_EP: tab = ep; n = sizeof(ep) / sizeof(ep[0]); break;
	case NS_CIDR: tab = cidr; n = sizeof(cidr) / sizeof(cidr[0]); break;
	case NS_CONFIG: tab = cfg; n = sizeof(cfg) / sizeof(cfg[0]); break;
	default: return NULL;
	}
	if (type < 0 || (size_t)type >= n)
		return NULL;
	return tab[type];
}

static void path_append(char *buf, size_t len, enum attr_ns ns, int type)
{
	size_t l = strlen(buf);
	const char *name = attr_name(ns, type);

	if (l >= len)
		return;
	if (name)
		snprintf(buf + l, len - l, "%s%s", l ? "." : "", name);
	else
		snprintf(buf + l, len - l, "%s%d", l ? "." : "", type);
}

/*
 * Name the attribute of our request at byte offset off (from the start of
 * the netlink header), e.g. "endpoints[12].port". *inner is the namespace of
 * that attribute's children (for NLMSGERR_ATTR_MISS_NEST).
 */
static bool attr_path(const struct kvip *k, uint32_t off, char *buf,
		      size_t len, enum attr_ns *inner)
{
	const struct nlmsghdr *req = k->req;
	const char *base = (const char *)req;
	const struct nlattr *a;
	enum attr_ns ns = NS_TOP;
	uint32_t start = NLMSG_HDRLEN + GENL_HDRLEN;
	int rem;

	buf[0] = '\0';
	if (!req || off < start || off >= req->nlmsg_len)
		return false;
	a = (const struct nlattr *)(base + start);
	rem = (int)(req->nlmsg_len - start);

	while (ns != NS_NONE) {
		const struct nlattr *hit = NULL;
		size_t idx = 0, i = 0;
		enum attr_ns next = NS_NONE;
		size_t l;

		for (; rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
		       a->nla_len <= rem;
		     rem -= NLA_ALIGN(a->nla_len),
		     a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len)),
		     i++) {
			uint32_t aoff = (uint32_t)((const char *)a - base);

			if (off >= aoff && off < aoff + NLA_ALIGN(a->nla_len)) {
				hit = a;
				idx = i;
				break;
			}
		}
		if (!hit)
			return buf[0] != '\0';

		l = strlen(buf);
		switch (ns) {
		case NS_TOP:
			path_append(buf, len, ns, nla_type(hit));
			if (nla_type(hit) == KVIP_A_FRONTENDS)
				next = NS_FE_LIST;
			else if (nla_type(hit) == KVIP_A_ENDPOINTS)
				next = NS_EP_LIST;
			else if (nla_type(hit) == KVIP_A_SOURCE_RANGES)
				next = NS_CIDR_LIST;
			else if (nla_type(hit) == KVIP_A_CONFIG)
				next = NS_CONFIG;
			break;
		case NS_CONFIG:
			path_append(buf, len, ns, nla_type(hit));
			if (nla_type(hit) == KVIP_CONFIG_A_NODEPORT_ADDRS ||
			    nla_type(hit) == KVIP_CONFIG_A_CLUSTER_CIDRS)
				next = NS_CIDR_LIST;
			break;
		case NS_CIDR_LIST:
			snprintf(buf + l, len - l, "[%zu]", idx);
			next = NS_CIDR;
			break;
		case NS_FE_LIST:
			snprintf(buf + l, len - l, "[%zu]", idx);
			next = NS_FE;
			break;
		case NS_EP_LIST:
			snprintf(buf + l, len - l, "[%zu]",
				 idx + k->req_ep_base);
			next = NS_EP;
			break;
		default:
			path_append(buf, len, ns, nla_type(hit));
			break;
		}
		*inner = next;
		if ((const char *)hit - base == (long)off)
			return true;
		ns = next;
		a = (const struct nlattr *)((const char *)hit + NLA_HDRLEN);
		rem = hit->nla_len - NLA_HDRLEN;
	}
	return true;
}

/* Messages of the kernel's policy validation (lib/nlattr.c). */
static bool generic_msg(const char *msg)
{
	return strstr(msg, "ttribute") || strstr(msg, "out of range") ||
	       strstr(msg, "policy") || strstr(msg, "NLA_F_NESTED");
}

/* Parse the extack TLVs of an NLMSG_ERROR/NLMSG_DONE at payload offset off. */
static void parse_extack(struct kvip *k, const struct nlmsghdr *nlh,
			 size_t off)
{
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t plen, l;
	char path[192] = "";
	bool have_path = false, missing = false;

	/* Without TLVs keep k->msg: it may explain a dump parse error. */
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) ||
	    nlh->nlmsg_len < NLMSG_HDRLEN)
		return;
	k->msg[0] = '\0';
	plen = nlh->nlmsg_len - NLMSG_HDRLEN;
	off = NLMSG_ALIGN(off);
	if (off >= plen)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX,
		      (struct nlattr *)((char *)NLMSG_DATA(nlh) + off),
		      (int)(plen - off), NULL) < 0)
		return;

	if (tb[NLMSGERR_ATTR_MSG] && nla_len(tb[NLMSGERR_ATTR_MSG]) > 0) {
		nla_strlcpy(k->msg, tb[NLMSGERR_ATTR_MSG], sizeof(k->msg));
		l = strlen(k->msg);
		while (l && (k->msg[l - 1] == '\n' || k->msg[l - 1] == ' '))
			k->msg[--l] = '\0';
	}

	if (tb[NLMSGERR_ATTR_MISS_TYPE] &&
	    nla_len(tb[NLMSGERR_ATTR_MISS_TYPE]) >= 4) {
		enum attr_ns ns = NS_TOP;
		int type = (int)nla_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]);

		if (tb[NLMSGERR_ATTR_MISS_NEST] &&
		    nla_len(tb[NLMSGERR_ATTR_MISS_NEST]) >= 4 &&
		    !attr_path(k, nla_get_u32(tb[NLMSGERR_ATTR_MISS_NEST]),
			       path, sizeof(path), &ns))
			ns = NS_NONE;
		path_append(path, sizeof(path), ns, type);
		have_path = missing = true;
	} else if (tb[NLMSGERR_ATTR_OFFS] &&
		   nla_len(tb[NLMSGERR_ATTR_OFFS]) >= 4) {
		enum attr_ns ns;

		have_path = attr_path(k, nla_get_u32(tb[NLMSGERR_ATTR_OFFS]),
				      path, sizeof(path), &ns);
	}

	if (!have_path)
		return;
	l = strlen(k->msg);
	/*
	 * The kernel's own messages name top-level attributes well enough
	 * ("no such service"); say which list entry it was, and name the
	 * attribute when the message is a generic policy one.
	 */
	if (l && !missing && !strchr(path, '[') && !generic_msg(k->msg))
		return;
	if (l)
		snprintf(k->msg + l, sizeof(k->msg) - l, " (%sattribute %s)",
			 missing ? "missing " : "", path);
	else
		snprintf(k->msg, sizeof(k->msg), "%s attribute %s",
			 missing ? "missing" : "invalid", path);
}

/* ------------------------------------------------------------------ */
/* Receive callbacks                                                  */

static int cb_seq_check(struct nl_msg *msg, void *arg)
{
	struct kvip *k = arg;

	/* Events are multicast with sequence number 0. */
	if (k->monitor)
		return NL_OK;
	/* Replies to an earlier, abandoned request: drop them. */
	return nlmsg_hdr(msg)->nlmsg_seq == k->seq ? NL_OK : NL_SKIP;
}

static int cb_dump_intr(struct nl_msg *msg, void *arg)
{
	struct kvip *k = arg;

	(void)msg;
	k->intr = true;
	return NL_OK;
}

static int cb_ack(struct nl_msg *msg, void *arg)
{
	struct kvip *k = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlmsgerr *e = NLMSG_DATA(nlh);
	size_t off = sizeof(*e);

	if (!(nlh->nlmsg_flags & NLM_F_CAPPED) &&
	    e->msg.nlmsg_len >= NLMSG_HDRLEN)
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	parse_extack(k, nlh, off);	/* a warning, if any */
	k->err = 0;
	k->done = true;
	return NL_STOP;
}

static int cb_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct kvip *k = arg;
	/* libnl hands us the payload; the header is right before it. */
	const struct nlmsghdr *nlh =
		(const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
	size_t off = sizeof(*e);

	(void)nla;
	if (nlh->nlmsg_seq != k->seq)
		return NL_SKIP;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED) &&
	    e->msg.nlmsg_len >= NLMSG_HDRLEN)
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	parse_extack(k, nlh, off);
	k->err = e->error < 0 ? e->error : -e->error;
	k->done = true;
	return NL_STOP;
}

static int cb_finish(struct nl_msg *msg, void *arg)
{
	struct kvip *k = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int err = 0;

	/* A dump may end with an error code and extack TLVs in NLMSG_DONE. */
	if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
		memcpy(&err, NLMSG_DATA(nlh), sizeof(err));
		parse_extack(k, nlh, sizeof(int));
	}
	k->err = err < 0 ? err : 0;
	k->done = true;
	return NL_STOP;
}

static int dump_parse(struct kvip *k, struct nlmsghdr *nlh);
static int config_parse(struct kvip *k, struct nlmsghdr *nlh,
			struct kvip_config *cfg);
static int event_parse(struct kvip *k, struct nlmsghdr *nlh);

static int cb_valid(struct nl_msg *msg, void *arg)
{
	struct kvip *k = arg;

	if (k->monitor)
		return event_parse(k, nlmsg_hdr(msg));
	if (k->config && !k->err) {
		int err = config_parse(k, nlmsg_hdr(msg), k->config);

		if (err)
			k->err = err;
		return NL_OK;
	}
	if (k->dump && !k->dump->err) {
		int err = dump_parse(k, nlmsg_hdr(msg));

		/* Keep reading until NLMSG_DONE to leave the socket clean. */
		if (err)
			k->dump->err = err;
	}
	return NL_OK;
}

/* ------------------------------------------------------------------ */
/* Session                                                            */

static void sockbuf(int fd, int opt_force, int opt, int size)
{
	/* The FORCE variants need CAP_NET_ADMIN; else capped by [rw]mem_max. */
	if (setsockopt(fd, SOL_SOCKET, opt_force, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
}

int kvip_open(struct kvip **kp, char *msg, size_t msglen)
{
	struct kvip *k;
	int fd, one = 1, ret;

	*kp = NULL;
	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	k->chunk = KVIP_CHUNK_DEFAULT;

	k->sk = nl_socket_alloc();
	if (!k->sk) {
		ret = -ENOMEM;
		snprintf(msg, msglen, "out of memory");
		goto err;
	}
	ret = genl_connect(k->sk);
	if (ret < 0) {
		snprintf(msg, msglen, "cannot open generic netlink socket: %s",
			 nl_geterror(ret));
		ret = nlerr_to_errno(ret);
		goto err;
	}
	fd = nl_socket_get_fd(k->sk);
	/* Best effort: both exist since Linux 4.12. */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	sockbuf(fd, SO_RCVBUFFORCE, SO_RCVBUF, KVIP_SOCKBUF);
	sockbuf(fd, SO_SNDBUFFORCE, SO_SNDBUF, KVIP_SOCKBUF);
	/* Dump skbs are <= 32 KiB; peek anyway so nothing is ever truncated. */
	nl_socket_set_msg_buf_size(k->sk, KVIP_RECV_BUF);
	nl_socket_enable_msg_peek(k->sk);

	/* Resolve with libnl's default callbacks and auto-ACK still on. */
	ret = genl_ctrl_resolve(k->sk, KVIP_GENL_NAME);
	if (ret < 0) {
		if (ret == -NLE_OBJ_NOTFOUND) {
			snprintf(msg, msglen, "kvip module not loaded "
				 "(genl family '" KVIP_GENL_NAME "' not found)");
			ret = -ENOENT;
		} else {
			snprintf(msg, msglen, "cannot resolve genl family '"
				 KVIP_GENL_NAME "': %s", nl_geterror(ret));
			ret = nlerr_to_errno(ret);
		}
		goto err;
	}
	k->family = ret;

	nl_socket_disable_auto_ack(k->sk);
	k->cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!k->cb) {
		ret = -ENOMEM;
		snprintf(msg, msglen, "out of memory");
		goto err;
	}
	nl_cb_set(k->cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, cb_seq_check, k);
	nl_cb_set(k->cb, NL_CB_VALID, NL_CB_CUSTOM, cb_valid, k);
	nl_cb_set(k->cb, NL_CB_ACK, NL_CB_CUSTOM, cb_ack, k);
	nl_cb_set(k->cb, NL_CB_FINISH, NL_CB_CUSTOM, cb_finish, k);
	nl_cb_set(k->cb, NL_CB_DUMP_INTR, NL_CB_CUSTOM, cb_dump_intr, k);
	nl_cb_err(k->cb, NL_CB_CUSTOM, cb_error, k);

	*kp = k;
	return 0;
err:
	kvip_close(k);
	return ret;
}

static void pipe_free(struct kvip_pipe *p);

void kvip_close(struct kvip *k)
{
	if (!k)
		return;
	pipe_free(k->pipe);	/* unsent requests are dropped */
	if (k->cb)
		nl_cb_put(k->cb);
	if (k->sk)
		nl_socket_free(k->sk);
	free(k);
}

const char *kvip_errmsg(const struct kvip *k)
{
	return k ? k->msg : "";
}

void kvip_set_chunk_size(struct kvip *k, size_t bytes)
{
	if (bytes < KVIP_CHUNK_MIN)
		bytes = KVIP_CHUNK_MIN;
	k->chunk = bytes;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

static struct nl_msg *msg_new(struct kvip *k, uint8_t cmd, int flags,
			      size_t attrs)
{
	struct nl_msg *msg;

	msg = nlmsg_alloc_size(NLMSG_HDRLEN + GENL_HDRLEN + attrs);
	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, k->family, 0, flags,
			 cmd, KVIP_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static int pipe_flush(struct kvip *k);

/* Send msg and wait for its ACK, error or (dump) NLMSG_DONE. */
static int transact(struct kvip *k, struct nl_msg *msg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int ret;

	/* Requests queued before this one go first, and are answered. */
	pipe_flush(k);
	nl_complete_msg(k->sk, msg);
	k->seq = nlh->nlmsg_seq;
	k->done = false;
	k->intr = false;
	k->err = 0;
	k->msg[0] = '\0';
	k->req = nlh;

	ret = nl_send(k->sk, msg);
	if (ret < 0) {
		k->req = NULL;
		return fail_nl(k, ret, "netlink send");
	}
	while (!k->done) {
		ret = nl_recvmsgs(k->sk, k->cb);
		if (!k->done && ret < 0) {
			k->req = NULL;
			return fail_nl(k, ret, "netlink receive");
		}
	}
	k->req = NULL;
	return k->err;
}

/* ------------------------------------------------------------------ */
/* Pipelining                                                         */

/* Answer request @i of the queue with @err and the message already set. */
static void pipe_answer(struct kvip *k, unsigned int i, int err)
{
	struct kvip_pipe *p = k->pipe;

	p->cb(p->q[i].cookie, err, p->arg);
	nlmsg_free(p->q[i].msg);
	p->q[i].msg = NULL;
}

/* Answer requests @from..@to - 1 with a transport error @err. */
static void pipe_fail(struct kvip *k, unsigned int from, unsigned int to,
		      int err, const char *what)
{
	for (unsigned int i = from; i < to; i++) {
		set_msg(k, "%s: %s", what, strerror(-err));
		pipe_answer(k, i, err);
	}
}

static int pipe_send(struct kvip *k)
{
	struct kvip_pipe *p = k->pipe;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct iovec iov[KVIP_PIPE_MAX];
	struct msghdr mh = {
		.msg_name = &kernel,
		.msg_namelen = sizeof(kernel),
		.msg_iov = iov,
		.msg_iovlen = p->n,
	};

	for (unsigned int i = 0; i < p->n; i++) {
		struct nlmsghdr *nlh = nlmsg_hdr(p->q[i].msg);

		iov[i].iov_base = nlh;
		iov[i].iov_len = NLMSG_ALIGN(nlh->nlmsg_len);
	}
	while (sendmsg(nl_socket_get_fd(k->sk), &mh, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
 * One received datagram: answers (NLMSG_ERROR) to queued requests, matched
 * by sequence number; anything else (a stale reply to an abandoned request)
 * is skipped. *next is the first request not answered yet.
 */
static void pipe_datagram(struct kvip *k, char *buf, size_t len,
			  bool trunc, unsigned int *next)
{
	struct kvip_pipe *p = k->pipe;
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	int rem = (int)len;

	for (; rem >= (int)NLMSG_HDRLEN; nlh = NLMSG_NEXT(nlh, rem)) {
		struct nlmsgerr *e = NLMSG_DATA(nlh);
		unsigned int i = *next;
		size_t off = sizeof(*e);

		if (!NLMSG_OK(nlh, rem)) {
			/* Cut by our buffer: keep the error, drop the TLVs. */
			if (!trunc || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
				return;
			nlh->nlmsg_len = (uint32_t)rem;
			nlh->nlmsg_flags &= (uint16_t)~NLM_F_ACK_TLVS;
		}
		if (nlh->nlmsg_type != NLMSG_ERROR ||
		    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
			continue;
		while (i < p->n &&
		       nlmsg_hdr(p->q[i].msg)->nlmsg_seq != nlh->nlmsg_seq)
			i++;
		if (i == p->n)
			continue;	/* not ours */
		/* Netlink keeps order: earlier ones were lost (overrun). */
		pipe_fail(k, *next, i, -ENOBUFS, "netlink receive: no answer");

		k->msg[0] = '\0';
		k->req = nlmsg_hdr(p->q[i].msg);
		k->req_ep_base = 0;
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED) &&
		    e->msg.nlmsg_len >= NLMSG_HDRLEN)
			off += e->msg.nlmsg_len - NLMSG_HDRLEN;
		parse_extack(k, nlh, off);
		k->req = NULL;
		pipe_answer(k, i, e->error < 0 ? e->error : -e->error);
		*next = i + 1;
	}
}

/* Read the answers to the p->n requests just sent, in one or a few calls. */
static int pipe_recv(struct kvip *k)
{
	struct kvip_pipe *p = k->pipe;
	struct mmsghdr mm[KVIP_PIPE_MAX];
	struct iovec iov[KVIP_PIPE_MAX];
	unsigned int next = 0;

	while (next < p->n) {
		unsigned int want = p->n - next;
		int got;

		if (want > p->window)
			want = p->window;
		memset(mm, 0, want * sizeof(mm[0]));
		for (size_t i = 0; i < want; i++) {
			iov[i].iov_base = p->rbuf + i * PIPE_ANSWER_SIZE;
			iov[i].iov_len = PIPE_ANSWER_SIZE;
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		/* Block for the first answer only; the rest are there too. */
		got = recvmmsg(nl_socket_get_fd(k->sk), mm, want,
			       MSG_WAITFORONE, NULL);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int err = -errno;

			pipe_fail(k, next, p->n, err, "netlink receive");
			return err;
		}
		for (int i = 0; i < got; i++)
			pipe_datagram(k, iov[i].iov_base, mm[i].msg_len,
				      mm[i].msg_hdr.msg_flags & MSG_TRUNC,
				      &next);
	}
	return 0;
}

/* Send the queue in one sendmsg() and deliver every answer. */
static int pipe_flush(struct kvip *k)
{
	struct kvip_pipe *p = k->pipe;
	int ret;

	if (!p || !p->n)
		return 0;
	ret = pipe_send(k);
	if (ret < 0)
		pipe_fail(k, 0, p->n, ret, "netlink send");
	else
		ret = pipe_recv(k);
	p->n = 0;
	p->bytes = 0;
	return ret;
}

/*
 * Send @msg and wait for its answer, or queue it when pipelining (and send
 * the queue when it is full). Takes @msg.
 */
static int submit(struct kvip *k, struct nl_msg *msg)
{
	struct kvip_pipe *p = k->pipe;
	size_t len = NLMSG_ALIGN(nlmsg_hdr(msg)->nlmsg_len);
	int ret;

	if (!p) {
		ret = transact(k, msg);
		nlmsg_free(msg);
		return ret;
	}
	/* Each sendmsg() near KVIP_PIPE_BYTES; a bigger message alone. */
	if (p->n && p->bytes + len > KVIP_PIPE_BYTES)
		pipe_flush(k);
	nl_complete_msg(k->sk, msg);
	p->q[p->n].msg = msg;
	p->q[p->n].cookie = p->cookie;
	p->n++;
	p->bytes += len;
	if (p->n >= p->window || p->bytes >= KVIP_PIPE_BYTES)
		pipe_flush(k);
	return 0;
}

/*
 * A request that failed before it was queued: deliver the answers to those
 * queued before it first, so that the caller sees results in order.
 */
static int pipe_early(struct kvip *k, int ret)
{
	char msg[sizeof(k->msg)];

	if (ret >= 0 || !k->pipe || !k->pipe->n)
		return ret;
	memcpy(msg, k->msg, sizeof(msg));
	pipe_flush(k);
	memcpy(k->msg, msg, sizeof(msg));
	return ret;
}

int kvip_pipe_start(struct kvip *k, unsigned int window, kvip_pipe_cb cb,
		    void *arg)
{
	struct kvip_pipe *p;

	k->msg[0] = '\0';
	if (!window || window > KVIP_PIPE_MAX || !cb) {
		set_msg(k, "invalid pipeline window");
		return -EINVAL;
	}
	kvip_pipe_stop(k);
	p = calloc(1, sizeof(*p));
	if (p)
		p->rbuf = malloc((size_t)window * PIPE_ANSWER_SIZE);
	if (!p || !p->rbuf) {
		free(p);
		set_msg(k, "out of memory");
		return -ENOMEM;
	}
	p->cb = cb;
	p->arg = arg;
	p->window = window;
	k->pipe = p;
	return 0;
}

void kvip_pipe_cookie(struct kvip *k, void *cookie)
{
	if (k->pipe)
		k->pipe->cookie = cookie;
}

int kvip_pipe_flush(struct kvip *k)
{
	return pipe_flush(k);
}

static void pipe_free(struct kvip_pipe *p)
{
	if (!p)
		return;
	for (unsigned int i = 0; i < p->n; i++)
		nlmsg_free(p->q[i].msg);
	free(p->rbuf);
	free(p);
}

int kvip_pipe_stop(struct kvip *k)
{
	int ret = pipe_flush(k);

	pipe_free(k->pipe);
	k->pipe = NULL;
	return ret;
}

static size_t ep_enc_size(const struct kvip_endpoint *ep)
{
	size_t alen = ep->family == AF_INET ? 4 : 16;

	return NLA_HDRLEN +				/* entry nest */
	       NLA_ALIGN(NLA_HDRLEN + 2) +		/* family */
	       NLA_ALIGN(NLA_HDRLEN + alen) +		/* addr */
	       NLA_ALIGN(NLA_HDRLEN + 2) +		/* port */
	       2 * NLA_ALIGN(NLA_HDRLEN + 4);		/* weight, flags */
}

static struct nlattr *nest_start(struct nl_msg *msg, int type)
{
	struct nlattr *start = (struct nlattr *)nlmsg_tail(nlmsg_hdr(msg));

	/* NLA_F_NESTED: strict kernel validation insists on it. */
	if (nla_put(msg, type | NLA_F_NESTED, 0, NULL) < 0)
		return NULL;
	return start;
}

static int nest_end(struct nl_msg *msg, struct nlattr *start)
{
	size_t len = (size_t)((char *)nlmsg_tail(nlmsg_hdr(msg)) -
			      (char *)start);

	if (len > NEST_MAX)
		return -1;
	start->nla_len = (uint16_t)len;
	return 0;
}

static int put_frontend(struct nl_msg *msg, const struct kvip_frontend *fe)
{
	struct nlattr *n = nest_start(msg, 0);

	if (!n || nla_put_u8(msg, KVIP_FRONTEND_A_TYPE, fe->type) < 0)
		return -1;
	if (fe->type != KVIP_FRONTEND_NODEPORT) {
		if (nla_put_u16(msg, KVIP_FRONTEND_A_FAMILY, fe->family) < 0 ||
		    nla_put(msg, KVIP_FRONTEND_A_ADDR,
			    fe->family == AF_INET ? 4 : 16, &fe->addr) < 0)
			return -1;
	}
	if (nla_put_u16(msg, KVIP_FRONTEND_A_PORT, fe->port) < 0)
		return -1;
	return nest_end(msg, n);
}

static int put_endpoint(struct nl_msg *msg, const struct kvip_endpoint *ep)
{
	struct nlattr *n = nest_start(msg, 0);

	if (!n ||
	    nla_put_u16(msg, KVIP_ENDPOINT_A_FAMILY, ep->family) < 0 ||
	    nla_put(msg, KVIP_ENDPOINT_A_ADDR, ep->family == AF_INET ? 4 : 16,
		    &ep->addr) < 0 ||
	    nla_put_u16(msg, KVIP_ENDPOINT_A_PORT, ep->port) < 0 ||
	    nla_put_u32(msg, KVIP_ENDPOINT_A_WEIGHT, ep->weight) < 0 ||
	    nla_put_u32(msg, KVIP_ENDPOINT_A_FLAGS, ep->flags) < 0)
		return -1;
	return nest_end(msg, n);
}

#define CIDR_ENC_SIZE	(NLA_HDRLEN + NLA_ALIGN(NLA_HDRLEN + 2) + \
			 NLA_ALIGN(NLA_HDRLEN + 16) + NLA_ALIGN(NLA_HDRLEN + 1))

static int put_cidrs(struct nl_msg *msg, int type, const struct kvip_cidr *c,
		     size_t n)
{
	struct nlattr *list = nest_start(msg, type);

	if (!list)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct nlattr *e = nest_start(msg, 0);

		if (!e ||
		    nla_put_u16(msg, KVIP_CIDR_A_FAMILY, c[i].family) < 0 ||
		    nla_put(msg, KVIP_CIDR_A_ADDR,
			    c[i].family == AF_INET ? 4 : 16, &c[i].addr) < 0 ||
		    nla_put_u8(msg, KVIP_CIDR_A_PREFIX, c[i].prefix) < 0 ||
		    nest_end(msg, e) < 0)
			return -1;
	}
	return nest_end(msg, list);
}

static int check_name(struct kvip *k, const char *name, size_t *len)
{
	size_t l = name ? strnlen(name, KVIP_NAME_MAX + 1) : 0;

	if (l == 0 || l > KVIP_NAME_MAX) {
		set_msg(k, "invalid service name (1..%d bytes)", KVIP_NAME_MAX);
		return -EINVAL;
	}
	*len = l;
	return 0;
}

static int service_put(struct kvip *k, const struct kvip_service *svc,
		       uint8_t cmd)
{
	struct nl_msg *msg;
	struct nlattr *nest;
	size_t namelen, fe_bytes, ep_bytes = 0, size;
	int ret;

	k->msg[0] = '\0';
	ret = check_name(k, svc->name, &namelen);
	if (ret)
		return ret;

	fe_bytes = NLA_HDRLEN + svc->n_frontends * FE_ENC_SIZE;
	if (svc->has_endpoints) {
		ep_bytes = NLA_HDRLEN;
		for (size_t i = 0; i < svc->n_endpoints; i++)
			ep_bytes += ep_enc_size(&svc->endpoints[i]);
	}
	if (fe_bytes > NEST_MAX) {
		set_msg(k, "too many frontends for one message");
		return -EMSGSIZE;
	}
	if (ep_bytes > NEST_MAX) {
		set_msg(k, "too many endpoints for one message "
			"(set them with SET_ENDPOINTS)");
		return -EMSGSIZE;
	}
	if (svc->n_source_ranges > KVIP_SOURCE_RANGES_MAX * 16) {
		set_msg(k, "too many source ranges for one message");
		return -EMSGSIZE;
	}
	size = nla_total_size(namelen + 1) + nla_total_size(1) +
	       2 * nla_total_size(4) + fe_bytes + ep_bytes +
	       NLA_HDRLEN + svc->n_source_ranges * CIDR_ENC_SIZE;

	msg = msg_new(k, cmd, NLM_F_ACK, size);
	if (!msg) {
		set_msg(k, "out of memory");
		return -ENOMEM;
	}
	if (nla_put_string(msg, KVIP_A_NAME, svc->name) < 0 ||
	    nla_put_u8(msg, KVIP_A_PROTO, svc->proto) < 0 ||
	    nla_put_u32(msg, KVIP_A_FLAGS, svc->flags) < 0 ||
	    (svc->affinity_timeout &&
	     nla_put_u32(msg, KVIP_A_AFFINITY_TIMEOUT,
			 svc->affinity_timeout) < 0) ||
	    (svc->n_source_ranges &&
	     put_cidrs(msg, KVIP_A_SOURCE_RANGES, svc->source_ranges,
		       svc->n_source_ranges) < 0))
		goto overflow;
	nest = nest_start(msg, KVIP_A_FRONTENDS);
	if (!nest)
		goto overflow;
	for (size_t i = 0; i < svc->n_frontends; i++)
		if (put_frontend(msg, &svc->frontends[i]) < 0)
			goto overflow;
	if (nest_end(msg, nest) < 0)
		goto overflow;
	if (svc->has_endpoints) {
		nest = nest_start(msg, KVIP_A_ENDPOINTS);
		if (!nest)
			goto overflow;
		for (size_t i = 0; i < svc->n_endpoints; i++)
			if (put_endpoint(msg, &svc->endpoints[i]) < 0)
				goto overflow;
		if (nest_end(msg, nest) < 0)
			goto overflow;
	}
	k->req_ep_base = 0;
	return submit(k, msg);

overflow:
	nlmsg_free(msg);
	set_msg(k, "message too large");
	return -EMSGSIZE;
}

int kvip_service_add(struct kvip *k, const struct kvip_service *svc)
{
	return pipe_early(k, service_put(k, svc, KVIP_CMD_NEW_SERVICE));
}

int kvip_service_replace(struct kvip *k, const struct kvip_service *svc)
{
	return pipe_early(k, service_put(k, svc, KVIP_CMD_REPLACE_SERVICE));
}

static int simple_request(struct kvip *k, uint8_t cmd, const char *name)
{
	struct nl_msg *msg;
	size_t namelen = 0;
	int ret;

	k->msg[0] = '\0';
	if (name) {
		ret = check_name(k, name, &namelen);
		if (ret)
			return ret;
	}
	msg = msg_new(k, cmd, NLM_F_ACK,
		      name ? nla_total_size(namelen + 1) : 0);
	if (!msg) {
		set_msg(k, "out of memory");
		return -ENOMEM;
	}
	if (name && nla_put_string(msg, KVIP_A_NAME, name) < 0) {
		nlmsg_free(msg);
		set_msg(k, "message too large");
		return -EMSGSIZE;
	}
	return submit(k, msg);
}

int kvip_service_del(struct kvip *k, const char *name)
{
	return pipe_early(k, simple_request(k, KVIP_CMD_DEL_SERVICE, name));
}

int kvip_flush(struct kvip *k)
{
	return pipe_early(k, simple_request(k, KVIP_CMD_FLUSH, NULL));
}

/* Bytes of a SET_ENDPOINTS message but for its endpoints. */
static size_t set_fixed_size(size_t namelen)
{
	return NLMSG_HDRLEN + GENL_HDRLEN + nla_total_size(namelen + 1) +
	       nla_total_size(4) /* set flags */ + NLA_HDRLEN /* nest */;
}

bool kvip_endpoints_fit(const struct kvip *k, const char *name,
			const struct kvip_endpoint *eps, size_t n)
{
	size_t size = set_fixed_size(strnlen(name, KVIP_NAME_MAX + 1));

	/* As set_endpoints() packs: a chunk has at least one endpoint. */
	if (n <= 1)
		return true;
	for (size_t i = 0; i < n; i++) {
		size += ep_enc_size(&eps[i]);
		if (i && size > k->chunk)
			return false;
	}
	return true;
}

static int set_endpoints(struct kvip *k, const char *name,
			 const struct kvip_endpoint *eps, size_t n)
{
	size_t namelen, fixed, i = 0;
	bool first = true;
	int ret;

	k->msg[0] = '\0';
	ret = check_name(k, name, &namelen);
	if (ret)
		return ret;

	fixed = set_fixed_size(namelen);

	do {
		size_t j = i, size = fixed;
		struct nl_msg *msg;
		uint32_t sflags = 0;
		bool last;

		/* Greedy packing; always at least one endpoint per chunk. */
		while (j < n && (j == i || size + ep_enc_size(&eps[j]) <=
						k->chunk))
			size += ep_enc_size(&eps[j++]);
		last = j == n;
		if (!(first && last))
			sflags = (first ? 0 : KVIP_SET_F_APPEND) |
				 (last ? 0 : KVIP_SET_F_MORE);

		msg = msg_new(k, KVIP_CMD_SET_ENDPOINTS, NLM_F_ACK,
			      size - NLMSG_HDRLEN - GENL_HDRLEN);
		if (!msg) {
			set_msg(k, "out of memory");
			return -ENOMEM;
		}
		if (nla_put_string(msg, KVIP_A_NAME, name) < 0 ||
		    (sflags && nla_put_u32(msg, KVIP_A_SET_FLAGS, sflags) < 0))
			goto overflow;
		/* Empty set: KVIP_A_ENDPOINTS absent. */
		if (j > i) {
			struct nlattr *nest;

			nest = nest_start(msg, KVIP_A_ENDPOINTS);
			if (!nest)
				goto overflow;
			for (size_t e = i; e < j; e++)
				if (put_endpoint(msg, &eps[e]) < 0)
					goto overflow;
			if (nest_end(msg, nest) < 0)
				goto overflow;
		}
		/* Only a set in one message may be pipelined. */
		if (first && last)
			return submit(k, msg);
		k->req_ep_base = i;
		ret = transact(k, msg);
		nlmsg_free(msg);
		k->req_ep_base = 0;
		if (ret < 0)
			return ret;
		i = j;
		first = false;
		continue;
overflow:
		nlmsg_free(msg);
		set_msg(k, "message too large");
		return -EMSGSIZE;
	} while (i < n);

	return 0;
}

int kvip_set_endpoints(struct kvip *k, const char *name,
		       const struct kvip_endpoint *eps, size_t n)
{
	return pipe_early(k, set_endpoints(k, name, eps, n));
}

/* ------------------------------------------------------------------ */
/* Dump                                                               */

static struct nla_policy top_policy[KVIP_A_MAX + 1] = {
	[KVIP_A_NAME]		= { .type = NLA_STRING,
				    .maxlen = KVIP_NAME_MAX + 1 },
	[KVIP_A_PROTO]		= { .type = NLA_U8 },
	[KVIP_A_FLAGS]		= { .type = NLA_U32 },
	[KVIP_A_FRONTENDS]	= { .type = NLA_NESTED },
	[KVIP_A_ENDPOINTS]	= { .type = NLA_NESTED },
	[KVIP_A_STATS]		= { .type = NLA_NESTED },
	[KVIP_A_SET_FLAGS]	= { .type = NLA_U32 },
	[KVIP_A_ENDPOINT_COUNT]	= { .type = NLA_U32 },
	[KVIP_A_AFFINITY_TIMEOUT] = { .type = NLA_U32 },
	[KVIP_A_SOURCE_RANGES]	= { .type = NLA_NESTED },
	[KVIP_A_CONFIG]		= { .type = NLA_NESTED },
	[KVIP_A_AFFINITY]	= { .type = NLA_NESTED },
	[KVIP_A_AFFINITY_COUNT]	= { .type = NLA_U32 },
};

static struct nla_policy cidr_policy[KVIP_CIDR_A_MAX + 1] = {
	[KVIP_CIDR_A_FAMILY]	= { .type = NLA_U16 },
	[KVIP_CIDR_A_ADDR]	= { .type = NLA_UNSPEC, .minlen = 4 },
	[KVIP_CIDR_A_PREFIX]	= { .type = NLA_U8 },
};

static struct nla_policy config_policy[KVIP_CONFIG_A_MAX + 1] = {
	[KVIP_CONFIG_A_NODEPORT_ADDRS]	= { .type = NLA_NESTED },
	[KVIP_CONFIG_A_CLUSTER_CIDRS]	= { .type = NLA_NESTED },
	[KVIP_CONFIG_A_MASQUERADE_ALL]	= { .type = NLA_U8 },
	[KVIP_CONFIG_A_DROP_INVALID]	= { .type = NLA_U8 },
};

static struct nla_policy affinity_policy[KVIP_AFFINITY_A_MAX + 1] = {
	[KVIP_AFFINITY_A_FAMILY]	= { .type = NLA_U16 },
	[KVIP_AFFINITY_A_CLIENT]	= { .type = NLA_UNSPEC, .minlen = 4 },
	[KVIP_AFFINITY_A_ENDPOINT]	= { .type = NLA_UNSPEC, .minlen = 4 },
	[KVIP_AFFINITY_A_PORT]		= { .type = NLA_U16 },
	[KVIP_AFFINITY_A_EXPIRES]	= { .type = NLA_U32 },
};

static struct nla_policy fe_policy[KVIP_FRONTEND_A_MAX + 1] = {
	[KVIP_FRONTEND_A_TYPE]	 = { .type = NLA_U8 },
	[KVIP_FRONTEND_A_FAMILY] = { .type = NLA_U16 },
	[KVIP_FRONTEND_A_ADDR]	 = { .type = NLA_UNSPEC, .minlen = 4 },
	[KVIP_FRONTEND_A_PORT]	 = { .type = NLA_U16 },
};

static struct nla_policy ep_policy[KVIP_ENDPOINT_A_MAX + 1] = {
	[KVIP_ENDPOINT_A_FAMILY] = { .type = NLA_U16 },
	[KVIP_ENDPOINT_A_ADDR]	 = { .type = NLA_UNSPEC, .minlen = 4 },
	[KVIP_ENDPOINT_A_PORT]	 = { .type = NLA_U16 },
	[KVIP_ENDPOINT_A_WEIGHT] = { .type = NLA_U32 },
	[KVIP_ENDPOINT_A_FLAGS]	 = { .type = NLA_U32 },
	[KVIP_ENDPOINT_A_STATS]	 = { .type = NLA_NESTED },
};

static struct nla_policy stats_policy[KVIP_STATS_A_MAX + 1] = {
	[KVIP_STATS_A_CONNS]	= { .type = NLA_U64 },
	[KVIP_STATS_A_REJECTS]	= { .type = NLA_U64 },
	[KVIP_STATS_A_DROPS]	= { .type = NLA_U64 },
};

static int get_addr(struct nlattr *a, int family, union kvip_addr *addr)
{
	int want = family == AF_INET ? 4 : family == AF_INET6 ? 16 : -1;

	if (!a || nla_len(a) != want)
		return -1;
	memcpy(addr, nla_data(a), (size_t)want);
	return 0;
}

static int parse_stats(struct nlattr *a, struct kvip_stats *st)
{
	struct nlattr *tb[KVIP_STATS_A_MAX + 1];

	if (!a)
		return 0;
	if (nla_parse_nested(tb, KVIP_STATS_A_MAX, a, stats_policy) < 0)
		return -1;
	st->has_conns = tb[KVIP_STATS_A_CONNS];
	if (st->has_conns)
		st->conns = nla_get_u64(tb[KVIP_STATS_A_CONNS]);
	if (tb[KVIP_STATS_A_REJECTS])
		st->rejects = nla_get_u64(tb[KVIP_STATS_A_REJECTS]);
	if (tb[KVIP_STATS_A_DROPS])
		st->drops = nla_get_u64(tb[KVIP_STATS_A_DROPS]);
	return 0;
}

static int parse_frontends(struct kvip *k, struct kvip_service *svc,
			   struct nlattr *list);

/* A list of KVIP_CIDR_A_* nests; add() appends one entry. */
static int parse_cidrs(struct nlattr *list,
		       struct kvip_cidr *(*add)(void *arg), void *arg)
{
	struct nlattr *pos;
	int rem;

	nla_for_each_nested(pos, list, rem) {
		struct nlattr *tb[KVIP_CIDR_A_MAX + 1];
		struct kvip_cidr *c;

		if (nla_parse_nested(tb, KVIP_CIDR_A_MAX, pos,
				     cidr_policy) < 0 ||
		    !tb[KVIP_CIDR_A_FAMILY] || !tb[KVIP_CIDR_A_PREFIX])
			return -EPROTO;
		c = add(arg);
		if (!c)
			return -ENOMEM;
		c->family = nla_get_u16(tb[KVIP_CIDR_A_FAMILY]);
		c->prefix = nla_get_u8(tb[KVIP_CIDR_A_PREFIX]);
		if (get_addr(tb[KVIP_CIDR_A_ADDR], c->family, &c->addr) < 0)
			return -EPROTO;
	}
	return 0;
}

static struct kvip_cidr *add_source_range(void *svc)
{
	return kvip_service_add_source_range(svc);
}

static int parse_affinity(struct kvip_service *svc, struct nlattr *list)
{
	struct nlattr *pos;
	int rem;

	nla_for_each_nested(pos, list, rem) {
		struct nlattr *tb[KVIP_AFFINITY_A_MAX + 1];
		struct kvip_affinity *a;

		if (nla_parse_nested(tb, KVIP_AFFINITY_A_MAX, pos,
				     affinity_policy) < 0 ||
		    !tb[KVIP_AFFINITY_A_FAMILY])
			return -EPROTO;
		a = add_affinity(svc);
		if (!a)
			return -ENOMEM;
		a->family = nla_get_u16(tb[KVIP_AFFINITY_A_FAMILY]);
		if (tb[KVIP_AFFINITY_A_PORT])
			a->port = nla_get_u16(tb[KVIP_AFFINITY_A_PORT]);
		if (tb[KVIP_AFFINITY_A_EXPIRES])
			a->expires_ms = nla_get_u32(tb[KVIP_AFFINITY_A_EXPIRES]);
		if (get_addr(tb[KVIP_AFFINITY_A_CLIENT], a->family,
			     &a->client) < 0 ||
		    get_addr(tb[KVIP_AFFINITY_A_ENDPOINT], a->family,
			     &a->endpoint) < 0)
			return -EPROTO;
	}
	return 0;
}

/* The attributes of a service's first message (or of an event). */
static int parse_service_attrs(struct kvip *k, struct kvip_service *svc,
			       struct nlattr **tb)
{
	int err;

	if (tb[KVIP_A_PROTO])
		svc->proto = nla_get_u8(tb[KVIP_A_PROTO]);
	if (tb[KVIP_A_FLAGS])
		svc->flags = nla_get_u32(tb[KVIP_A_FLAGS]);
	if (tb[KVIP_A_AFFINITY_TIMEOUT])
		svc->affinity_timeout = nla_get_u32(tb[KVIP_A_AFFINITY_TIMEOUT]);
	if (tb[KVIP_A_AFFINITY_COUNT])
		svc->affinity_count = nla_get_u32(tb[KVIP_A_AFFINITY_COUNT]);
	if (tb[KVIP_A_ENDPOINT_COUNT]) {
		svc->has_endpoint_count = true;
		svc->endpoint_count = nla_get_u32(tb[KVIP_A_ENDPOINT_COUNT]);
	}
	if (parse_stats(tb[KVIP_A_STATS], &svc->stats) < 0) {
		set_msg(k, "malformed stats in reply for service '%s'",
			svc->name);
		return -EPROTO;
	}
	if (tb[KVIP_A_SOURCE_RANGES]) {
		err = parse_cidrs(tb[KVIP_A_SOURCE_RANGES], add_source_range,
				  svc);
		if (err) {
			set_msg(k, err == -ENOMEM ? "out of memory" :
				"malformed source range in reply for service '%s'",
				svc->name);
			return err;
		}
	}
	if (tb[KVIP_A_AFFINITY]) {
		err = parse_affinity(svc, tb[KVIP_A_AFFINITY]);
		if (err) {
			set_msg(k, err == -ENOMEM ? "out of memory" :
				"malformed affinity entry in reply for service '%s'",
				svc->name);
			return err;
		}
	}
	if (tb[KVIP_A_FRONTENDS]) {
		err = parse_frontends(k, svc, tb[KVIP_A_FRONTENDS]);
		if (err)
			return err;
	}
	return 0;
}

static int parse_frontends(struct kvip *k, struct kvip_service *svc,
			   struct nlattr *list)
{
	struct nlattr *pos;
	int rem;

	nla_for_each_nested(pos, list, rem) {
		struct nlattr *tb[KVIP_FRONTEND_A_MAX + 1];
		struct kvip_frontend *fe;

		if (nla_parse_nested(tb, KVIP_FRONTEND_A_MAX, pos,
				     fe_policy) < 0 ||
		    !tb[KVIP_FRONTEND_A_TYPE] || !tb[KVIP_FRONTEND_A_PORT])
			goto bad;
		fe = kvip_service_add_frontend(svc);
		if (!fe) {
			set_msg(k, "out of memory");
			return -ENOMEM;
		}
		fe->type = nla_get_u8(tb[KVIP_FRONTEND_A_TYPE]);
		fe->port = nla_get_u16(tb[KVIP_FRONTEND_A_PORT]);
		if (tb[KVIP_FRONTEND_A_FAMILY]) {
			fe->family = nla_get_u16(tb[KVIP_FRONTEND_A_FAMILY]);
			if (get_addr(tb[KVIP_FRONTEND_A_ADDR], fe->family,
				     &fe->addr) < 0)
				goto bad;
		}
	}
	return 0;
bad:
	set_msg(k, "malformed frontend in reply for service '%s'", svc->name);
	return -EPROTO;
}

static int parse_endpoints(struct kvip *k, struct kvip_service *svc,
			   struct nlattr *list)
{
	struct nlattr *pos;
	int rem;

	nla_for_each_nested(pos, list, rem) {
		struct nlattr *tb[KVIP_ENDPOINT_A_MAX + 1];
		struct kvip_endpoint *ep;

		if (nla_parse_nested(tb, KVIP_ENDPOINT_A_MAX, pos,
				     ep_policy) < 0 ||
		    !tb[KVIP_ENDPOINT_A_FAMILY] || !tb[KVIP_ENDPOINT_A_PORT])
			goto bad;
		ep = kvip_service_add_endpoint(svc);
		if (!ep) {
			set_msg(k, "out of memory");
			return -ENOMEM;
		}
		ep->family = nla_get_u16(tb[KVIP_ENDPOINT_A_FAMILY]);
		ep->port = nla_get_u16(tb[KVIP_ENDPOINT_A_PORT]);
		ep->weight = tb[KVIP_ENDPOINT_A_WEIGHT] ?
			nla_get_u32(tb[KVIP_ENDPOINT_A_WEIGHT]) :
			KVIP_WEIGHT_DEFAULT;
		ep->flags = tb[KVIP_ENDPOINT_A_FLAGS] ?
			nla_get_u32(tb[KVIP_ENDPOINT_A_FLAGS]) :
			KVIP_ENDPOINT_F_DEFAULT;
		if (get_addr(tb[KVIP_ENDPOINT_A_ADDR], ep->family,
			     &ep->addr) < 0 ||
		    parse_stats(tb[KVIP_ENDPOINT_A_STATS], &ep->stats) < 0)
			goto bad;
		ep->has_stats = tb[KVIP_ENDPOINT_A_STATS];
	}
	return 0;
bad:
	set_msg(k, "malformed endpoint in reply for service '%s'", svc->name);
	return -EPROTO;
}

static int dump_parse(struct kvip *k, struct nlmsghdr *nlh)
{
	struct dump_ctx *d = k->dump;
	struct kvip_service_list *list = d->list;
	struct nlattr *tb[KVIP_A_MAX + 1];
	struct kvip_service *svc;
	char name[KVIP_NAME_MAX + 1];
	int err;

	if (genlmsg_parse(nlh, 0, tb, KVIP_A_MAX, top_policy) < 0 ||
	    !tb[KVIP_A_NAME]) {
		set_msg(k, "malformed dump message");
		return -EPROTO;
	}
	nla_strlcpy(name, tb[KVIP_A_NAME], sizeof(name));

	if (!tb[KVIP_A_PROTO]) {
		/* Continuation: more endpoints of the previous service. */
		if (d->skipping)
			return 0;
		if (!list->n || strcmp(list->v[list->n - 1].name, name)) {
			set_msg(k, "dump continuation for service '%s' without "
				"its first message", name);
			return -EPROTO;
		}
		svc = &list->v[list->n - 1];
		return tb[KVIP_A_ENDPOINTS] ?
			parse_endpoints(k, svc, tb[KVIP_A_ENDPOINTS]) : 0;
	}

	/* Names are unique: a repeated first message breaks the contract. */
	if (list->n && !d->skipping && !strcmp(list->v[list->n - 1].name, name)) {
		set_msg(k, "kernel bug: the dump repeats the first message of "
			"service '%s' (continuations carry only the name and "
			"endpoints)", name);
		return -EPROTO;
	}

	/* Kernels that ignore the filter: filter here too. */
	d->skipping = d->name && strcmp(d->name, name);
	if (d->skipping)
		return 0;

	if (list->n == list->cap) {
		size_t ncap = list->cap ? list->cap * 2 : 16;
		struct kvip_service *v = realloc(list->v, ncap * sizeof(*v));

		if (!v)
			goto nomem;
		list->v = v;
		list->cap = ncap;
	}
	svc = &list->v[list->n++];
	kvip_service_init(svc);
	memcpy(svc->name, name, sizeof(name));
	err = parse_service_attrs(k, svc, tb);
	if (err)
		return err;
	if (tb[KVIP_A_ENDPOINTS])
		return parse_endpoints(k, svc, tb[KVIP_A_ENDPOINTS]);
	return 0;
nomem:
	set_msg(k, "out of memory");
	return -ENOMEM;
}

/* A consistent dump has exactly KVIP_A_ENDPOINT_COUNT endpoints each. */
static int dump_check(struct kvip *k, const struct kvip_service_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		const struct kvip_service *s = &list->v[i];

		if (s->has_endpoint_count && s->endpoint_count != s->n_endpoints) {
			set_msg(k, "inconsistent dump: service '%s' has "
				"endpoint count %u but %zu endpoints were "
				"received", s->name, s->endpoint_count,
				s->n_endpoints);
			return -EAGAIN;
		}
	}
	return 0;
}

/*
 * Pause before dump attempt @attempt (1, 2, ...): exponential, capped,
 * scaled by a random 50..100 % (@rnd), so concurrent readers spread out.
 * Returns milliseconds.
 */
unsigned int kvip__dump_backoff_ms(unsigned int attempt, uint32_t rnd)
{
	unsigned int base = KVIP_DUMP_BACKOFF_MS;

	while (--attempt && base < KVIP_DUMP_BACKOFF_MAX_MS)
		base *= 2;
	if (base > KVIP_DUMP_BACKOFF_MAX_MS)
		base = KVIP_DUMP_BACKOFF_MAX_MS;
	/* base/2 + [0, base/2], in microsecond steps. */
	return (base * 500 + rnd % (base * 500 + 1)) / 1000;
}

static uint32_t backoff_random(void)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)clock();
	return r;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One dump (or, with @doit, a GET of @name), into @list. */
static int list_once(struct kvip *k, const char *name, size_t namelen,
		     bool doit, struct kvip_service_list *list,
		     struct dump_ctx *d)
{
	struct nl_msg *msg;
	int ret;

	list_clear(list);
	msg = msg_new(k, KVIP_CMD_GET_SERVICE, doit ? NLM_F_ACK : NLM_F_DUMP,
		      name ? nla_total_size(namelen + 1) : 0);
	if (!msg) {
		set_msg(k, "out of memory");
		return -ENOMEM;
	}
	if (name && nla_put_string(msg, KVIP_A_NAME, name) < 0) {
		nlmsg_free(msg);
		set_msg(k, "message too large");
		return -EMSGSIZE;
	}
	k->dump = d;
	k->req_ep_base = 0;
	ret = transact(k, msg);
	k->dump = NULL;
	nlmsg_free(msg);
	return ret;
}

int kvip_service_list(struct kvip *k, const char *name,
		      struct kvip_service_list *list)
{
	unsigned int slept = 0;
	size_t namelen = 0;
	int ret = 0;

	memset(list, 0, sizeof(*list));
	k->msg[0] = '\0';
	if (name) {
		ret = check_name(k, name, &namelen);
		if (ret)
			return ret;

		/*
		 * One service: a plain GET is atomic and is the only reply
		 * with the affinity entries. Sets too large for it (EMSGSIZE)
		 * take the dump.
		 */
		struct dump_ctx d = { .list = list, .name = name };

		ret = list_once(k, name, namelen, true, list, &d);
		if (!ret && d.err)
			ret = d.err;
		if (!ret && !list->n) {
			set_msg(k, "no such service");
			ret = -ENOENT;
		}
		if (ret != -EMSGSIZE || d.err) {
			if (ret < 0)
				kvip_service_list_free(list);
			return ret;
		}
		k->msg[0] = '\0';
	}

	for (unsigned int attempt = 1; attempt <= KVIP_DUMP_TRIES; attempt++) {
		struct dump_ctx d = { .list = list, .name = name };

		if (attempt > 1) {
			unsigned int ms = kvip__dump_backoff_ms(attempt - 1,
							backoff_random());

			if (slept + ms > KVIP_DUMP_BUDGET_MS)
				break;
			sleep_ms(ms);
			slept += ms;
		}
		ret = list_once(k, name, namelen, false, list, &d);
		if (ret < 0) {
			/* 6.1 drops the extack of a dump's start callback. */
			if (ret == -ENOENT && name && !k->msg[0])
				set_msg(k, "no such service");
			break;		/* the kernel said no */
		}
		if (k->intr) {
			ret = -EAGAIN;
			set_msg(k, "dump interrupted %u times in %u ms: the "
				"service table kept changing", attempt, slept);
			continue;
		}
		if (d.err) {
			ret = d.err;
			break;
		}
		ret = dump_check(k, list);
		if (ret)
			continue;
		if (name && list->n == 0) {
			set_msg(k, "no such service");
			ret = -ENOENT;
		}
		break;
	}
	if (ret < 0)
		kvip_service_list_free(list);
	return ret;
}

int kvip_service_dump(struct kvip *k, const char *name, kvip_service_cb cb,
		      void *arg)
{
	struct kvip_service_list list;
	int ret;

	ret = kvip_service_list(k, name, &list);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < list.n && !ret; i++)
		ret = cb(&list.v[i], arg);
	kvip_service_list_free(&list);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Settings                                                           */

void kvip_config_init(struct kvip_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->masquerade_all = -1;
	cfg->drop_invalid = -1;
}

void kvip_config_free(struct kvip_config *cfg)
{
	free(cfg->nodeport_addrs);
	free(cfg->cluster_cidrs);
	kvip_config_init(cfg);
}

static struct kvip_cidr *add_nodeport_addr(void *cfg)
{
	struct kvip_config *c = cfg;

	return add_cidr(&c->nodeport_addrs, &c->n_nodeport_addrs);
}

static struct kvip_cidr *add_cluster_cidr(void *cfg)
{
	struct kvip_config *c = cfg;

	return add_cidr(&c->cluster_cidrs, &c->n_cluster_cidrs);
}

/* KVIP_A_CONFIG of @tb into @cfg (initialised, lists empty). */
static int parse_config_attr(struct kvip *k, struct nlattr *a,
			     struct kvip_config *cfg)
{
	struct nlattr *tb[KVIP_CONFIG_A_MAX + 1];
	int err = 0;

	if (!a || nla_parse_nested(tb, KVIP_CONFIG_A_MAX, a,
				   config_policy) < 0) {
		set_msg(k, "malformed settings in reply");
		return -EPROTO;
	}
	cfg->has_nodeport_addrs = true;
	cfg->has_cluster_cidrs = true;
	if (tb[KVIP_CONFIG_A_NODEPORT_ADDRS])
		err = parse_cidrs(tb[KVIP_CONFIG_A_NODEPORT_ADDRS],
				  add_nodeport_addr, cfg);
	if (!err && tb[KVIP_CONFIG_A_CLUSTER_CIDRS])
		err = parse_cidrs(tb[KVIP_CONFIG_A_CLUSTER_CIDRS],
				  add_cluster_cidr, cfg);
	if (err) {
		set_msg(k, err == -ENOMEM ? "out of memory" :
			"malformed prefix in settings reply");
		return err;
	}
	cfg->masquerade_all = tb[KVIP_CONFIG_A_MASQUERADE_ALL] ?
		nla_get_u8(tb[KVIP_CONFIG_A_MASQUERADE_ALL]) : 0;
	cfg->drop_invalid = tb[KVIP_CONFIG_A_DROP_INVALID] ?
		nla_get_u8(tb[KVIP_CONFIG_A_DROP_INVALID]) : 0;
	return 0;
}

static int config_parse(struct kvip *k, struct nlmsghdr *nlh,
			struct kvip_config *cfg)
{
	struct nlattr *tb[KVIP_A_MAX + 1];

	if (genlmsg_parse(nlh, 0, tb, KVIP_A_MAX, top_policy) < 0) {
		set_msg(k, "malformed settings reply");
		return -EPROTO;
	}
	kvip_config_free(cfg);
	return parse_config_attr(k, tb[KVIP_A_CONFIG], cfg);
}

int kvip_config_get(struct kvip *k, struct kvip_config *cfg)
{
	struct nl_msg *msg;
	int ret;

	kvip_config_init(cfg);
	k->msg[0] = '\0';
	msg = msg_new(k, KVIP_CMD_GET_CONFIG, NLM_F_ACK, 0);
	if (!msg) {
		set_msg(k, "out of memory");
		return -ENOMEM;
	}
	k->config = cfg;
	ret = transact(k, msg);
	k->config = NULL;
	nlmsg_free(msg);
	if (!ret && cfg->masquerade_all < 0) {
		set_msg(k, "no settings in the reply");
		ret = -EPROTO;
	}
	if (ret < 0)
		kvip_config_free(cfg);
	return ret;
}

static int config_set(struct kvip *k, const struct kvip_config *cfg)
{
	struct nlattr *nest;
	struct nl_msg *msg;
	size_t size;

	k->msg[0] = '\0';
	if ((cfg->has_nodeport_addrs ? cfg->n_nodeport_addrs : 0) +
	    (cfg->has_cluster_cidrs ? cfg->n_cluster_cidrs : 0) >
	    (NEST_MAX - 64) / CIDR_ENC_SIZE) {
		set_msg(k, "too many prefixes for one message");
		return -EMSGSIZE;
	}
	size = 3 * NLA_HDRLEN + 2 * nla_total_size(1) +
	       (cfg->n_nodeport_addrs + cfg->n_cluster_cidrs) * CIDR_ENC_SIZE;
	msg = msg_new(k, KVIP_CMD_SET_CONFIG, NLM_F_ACK, size);
	if (!msg) {
		set_msg(k, "out of memory");
		return -ENOMEM;
	}
	nest = nest_start(msg, KVIP_A_CONFIG);
	if (!nest ||
	    (cfg->has_nodeport_addrs &&
	     put_cidrs(msg, KVIP_CONFIG_A_NODEPORT_ADDRS, cfg->nodeport_addrs,
		       cfg->n_nodeport_addrs) < 0) ||
	    (cfg->has_cluster_cidrs &&
	     put_cidrs(msg, KVIP_CONFIG_A_CLUSTER_CIDRS, cfg->cluster_cidrs,
		       cfg->n_cluster_cidrs) < 0) ||
	    (cfg->masquerade_all >= 0 &&
	     nla_put_u8(msg, KVIP_CONFIG_A_MASQUERADE_ALL,
			(uint8_t)cfg->masquerade_all) < 0) ||
	    (cfg->drop_invalid >= 0 &&
	     nla_put_u8(msg, KVIP_CONFIG_A_DROP_INVALID,
			(uint8_t)cfg->drop_invalid) < 0) ||
	    nest_end(msg, nest) < 0) {
		nlmsg_free(msg);
		set_msg(k, "message too large");
		return -EMSGSIZE;
	}
	return submit(k, msg);
}

int kvip_config_set(struct kvip *k, const struct kvip_config *cfg)
{
	return pipe_early(k, config_set(k, cfg));
}

/* ------------------------------------------------------------------ */
/* Events                                                             */

static int event_parse(struct kvip *k, struct nlmsghdr *nlh)
{
	struct monitor_ctx *m = k->monitor;
	struct genlmsghdr *gh = nlmsg_data(nlh);
	struct nlattr *tb[KVIP_A_MAX + 1];
	struct kvip_service svc;
	struct kvip_config cfg;
	int err;

	if (nlh->nlmsg_type != k->family ||
	    nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return NL_SKIP;
	if (genlmsg_parse(nlh, 0, tb, KVIP_A_MAX, top_policy) < 0) {
		set_msg(k, "malformed event");
		m->ret = -EPROTO;
		return NL_STOP;
	}
	kvip_service_init(&svc);
	kvip_config_init(&cfg);
	switch (gh->cmd) {
	case KVIP_CMD_NEW_SERVICE:
	case KVIP_CMD_DEL_SERVICE:
	case KVIP_CMD_SET_ENDPOINTS:
		if (!tb[KVIP_A_NAME]) {
			set_msg(k, "malformed event: no service name");
			m->ret = -EPROTO;
			return NL_STOP;
		}
		nla_strlcpy(svc.name, tb[KVIP_A_NAME], sizeof(svc.name));
		err = parse_service_attrs(k, &svc, tb);
		if (!err)
			m->ret = m->cb(gh->cmd, &svc, NULL, m->arg);
		break;
	case KVIP_CMD_SET_CONFIG:
		err = parse_config_attr(k, tb[KVIP_A_CONFIG], &cfg);
		if (!err)
			m->ret = m->cb(gh->cmd, NULL, &cfg, m->arg);
		break;
	case KVIP_CMD_FLUSH:
		err = 0;
		m->ret = m->cb(gh->cmd, NULL, NULL, m->arg);
		break;
	default:
		return NL_SKIP;	/* a newer kernel's event */
	}
	kvip_service_free(&svc);
	kvip_config_free(&cfg);
	if (err)
		m->ret = err;
	return m->ret ? NL_STOP : NL_OK;
}

int kvip_monitor(struct kvip *k, kvip_event_cb cb, void *arg)
{
	struct monitor_ctx m = { .cb = cb, .arg = arg };
	int grp, ret;

	k->msg[0] = '\0';
	/* libnl's resolver waits for an ACK: it needs auto-ACK on. */
	nl_socket_enable_auto_ack(k->sk);
	grp = genl_ctrl_resolve_grp(k->sk, KVIP_GENL_NAME, KVIP_MCGRP_EVENTS);
	nl_socket_disable_auto_ack(k->sk);
	if (grp < 0) {
		set_msg(k, "kernel module without events: %s",
			nl_geterror(grp));
		return nlerr_to_errno(grp);
	}
	ret = nl_socket_add_membership(k->sk, grp);
	if (ret < 0)
		return fail_nl(k, ret, "cannot join the events group");

	k->monitor = &m;
	while (!m.ret) {
		ret = nl_recvmsgs(k->sk, k->cb);
		if (ret < 0 && !m.ret) {
			/* Overrun: events were lost; say so. */
			if (ret == -NLE_NOMEM || ret == -NLE_MSG_OVERFLOW) {
				set_msg(k, "events lost: receive buffer overrun");
				m.ret = -ENOBUFS;
			} else {
				m.ret = fail_nl(k, ret, "netlink receive");
			}
		}
	}
	k->monitor = NULL;
	nl_socket_drop_membership(k->sk, grp);
	return m.ret;
}
