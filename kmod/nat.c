// SPDX-License-Identifier: GPL-2.0
/*
 * The datapath: NAT lookup hooks. The kernel's NAT core calls them only for
 * the first packet of a connection that has no DNAT binding yet; we bind it
 * to an endpoint with nf_nat_setup_info() and the NAT core translates the
 * rest of the flow and its replies without us.
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

static unsigned int kvip_translate(struct nf_conn *ct, struct kvip_service *svc,
				   u8 family, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	struct kvip_endpoints *eps = rcu_dereference(svc->eps);
	const struct kvip_ep *ep = NULL;
	struct nf_nat_range2 range = {};
	unsigned int ret;
	u32 i;

	if (eps)
		ep = kvip_select(eps, family, &i);
	if (!ep) {
		this_cpu_inc(svc->stats->rejects);
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
		this_cpu_inc(svc->stats->conns);
		this_cpu_inc(*kvip_endpoint_counter(eps, i));
	}
	return ret;
}

/* Node ports answer on the node's own addresses, loopback excepted. */
static bool kvip_is_node_address(struct net *net, u8 family,
				 const union nf_inet_addr *a)
{
	if (family == AF_INET)
		return !ipv4_is_loopback(a->ip) &&
		       inet_addr_type(net, a->ip) == RTN_LOCAL;
	return !ipv6_addr_loopback(&a->in6) &&
	       ipv6_chk_addr(net, &a->in6, NULL, 0);
}

static unsigned int kvip_nat_hook(void *priv, struct sk_buff *skb,
				  const struct nf_hook_state *state)
{
	const struct nf_conntrack_tuple *t;
	enum ip_conntrack_info ctinfo;
	struct kvip_frontend *fe;
	struct kvip_fe_key key;
	struct kvip_net *kn;
	struct nf_conn *ct;

	ct = nf_ct_get(skb, &ctinfo);
	if (!ct || ctinfo != IP_CT_NEW)
		return NF_ACCEPT;

	t = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	switch (t->dst.protonum) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		break;
	default:
		return NF_ACCEPT;
	}

	memset(&key, 0, sizeof(key));
	key.addr = t->dst.u3;
	key.port = t->dst.u.all;
	key.proto = t->dst.protonum;
	key.family = state->pf == NFPROTO_IPV4 ? AF_INET : AF_INET6;

	kn = kvip_pernet(state->net);
	fe = kvip_frontend_lookup(kn, &key);
	if (!fe && READ_ONCE(kn->nnodeports) &&
	    kvip_is_node_address(state->net, key.family, &key.addr)) {
		struct kvip_fe_key np = {
			.port = key.port,
			.proto = key.proto,
		};

		fe = kvip_frontend_lookup(kn, &np);
	}
	if (!fe)
		return NF_ACCEPT;

	return kvip_translate(ct, fe->svc, key.family, skb, state);
}

static const struct nf_hook_ops kvip_nat_ops[] = {
	{
		.hook		= kvip_nat_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP_PRI_NAT_DST,
	},
	{
		.hook		= kvip_nat_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_LOCAL_OUT,
		.priority	= NF_IP_PRI_NAT_DST,
	},
	{
		.hook		= kvip_nat_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP6_PRI_NAT_DST,
	},
	{
		.hook		= kvip_nat_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_LOCAL_OUT,
		.priority	= NF_IP6_PRI_NAT_DST,
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

/* Take conntrack and our NAT hooks in @net; called when it gets services. */
int kvip_nat_enable(struct net *net)
{
	unsigned int i;
	int err;

	err = nf_ct_netns_get(net, NFPROTO_INET);
	if (err)
		return err;

	for (i = 0; i < ARRAY_SIZE(kvip_nat_ops); i++) {
		err = kvip_nat_register(net, &kvip_nat_ops[i]);
		if (err)
			goto unwind;
	}
	return 0;

unwind:
	while (i--)
		kvip_nat_unregister(net, &kvip_nat_ops[i]);
	nf_ct_netns_put(net, NFPROTO_INET);
	return err;
}

void kvip_nat_disable(struct net *net)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kvip_nat_ops); i++)
		kvip_nat_unregister(net, &kvip_nat_ops[i]);
	nf_ct_netns_put(net, NFPROTO_INET);
}
