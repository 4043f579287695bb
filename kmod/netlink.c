// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink family "kvip": the only way to configure kvip. The
 * contract, with every command and attribute, is include/uapi/linux/kvip.h.
 */
#include <linux/in.h>
#include <linux/in6.h>
#include <net/genetlink.h>
#include <net/ipv6.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "kvip_core.h"

static struct genl_family kvip_family;

/* Policies, one per nesting level */

static struct netlink_range_validation kvip_weight_range = {
	.max = KVIP_WEIGHT_MAX,
};

static struct netlink_range_validation kvip_affinity_range = {
	.min = 1,
	.max = KVIP_AFFINITY_TIMEOUT_MAX,
};

static const struct nla_policy kvip_frontend_policy[KVIP_FRONTEND_A_MAX + 1] = {
	[KVIP_FRONTEND_A_TYPE]	 = NLA_POLICY_RANGE(NLA_U8,
						    KVIP_FRONTEND_CLUSTERIP,
						    KVIP_FRONTEND_TYPE_MAX),
	[KVIP_FRONTEND_A_FAMILY] = { .type = NLA_U16 },
	[KVIP_FRONTEND_A_ADDR]	 = { .type = NLA_BINARY },
	[KVIP_FRONTEND_A_PORT]	 = { .type = NLA_U16 },
};

static const struct nla_policy kvip_endpoint_policy[KVIP_ENDPOINT_A_MAX + 1] = {
	[KVIP_ENDPOINT_A_FAMILY] = { .type = NLA_U16 },
	[KVIP_ENDPOINT_A_ADDR]	 = { .type = NLA_BINARY },
	[KVIP_ENDPOINT_A_PORT]	 = { .type = NLA_U16 },
	[KVIP_ENDPOINT_A_WEIGHT] = NLA_POLICY_FULL_RANGE(NLA_U32,
							 &kvip_weight_range),
	[KVIP_ENDPOINT_A_FLAGS]	 = { .type = NLA_U32 },
	[KVIP_ENDPOINT_A_STATS]	 = { .type = NLA_REJECT,
				     .reject_message = "statistics are read-only" },
};

#define KVIP_POLICY_NAME \
	[KVIP_A_NAME] = { .type = NLA_NUL_STRING, .len = KVIP_NAME_MAX }

static const struct nla_policy kvip_new_policy[KVIP_A_MAX + 1] = {
	KVIP_POLICY_NAME,
	[KVIP_A_PROTO]	   = { .type = NLA_U8 },
	[KVIP_A_FLAGS]	   = { .type = NLA_U32 },
	[KVIP_A_FRONTENDS] = NLA_POLICY_NESTED_ARRAY(kvip_frontend_policy),
	[KVIP_A_ENDPOINTS] = NLA_POLICY_NESTED_ARRAY(kvip_endpoint_policy),
	[KVIP_A_AFFINITY_TIMEOUT] = NLA_POLICY_FULL_RANGE(NLA_U32,
							  &kvip_affinity_range),
	[KVIP_A_SOURCE_RANGES] = NLA_POLICY_NESTED_ARRAY(kvip_cidr_policy),
};

static const struct nla_policy kvip_name_policy[KVIP_A_MAX + 1] = {
	KVIP_POLICY_NAME,
};

static const struct nla_policy kvip_set_policy[KVIP_A_MAX + 1] = {
	KVIP_POLICY_NAME,
	[KVIP_A_ENDPOINTS] = NLA_POLICY_NESTED_ARRAY(kvip_endpoint_policy),
	[KVIP_A_SET_FLAGS] = { .type = NLA_U32 },
};

static const struct nla_policy kvip_flush_policy[KVIP_A_MAX + 1] = {};

static const struct nla_policy kvip_config_set_policy[KVIP_A_MAX + 1] = {
	[KVIP_A_CONFIG] = NLA_POLICY_NESTED(kvip_config_policy),
};

/* Events (KVIP_MCGRP_EVENTS), sent under kvip_net.lock so they keep order. */
static void kvip_notify_service(struct kvip_net *kn,
				const struct kvip_service *svc);
static void kvip_notify_endpoints(struct kvip_net *kn,
				  const struct kvip_service *svc);
static void kvip_notify_simple(struct kvip_net *kn, u8 cmd, const char *name);
static void kvip_notify_config(struct kvip_net *kn);

/* Like NL_REQ_ATTR_CHECK(), with a message. */
#define kvip_require(extack, nest, tb, type, msg) ({			\
	struct netlink_ext_ack *_kx = (extack);				\
	bool __missing = !(tb)[type];					\
									\
	if (__missing) {						\
		NL_SET_ERR_MSG(_kx, msg);					\
		NL_SET_ERR_ATTR_MISS(_kx, nest, type);				\
	}								\
	__missing;							\
})

static const char *kvip_proto_name(u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	default:
		return "sctp";
	}
}

/* Parsing */

static int kvip_parse_name(struct genl_info *info, const char **name)
{
	struct nlattr *attr = info->attrs[KVIP_A_NAME];

	if (kvip_require(info->extack, NULL, info->attrs, KVIP_A_NAME,
			 "service name missing"))
		return -EINVAL;
	if (!nla_len(attr) || !*(char *)nla_data(attr)) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "empty service name");
		return -EINVAL;
	}
	*name = nla_data(attr);
	return 0;
}

/* Port 0 is EINVAL like the other malformed values, not a policy ERANGE. */
static int kvip_parse_port(struct nlattr *attr, __be16 *port,
			   struct netlink_ext_ack *extack)
{
	u16 p = nla_get_u16(attr);

	if (!p) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "port must be 1..65535");
		return -EINVAL;
	}
	*port = htons(p);
	return 0;
}

static int kvip_parse_addr(struct nlattr **tb, int fam_type, int addr_type,
			   const struct nlattr *nest, u8 *family,
			   union nf_inet_addr *addr,
			   struct netlink_ext_ack *extack)
{
	struct nlattr *a = tb[addr_type];
	u16 f;

	if (kvip_require(extack, nest, tb, fam_type, "address family missing") ||
	    kvip_require(extack, nest, tb, addr_type, "address missing"))
		return -EINVAL;

	f = nla_get_u16(tb[fam_type]);
	if (f != AF_INET && f != AF_INET6) {
		NL_SET_ERR_MSG_ATTR(extack, tb[fam_type],
				    "address family must be AF_INET or AF_INET6");
		return -EINVAL;
	}
	if (nla_len(a) != (f == AF_INET ? 4 : 16)) {
		NL_SET_ERR_MSG_ATTR(extack, a,
				    "address length does not match its family");
		return -EINVAL;
	}
	memset(addr, 0, sizeof(*addr));
	nla_memcpy(addr, a, nla_len(a));
	if (f == AF_INET ? !addr->ip : ipv6_addr_any(&addr->in6)) {
		NL_SET_ERR_MSG_ATTR(extack, a, "unspecified address");
		return -EINVAL;
	}
	*family = f;
	return 0;
}

static int kvip_parse_frontend(const struct nlattr *nest,
			       struct kvip_frontend *fe,
			       struct netlink_ext_ack *extack)
{
	struct nlattr *tb[KVIP_FRONTEND_A_MAX + 1];
	int err;

	err = nla_parse_nested(tb, KVIP_FRONTEND_A_MAX, nest,
			       kvip_frontend_policy, extack);
	if (err)
		return err;
	if (kvip_require(extack, nest, tb, KVIP_FRONTEND_A_TYPE,
			 "frontend type missing") ||
	    kvip_require(extack, nest, tb, KVIP_FRONTEND_A_PORT,
			 "frontend port missing"))
		return -EINVAL;

	memset(fe, 0, sizeof(*fe));
	fe->type = nla_get_u8(tb[KVIP_FRONTEND_A_TYPE]);
	err = kvip_parse_port(tb[KVIP_FRONTEND_A_PORT], &fe->key.port, extack);
	if (err)
		return err;
	if (fe->type == KVIP_FRONTEND_NODEPORT) {
		if (tb[KVIP_FRONTEND_A_FAMILY] || tb[KVIP_FRONTEND_A_ADDR]) {
			NL_SET_ERR_MSG_ATTR(extack, nest,
					    "a node port takes no address");
			return -EINVAL;
		}
		return 0;
	}
	return kvip_parse_addr(tb, KVIP_FRONTEND_A_FAMILY, KVIP_FRONTEND_A_ADDR,
			       nest, &fe->key.family, &fe->key.addr, extack);
}

/* Parse a list of frontends into a new array; rejects repeated entries. */
static int kvip_parse_frontends(struct genl_info *info,
				struct kvip_frontend **out, unsigned int *nout)
{
	struct nlattr *list = info->attrs[KVIP_A_FRONTENDS], *nest;
	struct kvip_frontend *fe;
	unsigned int n = 0, i;
	int rem, err;

	if (kvip_require(info->extack, NULL, info->attrs, KVIP_A_FRONTENDS,
			 "a service needs at least one frontend"))
		return -EINVAL;
	nla_for_each_nested(nest, list, rem)
		n++;
	if (!n) {
		NL_SET_ERR_MSG_ATTR(info->extack, list,
				    "a service needs at least one frontend");
		return -EINVAL;
	}
	if (n > KVIP_FRONTENDS_MAX) {
		NL_SET_ERR_MSG_ATTR(info->extack, list, "too many frontends");
		return -E2BIG;
	}

	fe = kcalloc(n, sizeof(*fe), KVIP_GFP);
	if (!fe) {
		NL_SET_ERR_MSG(info->extack, "out of memory for the frontends");
		return -ENOMEM;
	}
	n = 0;
	nla_for_each_nested(nest, list, rem) {
		err = kvip_parse_frontend(nest, &fe[n], info->extack);
		if (err)
			goto err;
		for (i = 0; i < n; i++) {
			if (!memcmp(&fe[i].key, &fe[n].key, sizeof(fe->key))) {
				NL_SET_ERR_MSG_ATTR(info->extack, nest,
						    "frontend listed twice");
				err = -EEXIST;
				goto err;
			}
		}
		n++;
	}
	*out = fe;
	*nout = n;
	return 0;
err:
	kfree(fe);
	return err;
}

static int kvip_parse_endpoint(const struct nlattr *nest, struct kvip_ep *ep,
			       struct netlink_ext_ack *extack)
{
	struct nlattr *tb[KVIP_ENDPOINT_A_MAX + 1];
	u32 flags = KVIP_ENDPOINT_F_DEFAULT;
	int err;

	err = nla_parse_nested(tb, KVIP_ENDPOINT_A_MAX, nest,
			       kvip_endpoint_policy, extack);
	if (err)
		return err;
	if (kvip_require(extack, nest, tb, KVIP_ENDPOINT_A_PORT,
			 "endpoint port missing"))
		return -EINVAL;
	if (tb[KVIP_ENDPOINT_A_FLAGS]) {
		flags = nla_get_u32(tb[KVIP_ENDPOINT_A_FLAGS]);
		if (flags & ~__KVIP_ENDPOINT_F_ALL) {
			NL_SET_ERR_MSG_ATTR(extack, tb[KVIP_ENDPOINT_A_FLAGS],
					    "unknown endpoint flags");
			return -EOPNOTSUPP;
		}
	}

	memset(ep, 0, sizeof(*ep));
	err = kvip_parse_port(tb[KVIP_ENDPOINT_A_PORT], &ep->port, extack);
	if (err)
		return err;
	ep->flags = flags;
	ep->weight = tb[KVIP_ENDPOINT_A_WEIGHT] ?
		     nla_get_u32(tb[KVIP_ENDPOINT_A_WEIGHT]) :
		     KVIP_WEIGHT_DEFAULT;
	return kvip_parse_addr(tb, KVIP_ENDPOINT_A_FAMILY, KVIP_ENDPOINT_A_ADDR,
			       nest, &ep->family, &ep->addr, extack);
}

/* Parse the endpoint list of @info into a kvmalloc()ed array. */
static int kvip_parse_endpoints(struct genl_info *info,
				struct kvip_ep **out, u32 *nout)
{
	struct nlattr *list = info->attrs[KVIP_A_ENDPOINTS], *nest;
	struct kvip_ep *ep;
	u32 n = 0;
	int rem, err;

	*out = NULL;
	*nout = 0;
	if (!list)
		return 0;
	nla_for_each_nested(nest, list, rem)
		n++;
	if (n > KVIP_ENDPOINTS_MAX) {
		NL_SET_ERR_MSG_ATTR(info->extack, list,
				    "too many endpoints for one service");
		return -E2BIG;
	}
	if (!n)
		return 0;

	ep = kvmalloc_array(n, sizeof(*ep), KVIP_GFP);
	if (!ep) {
		NL_SET_ERR_MSG(info->extack, "out of memory for the endpoints");
		return -ENOMEM;
	}
	n = 0;
	nla_for_each_nested(nest, list, rem) {
		err = kvip_parse_endpoint(nest, &ep[n++], info->extack);
		if (err) {
			kvfree(ep);
			return err;
		}
	}
	*out = ep;
	*nout = n;
	return 0;
}

static void kvip_extack_dup(struct netlink_ext_ack *extack,
			    const struct kvip_ep *ep)
{
	NL_SET_ERR_MSG(extack, "endpoint listed twice");
	if (ep->family == AF_INET)
		kvip_extack_fmt(extack, "endpoint %pI4:%u listed twice",
				&ep->addr.ip, ntohs(ep->port));
	else
		kvip_extack_fmt(extack, "endpoint [%pI6c]:%u listed twice",
				&ep->addr.in6, ntohs(ep->port));
}

/* Build a set, or report why not. NULL is the empty set. */
static struct kvip_endpoints *kvip_build(const struct kvip_ep *ep, u32 n,
					 u32 svc_flags,
					 struct netlink_ext_ack *extack)
{
	bool stats = svc_flags & KVIP_SERVICE_F_ENDPOINT_STATS;
	struct kvip_endpoints *eps;
	u32 dup;

	eps = kvip_endpoints_build(ep, n, stats, &dup);
	if (IS_ERR(eps) && PTR_ERR(eps) == -EEXIST)
		kvip_extack_dup(extack, &ep[dup]);
	else if (IS_ERR(eps))
		NL_SET_ERR_MSG(extack, "out of memory for the endpoint set");
	return eps;
}

/* Commands */

/* Per-netns limits (module parameters), so no netns can hog the node. */
static int kvip_service_budget(struct kvip_net *kn,
			       struct netlink_ext_ack *extack)
{
	unsigned int max = READ_ONCE(kvip_max_services);

	if (kn->nservices < max)
		return 0;
	NL_SET_ERR_MSG(extack, "service limit of this netns reached");
	kvip_extack_fmt(extack,
			"this netns has the maximum of %u services (kvip.max_services)",
			max);
	return -ENOSPC;
}

/* May @svc's set of @old endpoints become @new more, staged ones counted? */
static int kvip_endpoint_budget(struct kvip_net *kn, u32 old, u32 new,
				struct netlink_ext_ack *extack)
{
	unsigned int max = READ_ONCE(kvip_max_endpoints);

	if ((u64)kn->nendpoints + kn->nstaged - old + new <= max)
		return 0;
	NL_SET_ERR_MSG(extack, "endpoint limit of this netns reached");
	kvip_extack_fmt(extack,
			"this netns would exceed its maximum of %u endpoints (kvip.max_endpoints)",
			max);
	return -ENOSPC;
}

static u32 kvip_svc_count(struct kvip_net *kn, const struct kvip_service *svc)
{
	struct kvip_endpoints *eps;

	if (!svc)
		return 0;
	eps = rcu_dereference_protected(svc->eps, lockdep_is_held(&kn->lock));
	return eps ? eps->count : 0;
}

static u32 kvip_svc_flags(struct kvip_net *kn, const struct kvip_service *svc)
{
	return kvip_svc_opts_locked(kn, svc)->flags;
}

static void kvip_extack_owner(struct netlink_ext_ack *extack,
			      const struct kvip_frontend *fe)
{
	const struct kvip_fe_key *k = &fe->key;
	const char *proto = kvip_proto_name(k->proto);
	const char *owner = fe->svc->name;

	NL_SET_ERR_MSG(extack, "frontend is used by another service");
	if (fe->type == KVIP_FRONTEND_NODEPORT)
		kvip_extack_fmt(extack,
				"node port %u/%s is used by service '%s'",
				ntohs(k->port), proto, owner);
	else if (k->family == AF_INET)
		kvip_extack_fmt(extack,
				"frontend %pI4:%u/%s is used by service '%s'",
				&k->addr.ip, ntohs(k->port), proto, owner);
	else
		kvip_extack_fmt(extack,
				"frontend [%pI6c]:%u/%s is used by service '%s'",
				&k->addr.in6, ntohs(k->port), proto, owner);
}

/* Frontends of @fe must be free or already owned by @svc (may be NULL). */
static int kvip_check_frontends(struct kvip_net *kn, struct kvip_service *svc,
				u8 proto, const struct kvip_frontend *fe,
				unsigned int nfe, struct netlink_ext_ack *extack)
{
	unsigned int i;

	for (i = 0; i < nfe; i++) {
		struct kvip_fe_key key = fe[i].key;
		struct kvip_frontend *cur;

		key.proto = proto;
		cur = kvip_frontend_find(kn, &key);
		if (cur && cur->svc != svc) {
			kvip_extack_owner(extack, cur);
			return -EEXIST;
		}
	}
	return 0;
}

struct kvip_new_req {
	const char *name;
	u8 proto;
	struct kvip_svc_opts *opts;
	struct kvip_frontend *fe;
	unsigned int nfe;
	struct kvip_endpoints *eps;
	bool has_eps;
};

/* The options of NEW/REPLACE_SERVICE; absent ones are the defaults. */
static int kvip_parse_opts(struct genl_info *info, struct kvip_svc_opts **out)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr **attrs = info->attrs;
	struct kvip_svc_opts *opts;
	struct kvip_cidrs *ranges = NULL;
	u32 flags = 0;

	if (attrs[KVIP_A_FLAGS]) {
		flags = nla_get_u32(attrs[KVIP_A_FLAGS]);
		if (flags & ~__KVIP_SERVICE_F_ALL) {
			NL_SET_ERR_MSG_ATTR(extack, attrs[KVIP_A_FLAGS],
					    "unknown service flags");
			return -EOPNOTSUPP;
		}
	}
	if (attrs[KVIP_A_AFFINITY_TIMEOUT] && !(flags & KVIP_SERVICE_F_AFFINITY)) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[KVIP_A_AFFINITY_TIMEOUT],
				    "affinity timeout without client IP affinity");
		return -EINVAL;
	}
	if (attrs[KVIP_A_SOURCE_RANGES]) {
		ranges = kvip_cidrs_parse(attrs[KVIP_A_SOURCE_RANGES],
					  KVIP_SOURCE_RANGES_MAX, extack);
		if (IS_ERR(ranges))
			return PTR_ERR(ranges);
	}
	opts = kzalloc(sizeof(*opts), KVIP_GFP);
	if (!opts) {
		kfree(ranges);
		NL_SET_ERR_MSG(extack, "out of memory for the service");
		return -ENOMEM;
	}
	opts->flags = flags;
	opts->affinity_timeout = attrs[KVIP_A_AFFINITY_TIMEOUT] ?
		nla_get_u32(attrs[KVIP_A_AFFINITY_TIMEOUT]) :
		KVIP_AFFINITY_TIMEOUT_DEFAULT;
	opts->source_ranges = ranges;
	*out = opts;
	return 0;
}

static int kvip_parse_new(struct genl_info *info, struct kvip_new_req *req)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr **attrs = info->attrs;
	struct kvip_ep *ep;
	u32 nep;
	int err;

	err = kvip_parse_name(info, &req->name);
	if (err)
		return err;
	if (kvip_require(extack, NULL, attrs, KVIP_A_PROTO, "protocol missing"))
		return -EINVAL;
	req->proto = nla_get_u8(attrs[KVIP_A_PROTO]);
	if (req->proto != IPPROTO_TCP && req->proto != IPPROTO_UDP &&
	    req->proto != IPPROTO_SCTP) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[KVIP_A_PROTO],
				    "protocol must be TCP, UDP or SCTP");
		return -EINVAL;
	}
	err = kvip_parse_opts(info, &req->opts);
	if (err)
		return err;
	err = kvip_parse_frontends(info, &req->fe, &req->nfe);
	if (err)
		return err;

	req->has_eps = attrs[KVIP_A_ENDPOINTS];
	if (!req->has_eps)
		return 0;
	err = kvip_parse_endpoints(info, &ep, &nep);
	if (err)
		return err;
	req->eps = kvip_build(ep, nep, req->opts->flags, extack);
	kvfree(ep);
	if (IS_ERR(req->eps)) {
		err = PTR_ERR(req->eps);
		req->eps = NULL;
	}
	return err;
}

/*
 * A REPLACE that turns per-endpoint counters on or off and keeps the
 * endpoints needs the current set rebuilt with or without them. It is
 * built before anything changes, so that running out of memory changes
 * nothing.
 */
static int kvip_rebuild_for_stats(struct kvip_net *kn,
				  struct kvip_service *svc,
				  struct kvip_new_req *req,
				  struct netlink_ext_ack *extack)
{
	bool stats = req->opts->flags & KVIP_SERVICE_F_ENDPOINT_STATS;
	const struct kvip_endpoints *cur;
	struct kvip_endpoints *eps;

	if (!svc || req->has_eps)
		return 0;
	cur = rcu_dereference_protected(svc->eps, lockdep_is_held(&kn->lock));
	if (!cur || !!cur->conns == stats)
		return 0;
	eps = kvip_build(cur->ep, cur->count, req->opts->flags, extack);
	if (IS_ERR(eps))
		return PTR_ERR(eps);
	req->eps = eps;
	req->has_eps = true;
	return 0;
}

static int kvip_new_locked(struct kvip_net *kn, struct kvip_new_req *req,
			   bool replace, struct netlink_ext_ack *extack)
{
	struct kvip_service *svc = kvip_service_find(kn, req->name);
	int err;

	if (svc && !replace) {
		NL_SET_ERR_MSG(extack, "service exists");
		return -EEXIST;
	}
	err = kvip_check_frontends(kn, svc, req->proto, req->fe, req->nfe,
				   extack);
	if (!err && !svc)
		err = kvip_service_budget(kn, extack);
	if (!err && req->eps)
		err = kvip_endpoint_budget(kn, kvip_svc_count(kn, svc),
					   req->eps->count, extack);
	if (!err)
		err = kvip_rebuild_for_stats(kn, svc, req, extack);
	if (err)
		return err;

	/* Both take the options, also when they fail. */
	if (svc) {
		err = kvip_service_update(kn, svc, req->proto, req->opts,
					  req->fe, req->nfe);
	} else {
		svc = kvip_service_create(kn, req->name, req->proto,
					  req->opts, req->fe, req->nfe);
		err = PTR_ERR_OR_ZERO(svc);
	}
	req->opts = NULL;
	if (err) {
		NL_SET_ERR_MSG(extack, "out of memory for the service");
		return err;
	}
	if (req->has_eps) {
		kvip_endpoints_replace(kn, svc, req->eps);
		req->eps = NULL;
	}
	kvip_notify_service(kn, svc);
	return 0;
}

static int kvip_nl_new_service(struct sk_buff *skb, struct genl_info *info)
{
	struct kvip_net *kn = kvip_pernet(genl_info_net(info));
	struct kvip_new_req req = {};
	int err;

	/* Parse and allocate outside the lock; only linking happens inside. */
	err = kvip_parse_new(info, &req);
	if (!err) {
		mutex_lock(&kn->lock);
		err = kvip_new_locked(kn, &req,
				      info->genlhdr->cmd == KVIP_CMD_REPLACE_SERVICE,
				      info->extack);
		mutex_unlock(&kn->lock);
	}
	kvip_endpoints_free(req.eps);	/* unless published */
	kvip_svc_opts_free(req.opts);	/* unless taken */
	kfree(req.fe);
	return err;
}

static struct kvip_service *kvip_find_or_report(struct kvip_net *kn,
						const char *name,
						struct genl_info *info)
{
	struct kvip_service *svc = kvip_service_find(kn, name);

	if (!svc)
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVIP_A_NAME],
				    "no such service");
	return svc;
}

static int kvip_nl_del_service(struct sk_buff *skb, struct genl_info *info)
{
	struct kvip_net *kn = kvip_pernet(genl_info_net(info));
	struct kvip_service *svc;
	const char *name;
	int err;

	err = kvip_parse_name(info, &name);
	if (err)
		return err;
	mutex_lock(&kn->lock);
	svc = kvip_find_or_report(kn, name, info);
	if (svc) {
		kvip_service_delete(kn, svc);
		kvip_notify_simple(kn, KVIP_CMD_DEL_SERVICE, name);
	}
	mutex_unlock(&kn->lock);
	return svc ? 0 : -ENOENT;
}

static int kvip_nl_flush(struct sk_buff *skb, struct genl_info *info)
{
	struct kvip_net *kn = kvip_pernet(genl_info_net(info));

	mutex_lock(&kn->lock);
	kvip_flush(kn);
	kvip_notify_simple(kn, KVIP_CMD_FLUSH, NULL);
	mutex_unlock(&kn->lock);
	return 0;
}

/* Append @ep to the staged set of @svc; takes ownership of @ep. */
static int kvip_stage(struct kvip_net *kn, struct kvip_service *svc,
		      struct kvip_ep *ep, u32 n)
{
	struct kvip_staging *st = svc->staging;
	struct kvip_ep *grown;

	if (st->count + n > st->cap) {
		u32 cap = max(st->count + n, 2 * st->cap);

		cap = min_t(u32, cap, KVIP_ENDPOINTS_MAX);
		grown = kvmalloc_array(cap, sizeof(*grown), KVIP_GFP);
		if (!grown) {
			kvfree(ep);
			return -ENOMEM;
		}
		if (st->count)
			memcpy(grown, st->ep, st->count * sizeof(*grown));
		kvfree(st->ep);
		st->ep = grown;
		st->cap = cap;
	}
	if (n)
		memcpy(st->ep + st->count, ep, n * sizeof(*ep));
	st->count += n;
	kn->nstaged += n;
	kvfree(ep);
	return 0;
}

static int kvip_set_locked(struct kvip_net *kn, struct kvip_service *svc,
			   u32 flags, struct kvip_ep *ep, u32 n,
			   struct genl_info *info)
{
	struct kvip_endpoints *eps;
	struct kvip_staging *st;
	int err;

	if (!(flags & KVIP_SET_F_APPEND)) {
		kvip_unstage(kn, svc);
		if (!(flags & KVIP_SET_F_MORE)) {
			err = kvip_endpoint_budget(kn, kvip_svc_count(kn, svc),
						   n, info->extack);
			if (err) {
				kvfree(ep);
				return err;
			}
			eps = kvip_build(ep, n, kvip_svc_flags(kn, svc),
					 info->extack);
			kvfree(ep);
			if (IS_ERR(eps))
				return PTR_ERR(eps);
			kvip_endpoints_replace(kn, svc, eps);
			kvip_bump_gen(kn);
			kvip_notify_endpoints(kn, svc);
			return 0;
		}
		if (!kvip_stage_begin(kn, svc, info->snd_portid)) {
			kvfree(ep);
			NL_SET_ERR_MSG(info->extack,
				       "out of memory for the staged endpoint set");
			return -ENOMEM;
		}
	} else if (!svc->staging || svc->staging->portid != info->snd_portid) {
		NL_SET_ERR_MSG(info->extack,
			       "no endpoint set staged by this socket");
		kvfree(ep);
		return -ESRCH;
	}

	st = svc->staging;
	if ((u64)st->count + n > KVIP_ENDPOINTS_MAX) {
		NL_SET_ERR_MSG(info->extack, "too many endpoints for one service");
		err = -E2BIG;
	} else {
		/* The old set goes when this one commits: count it out. */
		err = kvip_endpoint_budget(kn, kvip_svc_count(kn, svc), n,
					   info->extack);
	}
	if (err) {
		kvfree(ep);
		kvip_unstage(kn, svc);
		return err;
	}
	err = kvip_stage(kn, svc, ep, n);
	if (err) {
		NL_SET_ERR_MSG(info->extack, "out of memory for the endpoint set");
		kvip_unstage(kn, svc);
		return err;
	}
	if (flags & KVIP_SET_F_MORE)
		return 0;

	/* Last message: commit the whole staged set at once. */
	eps = kvip_build(st->ep, st->count, kvip_svc_flags(kn, svc),
			 info->extack);
	kvip_unstage(kn, svc);
	if (IS_ERR(eps))
		return PTR_ERR(eps);
	kvip_endpoints_replace(kn, svc, eps);
	kvip_bump_gen(kn);
	kvip_notify_endpoints(kn, svc);
	return 0;
}

static int kvip_nl_set_endpoints(struct sk_buff *skb, struct genl_info *info)
{
	struct kvip_net *kn = kvip_pernet(genl_info_net(info));
	struct nlattr *fattr = info->attrs[KVIP_A_SET_FLAGS];
	struct kvip_service *svc;
	const char *name;
	struct kvip_ep *ep;
	u32 flags = 0, n;
	int err;

	err = kvip_parse_name(info, &name);
	if (err)
		return err;
	if (fattr) {
		flags = nla_get_u32(fattr);
		if (flags & ~__KVIP_SET_F_ALL) {
			NL_SET_ERR_MSG_ATTR(info->extack, fattr,
					    "unknown set flags");
			return -EOPNOTSUPP;
		}
	}
	err = kvip_parse_endpoints(info, &ep, &n);

	mutex_lock(&kn->lock);
	svc = kvip_service_find(kn, name);
	if (!svc) {
		kvfree(ep);
		if (!err) {
			NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVIP_A_NAME],
					    "no such service");
			err = -ENOENT;
		}
	} else if (err) {
		/* Any failure ends this socket's staged set: no gaps in it. */
		if (svc->staging && svc->staging->portid == info->snd_portid)
			kvip_unstage(kn, svc);
	} else {
		err = kvip_set_locked(kn, svc, flags, ep, n, info);
	}
	mutex_unlock(&kn->lock);
	return err;
}

/* Replies */

static int kvip_put_addr(struct sk_buff *skb, int fam_type, int addr_type,
			 u8 family, const union nf_inet_addr *addr)
{
	if (nla_put_u16(skb, fam_type, family))
		return -EMSGSIZE;
	if (family == AF_INET)
		return nla_put_in_addr(skb, addr_type, addr->ip);
	return nla_put_in6_addr(skb, addr_type, &addr->in6);
}

static size_t kvip_addr_size(void)
{
	return nla_total_size(sizeof(u16)) +
	       nla_total_size(sizeof(struct in6_addr));
}

static int kvip_put_frontend(struct sk_buff *skb,
			     const struct kvip_frontend *fe)
{
	struct nlattr *nest = nla_nest_start(skb, 0);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u8(skb, KVIP_FRONTEND_A_TYPE, fe->type) ||
	    nla_put_u16(skb, KVIP_FRONTEND_A_PORT, ntohs(fe->key.port)) ||
	    (fe->type != KVIP_FRONTEND_NODEPORT &&
	     kvip_put_addr(skb, KVIP_FRONTEND_A_FAMILY, KVIP_FRONTEND_A_ADDR,
			   fe->key.family, &fe->key.addr))) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static size_t kvip_frontend_size(void)
{
	return nla_total_size(0) + nla_total_size(sizeof(u8)) +
	       nla_total_size(sizeof(u16)) + kvip_addr_size();
}

static int kvip_put_endpoint(struct sk_buff *skb,
			     const struct kvip_endpoints *eps, u32 i)
{
	const struct kvip_ep *ep = &eps->ep[i];
	struct nlattr *nest, *stats;

	nest = nla_nest_start(skb, 0);
	if (!nest)
		return -EMSGSIZE;
	if (kvip_put_addr(skb, KVIP_ENDPOINT_A_FAMILY, KVIP_ENDPOINT_A_ADDR,
			  ep->family, &ep->addr) ||
	    nla_put_u16(skb, KVIP_ENDPOINT_A_PORT, ntohs(ep->port)) ||
	    nla_put_u32(skb, KVIP_ENDPOINT_A_WEIGHT, ep->weight) ||
	    nla_put_u32(skb, KVIP_ENDPOINT_A_FLAGS, ep->flags))
		goto cancel;
	if (eps->conns) {
		stats = nla_nest_start(skb, KVIP_ENDPOINT_A_STATS);
		if (!stats ||
		    nla_put_u64_64bit(skb, KVIP_STATS_A_CONNS,
				      kvip_endpoint_conns(eps, i),
				      KVIP_STATS_A_PAD))
			goto cancel;
		nla_nest_end(skb, stats);
	}
	nla_nest_end(skb, nest);
	return 0;
cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

static size_t kvip_endpoint_size(void)
{
	return nla_total_size(0) + kvip_addr_size() +
	       nla_total_size(sizeof(u16)) + 2 * nla_total_size(sizeof(u32)) +
	       nla_total_size(0) + nla_total_size_64bit(sizeof(u64));
}

/* What defines a service: protocol, options and frontends. */
static int kvip_put_definition(struct sk_buff *skb, struct kvip_net *kn,
			       const struct kvip_service *svc)
{
	const struct kvip_svc_opts *opts = kvip_svc_opts_locked(kn, svc);
	struct nlattr *nest;
	unsigned int i;

	if (nla_put_u8(skb, KVIP_A_PROTO, svc->proto) ||
	    nla_put_u32(skb, KVIP_A_FLAGS, opts->flags) ||
	    ((opts->flags & KVIP_SERVICE_F_AFFINITY) &&
	     nla_put_u32(skb, KVIP_A_AFFINITY_TIMEOUT, opts->affinity_timeout)) ||
	    (opts->source_ranges &&
	     kvip_cidrs_put(skb, KVIP_A_SOURCE_RANGES, opts->source_ranges)))
		return -EMSGSIZE;

	nest = nla_nest_start(skb, KVIP_A_FRONTENDS);
	if (!nest)
		return -EMSGSIZE;
	for (i = 0; i < svc->nfe; i++)
		if (kvip_put_frontend(skb, svc->fe[i]))
			return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

static size_t kvip_definition_size(struct kvip_net *kn,
				   const struct kvip_service *svc)
{
	const struct kvip_svc_opts *opts = kvip_svc_opts_locked(kn, svc);

	return nla_total_size(strlen(svc->name) + 1) +
	       nla_total_size(sizeof(u8)) + 2 * nla_total_size(sizeof(u32)) +
	       (opts->source_ranges ? kvip_cidrs_size(opts->source_ranges) : 0) +
	       nla_total_size(0) + svc->nfe * kvip_frontend_size();
}

static int kvip_put_header(struct sk_buff *skb, struct kvip_net *kn,
			   const struct kvip_service *svc,
			   const struct kvip_endpoints *eps)
{
	struct kvip_svc_stats sum;
	struct nlattr *nest;

	if (kvip_put_definition(skb, kn, svc) ||
	    nla_put_u32(skb, KVIP_A_ENDPOINT_COUNT, eps ? eps->count : 0) ||
	    nla_put_u32(skb, KVIP_A_AFFINITY_COUNT,
			kvip_affinity_fill(NULL, kn, svc, 0)))
		return -EMSGSIZE;

	kvip_service_stats(svc, &sum);
	nest = nla_nest_start(skb, KVIP_A_STATS);
	if (!nest ||
	    ((kvip_svc_opts_locked(kn, svc)->flags & KVIP_SERVICE_F_CONN_STATS) &&
	     nla_put_u64_64bit(skb, KVIP_STATS_A_CONNS, sum.conns,
			       KVIP_STATS_A_PAD)) ||
	    nla_put_u64_64bit(skb, KVIP_STATS_A_REJECTS, sum.rejects,
			      KVIP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, KVIP_STATS_A_DROPS, sum.drops,
			      KVIP_STATS_A_PAD))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

static size_t kvip_service_size(struct kvip_net *kn,
				const struct kvip_service *svc,
				const struct kvip_endpoints *eps)
{
	return kvip_definition_size(kn, svc) +
	       2 * nla_total_size(sizeof(u32)) +
	       nla_total_size(0) + 3 * nla_total_size_64bit(sizeof(u64)) +
	       nla_total_size(0) +
	       (eps ? eps->count : 0) * kvip_endpoint_size();
}

/* One KVIP_AFFINITY_A_* entry, IPv6 at worst. */
static size_t kvip_affinity_entry_size(void)
{
	return nla_total_size(0) + nla_total_size(sizeof(u16)) +
	       2 * nla_total_size(sizeof(struct in6_addr)) +
	       nla_total_size(sizeof(u16)) + nla_total_size(sizeof(u32));
}

/* Affinity entries in a GET reply: what one attribute holds. */
static u32 kvip_affinity_room(u32 count)
{
	return min_t(u32, count, (U16_MAX - NLA_HDRLEN) /
				 kvip_affinity_entry_size());
}

/* Where a service's output stands: header sent, next endpoint to send. */
struct kvip_fill_pos {
	u32 next_ep;
	bool cont;		/* header sent: continue with endpoints only */
};

/*
 * Put one message of @svc at @pos: the full header for its first message,
 * then as many endpoints as fit. Returns 0 when the service is complete,
 * -EMSGSIZE when the rest must go into another message (@pos then says
 * where to continue; nothing was added when the first message did not fit).
 */
static int kvip_fill_service(struct sk_buff *skb, struct kvip_net *kn,
			     const struct kvip_service *svc,
			     struct kvip_fill_pos *pos, u32 portid, u32 seq,
			     int flags, struct netlink_callback *cb,
			     u32 affinity_max)
{
	const struct kvip_endpoints *eps;
	u32 i = pos->next_ep, count;
	bool alone = !skb->len;
	struct nlattr *nest;
	void *hdr;

	eps = rcu_dereference_protected(svc->eps, lockdep_is_held(&kn->lock));
	count = eps ? eps->count : 0;
	if (i > count)
		i = count;	/* set shrank between chunks: reader retries */
	if (pos->cont && i == count)
		goto done;	/* nothing left to continue with */

	hdr = genlmsg_put(skb, portid, seq, &kvip_family, flags,
			  KVIP_CMD_GET_SERVICE);
	if (!hdr)
		return -EMSGSIZE;
	if (cb)
		genl_dump_check_consistent(cb, hdr);
	if (nla_put_string(skb, KVIP_A_NAME, svc->name) ||
	    (!pos->cont && kvip_put_header(skb, kn, svc, eps)))
		goto cancel;
	if (i == count)
		goto end;

	nest = nla_nest_start(skb, KVIP_A_ENDPOINTS);
	if (!nest)
		goto partial;
	for (; i < count; i++)
		if (kvip_put_endpoint(skb, eps, i))
			break;
	if (i == pos->next_ep) {
		nla_nest_cancel(skb, nest);
		goto partial;
	}
	nla_nest_end(skb, nest);
	if (i < count)
		goto partial;
end:
	if (affinity_max) {
		/* Only a GET reply, which holds everything: no retry. */
		nest = nla_nest_start(skb, KVIP_A_AFFINITY);
		if (nest) {
			kvip_affinity_fill(skb, kn, svc, affinity_max);
			nla_nest_end(skb, nest);
		}
	}
	genlmsg_end(skb, hdr);
done:
	pos->next_ep = 0;
	pos->cont = false;
	return 0;
partial:
	/*
	 * No endpoint fit: a continuation retries in the next buffer, and so
	 * does a header, unless it is alone in this buffer and would fit no
	 * better in the next.
	 */
	if (i == pos->next_ep && (pos->cont || !alone))
		goto cancel;
	genlmsg_end(skb, hdr);
	pos->next_ep = i;
	pos->cont = true;
	return -EMSGSIZE;
cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

static int kvip_nl_get_service(struct sk_buff *skb, struct genl_info *info)
{
	struct kvip_net *kn = kvip_pernet(genl_info_net(info));
	const struct kvip_endpoints *eps;
	struct kvip_service *svc;
	struct sk_buff *msg;
	const char *name;
	struct kvip_fill_pos pos = {};
	u32 naff;
	int err;

	err = kvip_parse_name(info, &name);
	if (err)
		return err;

	mutex_lock(&kn->lock);
	svc = kvip_find_or_report(kn, name, info);
	if (!svc) {
		err = -ENOENT;
		goto out;
	}
	eps = rcu_dereference_protected(svc->eps, lockdep_is_held(&kn->lock));
	/* An attribute is at most 64 KiB: big sets only go in dumps. */
	if (eps && nla_total_size(eps->count * kvip_endpoint_size()) > U16_MAX) {
		NL_SET_ERR_MSG(info->extack,
			       "endpoint set too large for one reply: use a dump with KVIP_A_NAME");
		err = -EMSGSIZE;
		goto out;
	}
	naff = kvip_affinity_room(kvip_affinity_fill(NULL, kn, svc, 0));
	msg = genlmsg_new(kvip_service_size(kn, svc, eps) + nla_total_size(0) +
			  naff * kvip_affinity_entry_size(), GFP_KERNEL);
	if (!msg) {
		NL_SET_ERR_MSG(info->extack, "out of memory for the reply");
		err = -ENOMEM;
		goto out;
	}
	err = kvip_fill_service(msg, kn, svc, &pos, info->snd_portid,
				info->snd_seq, 0, NULL, naff);
	if (WARN_ON_ONCE(err)) {
		nlmsg_free(msg);
		goto out;
	}
	mutex_unlock(&kn->lock);
	return genlmsg_reply(msg, info);
out:
	mutex_unlock(&kn->lock);
	return err;
}

/* Dump cursor, in cb->ctx. */
struct kvip_dump_ctx {
	struct kvip_service *svc;	/* next to emit; valid while gen holds */
	u32 index;			/* its index in kvip_net.services */
	struct kvip_fill_pos pos;	/* how far it got */
	u32 gen;			/* kvip_net.gen when svc was saved */
	bool started;
	bool done;
};

static_assert(sizeof(struct kvip_dump_ctx) <=
	      sizeof_field(struct netlink_callback, ctx));

/* Where to resume; a changed table resumes by position and is flagged. */
static struct kvip_service *kvip_dump_resume(struct kvip_net *kn,
					     struct kvip_dump_ctx *ctx,
					     const struct nlattr *name)
{
	struct kvip_service *svc;
	u32 pos = 0;

	if (name)
		return kvip_service_find(kn, nla_data(name));
	if (!ctx->started)
		return list_first_entry_or_null(&kn->services,
						struct kvip_service, list);
	if (ctx->gen == kn->gen)
		return ctx->svc;
	list_for_each_entry(svc, &kn->services, list)
		if (pos++ == ctx->index)
			return svc;
	return NULL;
}

static int kvip_nl_dump_services(struct sk_buff *skb,
				 struct netlink_callback *cb)
{
	const struct genl_dumpit_info *info = genl_dumpit_info(cb);
	struct kvip_net *kn = kvip_pernet(sock_net(skb->sk));
	struct kvip_dump_ctx *ctx = (void *)cb->ctx;
	struct nlattr *name = info->attrs[KVIP_A_NAME];
	struct kvip_service *svc;
	int err = 0;

	if (ctx->done)
		return 0;

	if (name && !*(char *)nla_data(name)) {
		NL_SET_ERR_MSG_ATTR(cb->extack, name, "empty service name");
		return -EINVAL;
	}
	mutex_lock(&kn->lock);
	cb->seq = kn->gen;
	svc = kvip_dump_resume(kn, ctx, name);
	if (!svc && name && !ctx->started) {
		/* Here, not in .start: 6.1 has no extack for .start. */
		mutex_unlock(&kn->lock);
		NL_SET_ERR_MSG_ATTR(cb->extack, name, "no such service");
		return -ENOENT;
	}
	ctx->started = true;
	while (svc) {
		err = kvip_fill_service(skb, kn, svc, &ctx->pos,
					NETLINK_CB(cb->skb).portid,
					cb->nlh->nlmsg_seq, NLM_F_MULTI, cb, 0);
		if (err)
			break;
		ctx->index++;
		if (name || list_is_last(&svc->list, &kn->services))
			svc = NULL;
		else
			svc = list_next_entry(svc, list);
	}
	ctx->svc = svc;
	ctx->gen = kn->gen;
	ctx->done = !svc;
	mutex_unlock(&kn->lock);

	/* Nothing fit into an empty message: cannot make progress. */
	if (err && !skb->len)
		return err;
	return skb->len;
}

/* Settings */

static int kvip_nl_set_config(struct sk_buff *skb, struct genl_info *info)
{
	struct kvip_net *kn = kvip_pernet(genl_info_net(info));
	struct nlattr *nest = info->attrs[KVIP_A_CONFIG];
	struct kvip_config *cfg;
	int err = 0;

	if (kvip_require(info->extack, NULL, info->attrs, KVIP_A_CONFIG,
			 "settings missing"))
		return -EINVAL;
	mutex_lock(&kn->lock);
	cfg = kvip_config_build(nest, kvip_config_locked(kn), info->extack);
	if (IS_ERR(cfg)) {
		err = PTR_ERR(cfg);
		goto out;
	}
	/* The drop-invalid hook follows the setting; nothing changed on error. */
	err = kvip_ct_invalid_sync(kn, cfg->drop_invalid);
	if (err) {
		NL_SET_ERR_MSG(info->extack,
			       "cannot register the drop-invalid hook");
		kvip_config_free(cfg);
		goto out;
	}
	kvip_config_swap(kn, cfg);
	kvip_notify_config(kn);
out:
	mutex_unlock(&kn->lock);
	return err;
}

static int kvip_nl_get_config(struct sk_buff *skb, struct genl_info *info)
{
	struct kvip_net *kn = kvip_pernet(genl_info_net(info));
	const struct kvip_config *cfg;
	struct sk_buff *msg;
	void *hdr;

	mutex_lock(&kn->lock);
	cfg = kvip_config_locked(kn);
	msg = genlmsg_new(kvip_config_size(cfg), GFP_KERNEL);
	if (!msg) {
		mutex_unlock(&kn->lock);
		NL_SET_ERR_MSG(info->extack, "out of memory for the reply");
		return -ENOMEM;
	}
	hdr = genlmsg_put_reply(msg, info, &kvip_family, 0,
				KVIP_CMD_GET_CONFIG);
	if (!hdr || kvip_config_put(msg, cfg)) {
		mutex_unlock(&kn->lock);
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	mutex_unlock(&kn->lock);
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

/* Events */

enum {
	KVIP_MCGRP_EVENTS_ID,
};

static const struct genl_multicast_group kvip_mcgrps[] = {
	[KVIP_MCGRP_EVENTS_ID] = { .name = KVIP_MCGRP_EVENTS },
};

/*
 * Start an event of @size bytes of attributes, or NULL when nobody listens
 * or there is no memory: an event that cannot be sent never fails the
 * change it announces (listeners see a gap, as with any overrun).
 */
static struct sk_buff *kvip_event_new(struct kvip_net *kn, u8 cmd,
				      size_t size, void **hdr)
{
	struct sk_buff *msg;

	if (!genl_has_listeners(&kvip_family, kn->net, KVIP_MCGRP_EVENTS_ID))
		return NULL;
	msg = genlmsg_new(size, GFP_KERNEL);
	if (!msg)
		return NULL;
	*hdr = genlmsg_put(msg, 0, 0, &kvip_family, 0, cmd);
	if (!*hdr) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static void kvip_event_send(struct kvip_net *kn, struct sk_buff *msg,
			    void *hdr, int err)
{
	if (WARN_ON_ONCE(err)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast_netns(&kvip_family, kn->net, msg, 0,
				KVIP_MCGRP_EVENTS_ID, GFP_KERNEL);
}

static void kvip_notify_service(struct kvip_net *kn,
				const struct kvip_service *svc)
{
	struct sk_buff *msg;
	void *hdr;

	msg = kvip_event_new(kn, KVIP_CMD_NEW_SERVICE,
			     kvip_definition_size(kn, svc) +
			     nla_total_size(sizeof(u32)), &hdr);
	if (msg)
		kvip_event_send(kn, msg, hdr,
				nla_put_string(msg, KVIP_A_NAME, svc->name) ||
				kvip_put_definition(msg, kn, svc) ||
				nla_put_u32(msg, KVIP_A_ENDPOINT_COUNT,
					    kvip_svc_count(kn, svc)));
}

static void kvip_notify_endpoints(struct kvip_net *kn,
				  const struct kvip_service *svc)
{
	struct sk_buff *msg;
	void *hdr;

	msg = kvip_event_new(kn, KVIP_CMD_SET_ENDPOINTS,
			     nla_total_size(strlen(svc->name) + 1) +
			     nla_total_size(sizeof(u32)), &hdr);
	if (msg)
		kvip_event_send(kn, msg, hdr,
				nla_put_string(msg, KVIP_A_NAME, svc->name) ||
				nla_put_u32(msg, KVIP_A_ENDPOINT_COUNT,
					    kvip_svc_count(kn, svc)));
}

/* DEL_SERVICE (@name) or FLUSH (@name NULL). */
static void kvip_notify_simple(struct kvip_net *kn, u8 cmd, const char *name)
{
	struct sk_buff *msg;
	void *hdr;

	msg = kvip_event_new(kn, cmd,
			     name ? nla_total_size(strlen(name) + 1) : 0, &hdr);
	if (msg)
		kvip_event_send(kn, msg, hdr,
				name && nla_put_string(msg, KVIP_A_NAME, name));
}

static void kvip_notify_config(struct kvip_net *kn)
{
	const struct kvip_config *cfg = kvip_config_locked(kn);
	struct sk_buff *msg;
	void *hdr;

	msg = kvip_event_new(kn, KVIP_CMD_SET_CONFIG, kvip_config_size(cfg),
			     &hdr);
	if (msg)
		kvip_event_send(kn, msg, hdr, kvip_config_put(msg, cfg));
}

/* A socket that goes away leaves no staged endpoint set behind. */
static int kvip_netlink_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct netlink_notify *n = ptr;
	struct kvip_staging *st, *tmp;
	struct kvip_net *kn;

	if (event != NETLINK_URELEASE || n->protocol != NETLINK_GENERIC)
		return NOTIFY_DONE;
	kn = kvip_pernet(n->net);
	mutex_lock(&kn->lock);
	list_for_each_entry_safe(st, tmp, &kn->staged, list)
		if (st->portid == n->portid)
			kvip_unstage(kn, st->svc);
	mutex_unlock(&kn->lock);
	return NOTIFY_DONE;
}

static struct notifier_block kvip_netlink_notifier = {
	.notifier_call = kvip_netlink_event,
};

static const struct genl_ops kvip_genl_ops[] = {
	{
		.cmd	 = KVIP_CMD_NEW_SERVICE,
		.doit	 = kvip_nl_new_service,
		.policy	 = kvip_new_policy,
		.maxattr = KVIP_A_MAX,
		.flags	 = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd	 = KVIP_CMD_REPLACE_SERVICE,
		.doit	 = kvip_nl_new_service,
		.policy	 = kvip_new_policy,
		.maxattr = KVIP_A_MAX,
		.flags	 = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd	 = KVIP_CMD_DEL_SERVICE,
		.doit	 = kvip_nl_del_service,
		.policy	 = kvip_name_policy,
		.maxattr = KVIP_A_MAX,
		.flags	 = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd	 = KVIP_CMD_GET_SERVICE,
		.doit	 = kvip_nl_get_service,
		.dumpit	 = kvip_nl_dump_services,
		.policy	 = kvip_name_policy,
		.maxattr = KVIP_A_MAX,
	},
	{
		.cmd	 = KVIP_CMD_SET_ENDPOINTS,
		.doit	 = kvip_nl_set_endpoints,
		.policy	 = kvip_set_policy,
		.maxattr = KVIP_A_MAX,
		.flags	 = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd	 = KVIP_CMD_FLUSH,
		.doit	 = kvip_nl_flush,
		.policy	 = kvip_flush_policy,
		.maxattr = KVIP_A_MAX,
		.flags	 = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd	 = KVIP_CMD_SET_CONFIG,
		.doit	 = kvip_nl_set_config,
		.policy	 = kvip_config_set_policy,
		.maxattr = KVIP_A_MAX,
		.flags	 = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd	 = KVIP_CMD_GET_CONFIG,
		.doit	 = kvip_nl_get_config,
		.policy	 = kvip_flush_policy,
		.maxattr = KVIP_A_MAX,
	},
};

static struct genl_family kvip_family __ro_after_init = {
	.name		= KVIP_GENL_NAME,
	.version	= KVIP_GENL_VERSION,
	.netnsok	= true,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= kvip_genl_ops,
	.n_ops		= ARRAY_SIZE(kvip_genl_ops),
	.mcgrps		= kvip_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(kvip_mcgrps),
	.resv_start_op	= KVIP_CMD_NEW_SERVICE,
};

int __init kvip_genl_init(void)
{
	int err = netlink_register_notifier(&kvip_netlink_notifier);

	if (err)
		return err;
	err = genl_register_family(&kvip_family);
	if (err)
		netlink_unregister_notifier(&kvip_netlink_notifier);
	return err;
}

void kvip_genl_exit(void)
{
	genl_unregister_family(&kvip_family);
	netlink_unregister_notifier(&kvip_netlink_notifier);
}
