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
 * A change only notes what to delete (a job: the service's frontends, the
 * endpoints gone) and kicks the netns's worker; the request is answered
 * without waiting. Deleting means walking the whole conntrack table
 * (nf_ct_iterate_cleanup_net(), up to millions of entries, and it sleeps):
 * done in the request, under kvip_net.lock, it made one endpoint change cost
 * O(conntrack table), stalled every other writer and dump of the netns
 * meanwhile, and a batch of n changes walked n times. The worker takes all
 * jobs queued so far, waits for a grace period (a packet that chose with
 * the old state while it was being published has had its entry confirmed
 * by then; forwarded packets: within the same softirq), and deletes for all
 * of them in one walk: the cost grows with the changes, and the table is
 * walked at most once per batch of them. kube-proxy, too, deletes entries
 * after its rules are in place, not as part of applying them. Changes of
 * TCP services, and changes that remove nothing, queue nothing. A dying
 * netns is not walked: its entries go with it.
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
#include <linux/workqueue.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netfilter/nf_conntrack_core.h>
#include <net/netfilter/nf_conntrack_zones.h>

#include "kvip_core.h"

/* An endpoint as conntrack sees it in the reply tuple. */
struct kvip_ct_ep {
	union nf_inet_addr addr;
	__be16 port;
	u8 family;
	u8 serving;
};

/*
 * What one change asks to delete: entries towards @fe (node ports have
 * family 0) of the families in @any whatever their endpoint, and of the
 * other families those whose reply source is in @gone (sorted).
 */
struct kvip_ct_job {
	struct list_head list;		/* kvip_net.ct_jobs */
	struct kvip_fe_key *fe;
	struct kvip_ct_ep *gone;
	u32 nfe;
	u32 ngone;
	u8 any;				/* BIT(kvip_fam_index()) */
};

/* A frontend of a job, in the index of one walk (sorted by key). */
struct kvip_ct_rule {
	struct kvip_fe_key key;
	const struct kvip_ct_job *job;
};

struct kvip_ct_match {
	struct kvip_net *kn;
	const struct kvip_ct_rule *rule;	/* sorted by key */
	u32 nrule;
	bool nodeports;			/* some rules are node ports */
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

/* Does @job ask for the entry of @family whose endpoint is @ep? */
static bool kvip_ct_job_hit(const struct kvip_ct_job *job, u8 family,
			    const struct kvip_ct_ep *ep)
{
	if (job->any & BIT(kvip_fam_index(family)))
		return true;
	return job->ngone && bsearch(ep, job->gone, job->ngone, sizeof(*ep),
				     kvip_ct_ep_cmp);
}

/* The index of the first rule whose key is not below @key. */
static u32 kvip_ct_lower_bound(const struct kvip_ct_match *m,
			       const struct kvip_fe_key *key)
{
	u32 lo = 0, hi = m->nrule, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (kvip_ct_key_cmp(&m->rule[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Does a job with the frontend @key ask for the entry? */
static bool kvip_ct_rules_hit(const struct kvip_ct_match *m,
			      const struct kvip_fe_key *key, u8 family,
			      const struct kvip_ct_ep *ep)
{
	u32 i;

	for (i = kvip_ct_lower_bound(m, key); i < m->nrule; i++) {
		if (kvip_ct_key_cmp(&m->rule[i].key, key))
			break;
		if (kvip_ct_job_hit(m->rule[i].job, family, ep))
			return true;
	}
	return false;
}

static bool kvip_ct_node_address(const struct kvip_ct_match *m, u8 family,
				 const union nf_inet_addr *addr)
{
	const struct kvip_config *cfg;
	bool ok;

	rcu_read_lock();
	cfg = rcu_dereference(m->kn->config);
	ok = kvip_is_node_address(m->kn->net, cfg, family, addr);
	rcu_read_unlock();
	return ok;
}

/* Called under a conntrack bucket lock: no sleeping. */
static int kvip_ct_iter(struct nf_conn *ct, void *data)
{
	const struct kvip_ct_match *m = data;
	const struct nf_conntrack_tuple *orig, *reply;
	struct kvip_fe_key key;
	struct kvip_ct_ep ep;
	u8 family = nf_ct_l3num(ct);

	orig = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	if (!kvip_ct_udp_sctp(orig->dst.protonum))
		return 0;
	reply = &ct->tuplehash[IP_CT_DIR_REPLY].tuple;
	memset(&ep, 0, sizeof(ep));
	ep.addr = reply->src.u3;
	ep.port = reply->src.u.all;
	ep.family = family;

	memset(&key, 0, sizeof(key));
	key.addr = orig->dst.u3;
	key.port = orig->dst.u.all;
	key.proto = orig->dst.protonum;
	key.family = family;
	if (kvip_ct_rules_hit(m, &key, family, &ep))
		return 1;
	if (!m->nodeports)
		return 0;
	memset(&key.addr, 0, sizeof(key.addr));
	key.family = 0;
	return kvip_ct_rules_hit(m, &key, family, &ep) &&
	       kvip_ct_node_address(m, family, &orig->dst.u3);
}

static void kvip_ct_job_free(struct kvip_ct_job *job)
{
	kvfree(job->fe);
	kvfree(job->gone);
	kfree(job);
}

/* Rules for frontends [@from, @from + @n) of @job. */
static void kvip_ct_rules_fill(struct kvip_ct_rule *rule,
			       const struct kvip_ct_job *job, u32 from, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		rule[i].key = job->fe[from + i];
		rule[i].job = job;
	}
}

static int kvip_ct_rule_cmp(const void *a, const void *b)
{
	const struct kvip_ct_rule *x = a, *y = b;

	return kvip_ct_key_cmp(&x->key, &y->key);
}

static void kvip_ct_walk(struct kvip_net *kn, struct kvip_ct_rule *rule,
			 u32 n)
{
	struct kvip_ct_match m = { .kn = kn, .rule = rule, .nrule = n };
	struct nf_ct_iter_data d = { .net = kn->net, .data = &m };
	u32 i;

	sort(rule, n, sizeof(*rule), kvip_ct_rule_cmp, NULL);
	for (i = 0; i < n; i++)
		m.nodeports |= !rule[i].key.family;
	nf_ct_iterate_cleanup_net(kvip_ct_iter, &d);
}

/*
 * All of @jobs in one walk; without memory for their joint index, one walk
 * per few frontends of each job.
 */
static void kvip_ct_run(struct kvip_net *kn, struct list_head *jobs)
{
	struct kvip_ct_rule *rule, few[8];
	struct kvip_ct_job *job;
	size_t total = 0;
	u32 i, n;

	list_for_each_entry(job, jobs, list)
		total += job->nfe;
	rule = kvmalloc_array(total, sizeof(*rule), GFP_KERNEL | __GFP_NOWARN);
	if (rule) {
		total = 0;
		list_for_each_entry(job, jobs, list) {
			kvip_ct_rules_fill(rule + total, job, 0, job->nfe);
			total += job->nfe;
		}
		kvip_ct_walk(kn, rule, total);
		kvfree(rule);
		return;
	}
	list_for_each_entry(job, jobs, list) {
		for (i = 0; i < job->nfe; i += n) {
			n = min_t(u32, job->nfe - i, ARRAY_SIZE(few));
			kvip_ct_rules_fill(few, job, i, n);
			kvip_ct_walk(kn, few, n);
		}
	}
}

static void kvip_ct_work(struct work_struct *work)
{
	struct kvip_net *kn = container_of(work, struct kvip_net, ct_work);
	struct kvip_ct_job *job, *tmp;
	LIST_HEAD(jobs);

	/* Whatever the requests queued so far; they have published. */
	mutex_lock(&kn->lock);
	list_splice_init(&kn->ct_jobs, &jobs);
	mutex_unlock(&kn->lock);
	if (list_empty(&jobs))
		return;
	/* A dying netns loses its entries anyway. */
	if (check_net(kn->net) && nf_conntrack_count(kn->net)) {
		synchronize_net();	/* no DNAT hook still uses the old state */
		kvip_ct_run(kn, &jobs);
	}
	list_for_each_entry_safe(job, tmp, &jobs, list)
		kvip_ct_job_free(job);
}

/* Is there anything to clean in this netns at all? */
static bool kvip_ct_worth(struct kvip_net *kn)
{
	/* A dying netns loses its entries anyway; the hooks hold conntrack. */
	return kn->hooked && check_net(kn->net) && nf_conntrack_count(kn->net);
}

static void kvip_ct_queue(struct kvip_net *kn, struct kvip_ct_job *job)
{
	list_add_tail(&job->list, &kn->ct_jobs);
	queue_work(system_unbound_wq, &kn->ct_work);
}

/* A job for the frontends of @svc, or NULL. */
static struct kvip_ct_job *kvip_ct_job_alloc(const struct kvip_service *svc)
{
	struct kvip_ct_job *job;
	u32 i;

	job = kzalloc(sizeof(*job), KVIP_GFP);
	if (!job)
		return NULL;
	job->fe = kvmalloc_array(svc->nfe, sizeof(*job->fe), KVIP_GFP);
	if (!job->fe) {
		kfree(job);
		return NULL;
	}
	for (i = 0; i < svc->nfe; i++)
		job->fe[i] = svc->fe[i]->key;
	job->nfe = svc->nfe;
	return job;
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

/*
 * Best effort, like conntrack(8) in kube-proxy: without memory for the job
 * the change stands and its stale entries time out.
 */
static void kvip_ct_no_memory(const struct kvip_service *svc)
{
	pr_warn_ratelimited("no memory to clean up conntrack entries of %s\n",
			    svc->name);
}

void kvip_ct_endpoints_changed(struct kvip_net *kn,
			       const struct kvip_service *svc,
			       const struct kvip_endpoints *old,
			       const struct kvip_endpoints *new)
{
	struct kvip_ct_ep *gone = NULL;
	struct kvip_ct_job *job;
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
	job = kvip_ct_job_alloc(svc);
	if (!job) {
		kvip_ct_no_memory(svc);
		goto out;
	}
	job->any = fresh;
	if (n) {
		job->gone = gone;
		job->ngone = n;
		gone = NULL;
	}
	kvip_ct_queue(kn, job);
out:
	kvfree(gone);
}

void kvip_ct_service_deleted(struct kvip_net *kn,
			     const struct kvip_service *svc)
{
	struct kvip_ct_job *job;

	if (!kvip_ct_udp_sctp(svc->proto) || !svc->nfe || !kvip_ct_worth(kn))
		return;
	job = kvip_ct_job_alloc(svc);
	if (!job) {
		kvip_ct_no_memory(svc);
		return;
	}
	job->any = 3;
	kvip_ct_queue(kn, job);
}

void kvip_ct_init(struct kvip_net *kn)
{
	INIT_LIST_HEAD(&kn->ct_jobs);
	INIT_WORK(&kn->ct_work, kvip_ct_work);
}

void kvip_ct_destroy(struct kvip_net *kn)
{
	/*
	 * On module unload the netns lives on: what its table's deletion
	 * queued is done before the code goes. A dying netns skips the walk.
	 */
	flush_work(&kn->ct_work);
	WARN_ON_ONCE(!list_empty(&kn->ct_jobs));
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
