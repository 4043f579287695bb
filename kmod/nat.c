// SPDX-License-Identifier: GPL-2.0
/*
 * The datapath: NAT lookup hooks. The kernel's NAT core calls them only for
 * the first packet of a connection that has no binding of their kind yet;
 * we bind it with nf_nat_setup_info() and the NAT core translates the rest
 * of the flow and its replies without us.
 *
 *   PRE_ROUTING, LOCAL_OUT  DNAT: frontend -> endpoint (kvip_dnat_hook)
 *   POST_ROUTING            SNAT: masquerade the connections the rules of
 *                           <linux/kvip.h> say, decided from the original
 *                           destination (kvip_snat_hook)
 *
 * A connection we do not translate costs one frontend lookup at DNAT and
 * a test of ct->status at SNAT.
 */
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <net/addrconf.h>
#include <net/netfilter/ipv4/nf_reject.h>
#include <net/netfilter/ipv6/nf_reject.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netfilter/nf_nat.h>
#include <net/netfilter/nf_nat_masquerade.h>
#include <net/route.h>

#include "kvip_core.h"

/* TCP gets a reset, UDP and SCTP an ICMP port unreachable: never a timeout. */
static void kvip_reject(struct sk_buff *skb, const struct nf_hook_state *state,
			u8 family, u8 proto)
{
	if (family == AF_INET) {
		if (proto == IPPROTO_TCP)
			nf_send_reset(state->net, state->sk, skb, state->hook);
		else
			nf_send_unreach(skb, ICMP_PORT_UNREACH, state->hook);
	} else {
		if (proto == IPPROTO_TCP)
			nf_send_reset6(state->net, state->sk, skb, state->hook);
		else
			nf_send_unreach6(state->net, skb, ICMPV6_PORT_UNREACH,
					 state->hook);
	}
}

static bool kvip_is_local(struct net *net, u8 family,
			  const union nf_inet_addr *a)
{
	if (family == AF_INET)
		return inet_addr_type(net, a->ip) == RTN_LOCAL;
	return ipv6_chk_addr(net, &a->in6, NULL, 0);
}

/*
 * Node ports answer on the node's own addresses inside the configured
 * prefixes; by default on all of them except loopback ones, which would
 * expose node ports to every local process and, with route_localnet, to
 * the neighbours (CVE-2020-8558). Checked per packet, so address changes
 * need no update.
 */
bool kvip_is_node_address(struct net *net, const struct kvip_config *cfg,
			  u8 family, const union nf_inet_addr *a)
{
	if (cfg->nodeport_addrs) {
		if (!kvip_cidrs_match(cfg->nodeport_addrs, family, a))
			return false;
	} else if (family == AF_INET ? ipv4_is_loopback(a->ip) :
				       ipv6_addr_loopback(&a->in6)) {
		return false;
	}
	return kvip_is_local(net, family, a);
}

struct kvip_frontend *kvip_nat_frontend(struct kvip_net *kn,
					const struct kvip_config *cfg,
					u8 family, u8 proto,
					const union nf_inet_addr *addr,
					__be16 port, bool *nodeport)
{
	struct kvip_fe_key key;
	struct kvip_frontend *fe;

	memset(&key, 0, sizeof(key));
	key.addr = *addr;
	key.port = port;
	key.proto = proto;
	key.family = family;
	*nodeport = false;
	fe = kvip_frontend_lookup(kn, &key);
	if (fe || !READ_ONCE(kn->nnodeports))
		return fe;

	/* A node-port key has no address and no family. */
	memset(&key.addr, 0, sizeof(key.addr));
	key.family = 0;
	fe = kvip_frontend_lookup(kn, &key);
	if (fe && kvip_is_node_address(kn->net, cfg, family, addr)) {
		*nodeport = true;
		return fe;
	}
	return NULL;
}

static bool kvip_l4_supported(u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
	       proto == IPPROTO_SCTP;
}

/*
 * Which pool serves this connection (kube-proxy's traffic policies), or
 * false when a source range rejects it. Traffic the node itself sends to
 * an external or node-port frontend is cluster traffic; so is traffic of
 * the node's pods (a source inside the cluster CIDRs), as kube-proxy
 * short-circuits it when it can tell pods apart.
 */
static bool kvip_pool_for(const struct kvip_config *cfg,
			  const struct kvip_svc_opts *opts, u8 fe_type,
			  bool from_node, u8 family,
			  const union nf_inet_addr *src,
			  enum kvip_pool_kind *kind)
{
	*kind = KVIP_POOL_CLUSTER;
	if (fe_type == KVIP_FRONTEND_CLUSTERIP) {
		if (opts->flags & KVIP_SERVICE_F_INTERNAL_LOCAL)
			*kind = KVIP_POOL_LOCAL;
		return true;
	}
	if (from_node)
		return true;
	if (opts->source_ranges && opts->source_ranges->count &&
	    !kvip_cidrs_match(opts->source_ranges, family, src))
		return false;
	if ((opts->flags & KVIP_SERVICE_F_EXTERNAL_LOCAL) &&
	    !kvip_cidrs_match(cfg->cluster_cidrs, family, src))
		*kind = KVIP_POOL_LOCAL;
	return true;
}

/*
 * The options a connection to @fe is decided by. A cluster IP without
 * session affinity needs only the flags (source ranges do not apply to
 * it): the frontend's copy, so that the connection reads nothing of the
 * service. Anything else reads the service's, where the affinity timeout
 * and the source ranges are of the same version as the flags.
 */
static const struct kvip_svc_opts *
kvip_fe_options(const struct kvip_frontend *fe, u8 fe_type,
		struct kvip_svc_opts *buf)
{
	u32 flags = READ_ONCE(fe->flags);

	if (fe_type != KVIP_FRONTEND_CLUSTERIP ||
	    (flags & KVIP_SERVICE_F_AFFINITY))
		return rcu_dereference(fe->svc->opts);
	buf->flags = flags;
	buf->affinity_timeout = 0;
	buf->source_ranges = NULL;
	return buf;
}

static unsigned int kvip_translate(struct kvip_net *kn,
				   const struct kvip_config *cfg,
				   struct nf_conn *ct, struct kvip_frontend *fe,
				   u8 family, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	const struct nf_conntrack_tuple *t = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	struct kvip_endpoints *eps = rcu_dereference(fe->eps);
	const u8 fe_type = READ_ONCE(fe->type);
	const struct kvip_ep *ep = NULL;
	struct nf_nat_range2 range = {};
	const struct kvip_svc_opts *opts;
	struct kvip_svc_opts buf;
	enum kvip_pool_kind kind;
	unsigned int ret;
	u32 i;

	opts = kvip_fe_options(fe, fe_type, &buf);
	if (!kvip_pool_for(cfg, opts, fe_type,
			   state->hook == NF_INET_LOCAL_OUT, family,
			   &t->src.u3, &kind))
		goto drop;

	if (eps) {
		if (opts->flags & KVIP_SERVICE_F_AFFINITY)
			ep = kvip_affinity_select(kn, fe->svc,
						  opts->affinity_timeout, eps,
						  family, kind, &t->src.u3, &i);
		else
			ep = kvip_select(eps, family, kind, &i);
	}
	if (!ep) {
		/*
		 * No usable endpoint of the family at all: refuse, as
		 * kube-proxy does; some exist but not in this pool (a
		 * Local policy): drop.
		 */
		if (eps && eps->pool[kvip_fam_index(family)][KVIP_POOL_CLUSTER].total_weight)
			goto drop;
		this_cpu_inc(fe->stats->rejects);
		kvip_reject(skb, state, family, nf_ct_protonum(ct));
		return NF_DROP;
	}

	range.flags = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED;
	range.min_addr = ep->addr;
	range.max_addr = ep->addr;
	range.min_proto.all = ep->port;
	range.max_proto.all = ep->port;
	ret = nf_nat_setup_info(ct, &range, NF_NAT_MANIP_DST);
	if (ret == NF_ACCEPT) {
		/* Opt-in: a cold write per connection at scale (kvip.h). */
		if (opts->flags & KVIP_SERVICE_F_CONN_STATS)
			this_cpu_inc(fe->stats->conns);
		if (eps->conns)
			this_cpu_inc(*kvip_endpoint_counter(eps, i));
	}
	return ret;

drop:
	this_cpu_inc(fe->stats->drops);
	return NF_DROP;
}

static unsigned int kvip_dnat_hook(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	const struct nf_conntrack_tuple *t;
	enum ip_conntrack_info ctinfo;
	const struct kvip_config *cfg;
	struct kvip_frontend *fe;
	struct kvip_net *kn;
	struct nf_conn *ct;
	bool nodeport;
	u8 family;

	ct = nf_ct_get(skb, &ctinfo);
	if (!ct || ctinfo != IP_CT_NEW)
		return NF_ACCEPT;

	t = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	if (!kvip_l4_supported(t->dst.protonum))
		return NF_ACCEPT;

	family = state->pf == NFPROTO_IPV4 ? AF_INET : AF_INET6;
	kn = kvip_pernet(state->net);
	cfg = rcu_dereference(kn->config);
	fe = kvip_nat_frontend(kn, cfg, family, t->dst.protonum, &t->dst.u3,
			       t->dst.u.all, &nodeport);
	if (!fe)
		return NF_ACCEPT;

	return kvip_translate(kn, cfg, ct, fe, family, skb, state);
}

/*
 * The source NAT rules of <linux/kvip.h>, for a connection that reached
 * frontend @fe: masquerade when asked for everything, for hairpin traffic
 * (the endpoint would answer itself directly), for cluster IP traffic from
 * outside the cluster CIDRs, and for external and node-port traffic unless
 * the service keeps client addresses (EXTERNAL_LOCAL) and the client is
 * not the node itself.
 */
static bool kvip_masquerade_needed(struct net *net,
				   const struct kvip_config *cfg,
				   const struct kvip_frontend *fe,
				   const struct nf_conn *ct, u8 family)
{
	const struct nf_conntrack_tuple *orig, *reply;
	const struct kvip_svc_opts *opts;

	orig = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	reply = &ct->tuplehash[IP_CT_DIR_REPLY].tuple;
	if (cfg->masquerade_all)
		return true;
	if (nf_inet_addr_cmp(&orig->src.u3, &reply->src.u3))
		return true;
	if (READ_ONCE(fe->type) == KVIP_FRONTEND_CLUSTERIP)
		return cfg->cluster_cidrs &&
		       !kvip_cidrs_match(cfg->cluster_cidrs, family,
					 &orig->src.u3);
	opts = rcu_dereference(fe->svc->opts);
	if (!(opts->flags & KVIP_SERVICE_F_EXTERNAL_LOCAL))
		return true;
	/* The node: its source address may be the frontend or loopback. */
	return kvip_is_local(net, family, &orig->src.u3);
}

static unsigned int kvip_snat_hook(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	const struct nf_conntrack_tuple *orig;
	struct nf_nat_range2 range = {};
	enum ip_conntrack_info ctinfo;
	const struct kvip_config *cfg;
	struct kvip_frontend *fe;
	struct kvip_net *kn;
	struct nf_conn *ct;
	bool nodeport;
	u8 family;

	/* Only connections somebody translated can be ours. */
	ct = nf_ct_get(skb, &ctinfo);
	if (!ct || ctinfo != IP_CT_NEW || !(ct->status & IPS_DST_NAT))
		return NF_ACCEPT;

	orig = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	if (!kvip_l4_supported(orig->dst.protonum))
		return NF_ACCEPT;

	family = state->pf == NFPROTO_IPV4 ? AF_INET : AF_INET6;
	kn = kvip_pernet(state->net);
	cfg = rcu_dereference(kn->config);
	fe = kvip_nat_frontend(kn, cfg, family, orig->dst.protonum,
			       &orig->dst.u3, orig->dst.u.all, &nodeport);
	if (!fe || !kvip_masquerade_needed(state->net, cfg, fe, ct, family))
		return NF_ACCEPT;

	/* Address of the outgoing interface; the NAT core picks a port. */
	if (family == AF_INET)
		return nf_nat_masquerade_ipv4(skb, state->hook, &range,
					      state->out);
	return nf_nat_masquerade_ipv6(skb, &range, state->out);
}

static const struct nf_hook_ops kvip_nat_ops[] = {
	{
		.hook		= kvip_dnat_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP_PRI_NAT_DST,
	},
	{
		.hook		= kvip_dnat_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_LOCAL_OUT,
		.priority	= NF_IP_PRI_NAT_DST,
	},
	{
		.hook		= kvip_snat_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_POST_ROUTING,
		.priority	= NF_IP_PRI_NAT_SRC,
	},
	{
		.hook		= kvip_dnat_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP6_PRI_NAT_DST,
	},
	{
		.hook		= kvip_dnat_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_LOCAL_OUT,
		.priority	= NF_IP6_PRI_NAT_DST,
	},
	{
		.hook		= kvip_snat_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_POST_ROUTING,
		.priority	= NF_IP6_PRI_NAT_SRC,
	},
};

static int kvip_nat_register(struct net *net, const struct nf_hook_ops *ops)
{
	if (ops->pf == NFPROTO_IPV4)
		return nf_nat_ipv4_register_fn(net, ops);
	return nf_nat_ipv6_register_fn(net, ops);
}

static void kvip_nat_unregister(struct net *net, const struct nf_hook_ops *ops)
{
	if (ops->pf == NFPROTO_IPV4)
		nf_nat_ipv4_unregister_fn(net, ops);
	else
		nf_nat_ipv6_unregister_fn(net, ops);
}

/*
 * Module init and exit (main.c): the masquerade notifiers of the NAT core
 * (refcounted there) forget masqueraded connections when their interface
 * goes down or loses its address. They are module-wide, as nft_masq's:
 * (un)registering a netdevice notifier takes pernet_ops_rwsem, which a
 * netns exit (where the last service of a netns may go) already holds.
 */
int kvip_nat_init(void)
{
	return nf_nat_masquerade_inet_register_notifiers();
}

void kvip_nat_exit(void)
{
	nf_nat_masquerade_inet_unregister_notifiers();
}

/*
 * Take conntrack and our NAT hooks in @net; called (kvip_net.lock held)
 * when it gets services.
 */
int kvip_nat_enable(struct net *net)
{
	struct kvip_net *kn = kvip_pernet(net);
	unsigned int i;
	int err;

	err = nf_ct_netns_get(net, NFPROTO_INET);
	if (err)
		return err;

	for (i = 0; i < ARRAY_SIZE(kvip_nat_ops); i++) {
		err = kvip_nat_register(net, &kvip_nat_ops[i]);
		if (err)
			goto err_unhook;
	}
	err = kvip_ct_invalid_set(kn, kvip_config_locked(kn)->drop_invalid);
	if (err)
		goto err_unhook;
	return 0;

err_unhook:
	while (i--)
		kvip_nat_unregister(net, &kvip_nat_ops[i]);
	nf_ct_netns_put(net, NFPROTO_INET);
	return err;
}

void kvip_nat_disable(struct net *net)
{
	struct kvip_net *kn = kvip_pernet(net);
	unsigned int i;

	kvip_ct_invalid_set(kn, false);
	for (i = 0; i < ARRAY_SIZE(kvip_nat_ops); i++)
		kvip_nat_unregister(net, &kvip_nat_ops[i]);
	nf_ct_netns_put(net, NFPROTO_INET);
}
