// SPDX-License-Identifier: GPL-2.0
/*
 * Conntrack hygiene, as kube-proxy does it with conntrack(8), in the kernel.
 *
 * UDP and SCTP flows stay on their conntrack entry (and so on their
 * endpoint) as long as packets keep coming, so when an endpoint goes away
 * its flows would black-hole until the entry times out. Hence, after a
 * control-plane change of a UDP or SCTP service:
 *
 *  - an endpoint that leaves the set or stops serving: delete the entries
 *    whose original destination is one of the service's frontends and
 *    whose reply source is that endpoint;
 *  - a UDP service getting its first ready endpoint of a family: delete the
 *    UDP entries towards its frontends of that family (entries created
 *    before, e.g. while it had no endpoint, are not translated);
 *  - a deleted service: delete the entries towards its frontends.
 *
 * The walks run synchronously in the netlink request (process context,
 * kvip_net.lock held), after the change is published and a grace period:
 * a packet that chose with the old state while it was being published has
 * had its entry confirmed by then (forwarded packets: within the same
 * softirq), so the walk sees it. nf_ct_iterate_cleanup_net() may sleep,
 * and doing it
 * before the reply means a controller that saw its change acknowledged
 * knows the stale entries are gone (kube-proxy also flushes inside its
 * sync). A walk visits the whole conntrack table once per change, however
 * many endpoints left; changes of TCP services, and changes that remove
 * nothing, cost nothing. A dying netns is not walked: its entries go with it.
 *
 * Also here: the optional hook that drops ct-INVALID packets of service
 * flows (KVIP_CONFIG_A_DROP_INVALID).
 */
#include <linux/bsearch.h>
#include <linux/netdevice.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netfilter/nf_conntrack_core.h>
#include <net/netfilter/nf_conntrack_zones.h>

#include "kvip_core.h"

/* Frontend keys of deleted services, until kvip_ct_commit(). */
struct kvip_ct_pending {
	u32 count;
	u32 cap;
	struct kvip_fe_key key[];
};

/* An endpoint as conntrack sees it in the reply tuple. */
struct kvip_ct_ep {
	union nf_inet_addr addr;
	__be16 port;
	u8 family;
	u8 serving;
};

struct kvip_ct_match {
	struct kvip_net *kn;
	const struct kvip_fe_key *fe;	/* sorted */
	u32 nfe;
	bool nodeports;			/* some of fe are node ports */
	u8 families;			/* BIT(kvip_fam_index()) */
	const struct kvip_ct_ep *gone;	/* sorted; NULL: any endpoint */
	u32 ngone;
};

static int kvip_ct_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct kvip_fe_key));
}

#define KVIP_CT_EP_LEN offsetof(struct kvip_ct_ep, serving)

static int kvip_ct_ep_cmp(const void *a, const void *b)
{
	return memcmp(a, b, KVIP_CT_EP_LEN);
}

static bool kvip_ct_udp_sctp(u8 proto)
{
	return proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static bool kvip_ct_is_frontend(const struct kvip_ct_match *m,
				const struct nf_conntrack_tuple *t, u8 family)
{
	const struct kvip_config *cfg;
	struct kvip_fe_key key;
	bool ok;

	memset(&key, 0, sizeof(key));
	key.addr = t->dst.u3;
	key.port = t->dst.u.all;
	key.proto = t->dst.protonum;
	key.family = family;
	if (bsearch(&key, m->fe, m->nfe, sizeof(key), kvip_ct_key_cmp))
		return true;
	if (!m->nodeports)
		return false;
	memset(&key.addr, 0, sizeof(key.addr));
	key.family = 0;
	if (!bsearch(&key, m->fe, m->nfe, sizeof(key), kvip_ct_key_cmp))
		return false;
	rcu_read_lock();
	cfg = rcu_dereference(m->kn->config);
	ok = kvip_is_node_address(m->kn->net, cfg, family, &t->dst.u3);
	rcu_read_unlock();
	return ok;
}

/* Called under a conntrack bucket lock: no sleeping. */
static int kvip_ct_iter(struct nf_conn *ct, void *data)
{
	const struct kvip_ct_match *m = data;
	const struct nf_conntrack_tuple *orig, *reply;
	struct kvip_ct_ep ep;
	u8 family = nf_ct_l3num(ct);

	if (!(m->families & BIT(kvip_fam_index(family))))
		return 0;
	orig = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	if (!kvip_ct_is_frontend(m, orig, family))
		return 0;
	if (!m->gone)
		return 1;
	reply = &ct->tuplehash[IP_CT_DIR_REPLY].tuple;
	memset(&ep, 0, sizeof(ep));
	ep.addr = reply->src.u3;
	ep.port = reply->src.u.all;
	ep.family = family;
	return !!bsearch(&ep, m->gone, m->ngone, sizeof(ep), kvip_ct_ep_cmp);
}

static void kvip_ct_walk(struct kvip_ct_match *m)
{
	struct nf_ct_iter_data d = {
		.net = m->kn->net,
		.data = m,
	};
	u32 i;

	for (i = 0; i < m->nfe; i++)
		m->nodeports |= !m->fe[i].family;
	nf_ct_iterate_cleanup_net(kvip_ct_iter, &d);
}

/* Is there anything to clean in this netns at all? */
static bool kvip_ct_worth(struct kvip_net *kn)
{
	/* A dying netns loses its entries anyway; the hooks hold conntrack. */
	return kn->hooked && check_net(kn->net) && nf_conntrack_count(kn->net);
}

/* The sorted frontend keys of @svc, or NULL. */
static struct kvip_fe_key *kvip_ct_svc_keys(const struct kvip_service *svc)
{
	struct kvip_fe_key *keys;
	u32 i;

	keys = kvmalloc_array(svc->nfe, sizeof(*keys), KVIP_GFP);
	if (!keys)
		return NULL;
	for (i = 0; i < svc->nfe; i++)
		keys[i] = svc->fe[i]->key;
	sort(keys, svc->nfe, sizeof(*keys), kvip_ct_key_cmp, NULL);
	return keys;
}

static void kvip_ct_ep_from(struct kvip_ct_ep *c, const struct kvip_ep *ep)
{
	memset(c, 0, sizeof(*c));
	c->addr = ep->addr;
	c->port = ep->port;
	c->family = ep->family;
	c->serving = !!(ep->flags & (KVIP_ENDPOINT_F_READY |
				     KVIP_ENDPOINT_F_SERVING));
}

/*
 * The endpoints of @old that had flows (ready or serving) and are gone or
 * not serving in @new, sorted; *n says how many. ERR_PTR(-ENOMEM).
 */
static struct kvip_ct_ep *kvip_ct_gone(const struct kvip_endpoints *old,
				       const struct kvip_endpoints *new, u32 *n)
{
	struct kvip_ct_ep *now = NULL, *gone, c;
	const struct kvip_ct_ep *found;
	u32 i, nnew = new ? new->count : 0;

	gone = kvmalloc_array(old->count, sizeof(*gone), KVIP_GFP);
	if (!gone)
		return ERR_PTR(-ENOMEM);
	if (nnew) {
		now = kvmalloc_array(nnew, sizeof(*now), KVIP_GFP);
		if (!now) {
			kvfree(gone);
			return ERR_PTR(-ENOMEM);
		}
		for (i = 0; i < nnew; i++)
			kvip_ct_ep_from(&now[i], &new->ep[i]);
		sort(now, nnew, sizeof(*now), kvip_ct_ep_cmp, NULL);
	}
	*n = 0;
	for (i = 0; i < old->count; i++) {
		kvip_ct_ep_from(&c, &old->ep[i]);
		if (!c.serving)
			continue;
		found = now ? bsearch(&c, now, nnew, sizeof(c),
				      kvip_ct_ep_cmp) : NULL;
		if (!found || !found->serving)
			gone[(*n)++] = c;
	}
	kvfree(now);
	sort(gone, *n, sizeof(*gone), kvip_ct_ep_cmp, NULL);
	return gone;
}

/* Families in which @eps has a ready endpoint (one that takes new flows). */
static u8 kvip_ct_ready_families(const struct kvip_endpoints *eps)
{
	u8 mask = 0;
	int fi;

	for (fi = 0; eps && fi < 2; fi++) {
		const struct kvip_pool *p = &eps->pool[fi][KVIP_POOL_CLUSTER];

		if (p->total_weight && (p->need & KVIP_ENDPOINT_F_READY))
			mask |= BIT(fi);
	}
	return mask;
}

void kvip_ct_endpoints_changed(struct kvip_net *kn,
			       const struct kvip_service *svc,
			       const struct kvip_endpoints *old,
			       const struct kvip_endpoints *new)
{
	struct kvip_ct_match m = { .kn = kn, .nfe = svc->nfe };
	struct kvip_fe_key *keys;
	struct kvip_ct_ep *gone = NULL;
	u8 fresh = 0;
	u32 n = 0;

	if (!kvip_ct_udp_sctp(svc->proto) || !svc->nfe || !kvip_ct_worth(kn))
		return;
	if (svc->proto == IPPROTO_UDP)
		fresh = kvip_ct_ready_families(new) &
			~kvip_ct_ready_families(old);
	if (old) {
		gone = kvip_ct_gone(old, new, &n);
		if (IS_ERR(gone)) {
			/* Too little memory to be exact: all of the service. */
			gone = NULL;
			fresh = 3;
		}
	}
	if (!n && !fresh)
		goto out;

	keys = kvip_ct_svc_keys(svc);
	if (!keys)
		goto out;
	m.fe = keys;
	synchronize_net();	/* no DNAT hook still using @old */
	if (fresh) {
		/* Any entry of those families, whatever its reply source. */
		m.families = fresh;
		kvip_ct_walk(&m);
	}
	if (n) {
		m.families = 3 & ~fresh;
		m.gone = gone;
		m.ngone = n;
		if (m.families)
			kvip_ct_walk(&m);
	}
	kvfree(keys);
out:
	kvfree(gone);
}

void kvip_ct_service_deleted(struct kvip_net *kn,
			     const struct kvip_service *svc)
{
	struct kvip_ct_pending *p = kn->ct_pending, *np;
	u32 i, cap;

	if (!kvip_ct_udp_sctp(svc->proto) || !svc->nfe || !kvip_ct_worth(kn))
		return;
	if (!p || p->count + svc->nfe > p->cap) {
		cap = max((p ? p->count : 0) + svc->nfe, 2 * (p ? p->cap : 8));
		np = kvrealloc(p, p ? struct_size(p, key, p->cap) : 0,
			       struct_size(p, key, cap), KVIP_GFP);
		if (!np) {
			pr_warn_ratelimited("no memory to clean up conntrack entries of %s\n",
					    svc->name);
			return;
		}
		if (!p)
			np->count = 0;
		np->cap = cap;
		kn->ct_pending = np;
		p = np;
	}
	for (i = 0; i < svc->nfe; i++)
		p->key[p->count++] = svc->fe[i]->key;
}

void kvip_ct_commit(struct kvip_net *kn)
{
	struct kvip_ct_pending *p = kn->ct_pending;
	struct kvip_ct_match m = { .kn = kn, .families = 3 };

	if (!p)
		return;
	kn->ct_pending = NULL;
	if (kvip_ct_worth(kn)) {
		sort(p->key, p->count, sizeof(p->key[0]), kvip_ct_key_cmp, NULL);
		synchronize_net();	/* no DNAT hook still sees the frontends */
		m.fe = p->key;
		m.nfe = p->count;
		kvip_ct_walk(&m);
	}
	kvfree(p);
}

/*
 * Drop ct-INVALID packets of service flows. Conntrack leaves an INVALID
 * packet (an out-of-window TCP segment, say) without an entry, so NAT
 * does not translate it: forwarded as is, it would reach an endpoint
 * addressed to the frontend, or a client from the endpoint's address,
 * which answers with a reset that kills the real connection (kube-proxy
 * drops INVALID in FORWARD for this reason). Only packets without an
 * entry pay for the tuple lookup that tells whether they are ours.
 */
static bool kvip_ct_invalid_ours(struct sk_buff *skb,
				 const struct nf_hook_state *state)
{
	struct nf_conntrack_tuple_hash *h;
	const struct kvip_config *cfg;
	struct nf_conntrack_tuple t;
	const struct nf_conntrack_tuple *dst = &t;
	struct kvip_net *kn = kvip_pernet(state->net);
	struct nf_conn *ct = NULL;
	bool nodeport, ours;
	u8 family = state->pf == NFPROTO_IPV4 ? AF_INET : AF_INET6;

	if (!nf_ct_get_tuplepr(skb, skb_network_offset(skb), state->pf,
			       state->net, &t))
		return false;
	if (t.dst.protonum != IPPROTO_TCP && t.dst.protonum != IPPROTO_UDP &&
	    t.dst.protonum != IPPROTO_SCTP)
		return false;
	h = nf_conntrack_find_get(state->net, &nf_ct_zone_dflt, &t);
	if (h) {
		ct = nf_ct_tuplehash_to_ctrack(h);
		if (!(ct->status & IPS_DST_NAT)) {
			nf_ct_put(ct);
			return false;
		}
		dst = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	}
	cfg = rcu_dereference(kn->config);
	ours = kvip_nat_frontend(kn, cfg, family, dst->dst.protonum,
				 &dst->dst.u3, dst->dst.u.all, &nodeport);
	if (ct)
		nf_ct_put(ct);
	return ours;
}

static unsigned int kvip_ct_invalid_hook(void *priv, struct sk_buff *skb,
					 const struct nf_hook_state *state)
{
	enum ip_conntrack_info ctinfo;

	/* INVALID: no entry, and not deliberately untracked. */
	if (nf_ct_get(skb, &ctinfo) || ctinfo == IP_CT_UNTRACKED)
		return NF_ACCEPT;
	return kvip_ct_invalid_ours(skb, state) ? NF_DROP : NF_ACCEPT;
}

static const struct nf_hook_ops kvip_ct_invalid_ops[] = {
	{
		.hook		= kvip_ct_invalid_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_FORWARD,
		.priority	= NF_IP_PRI_FILTER,
	},
	{
		.hook		= kvip_ct_invalid_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_FORWARD,
		.priority	= NF_IP6_PRI_FILTER,
	},
};

int kvip_ct_invalid_set(struct kvip_net *kn, bool on)
{
	int err;

	if (on == kn->invalid_hooked)
		return 0;
	if (on) {
		err = nf_register_net_hooks(kn->net, kvip_ct_invalid_ops,
					    ARRAY_SIZE(kvip_ct_invalid_ops));
		if (err)
			return err;
	} else {
		nf_unregister_net_hooks(kn->net, kvip_ct_invalid_ops,
					ARRAY_SIZE(kvip_ct_invalid_ops));
	}
	kn->invalid_hooked = on;
	return 0;
}

int kvip_ct_invalid_sync(struct kvip_net *kn, bool drop_invalid)
{
	return kvip_ct_invalid_set(kn, kn->hooked && drop_invalid);
}
