// SPDX-License-Identifier: GPL-2.0
/*
 * Client-IP session affinity (KVIP_SERVICE_F_AFFINITY).
 *
 * One table per netns maps (service id, family, client address) to the
 * endpoint (address, port) the client last got. A new connection of the
 * client uses that endpoint again if the entry has not expired and the
 * endpoint is still in the pool the connection chooses from; it refreshes
 * the timeout. Otherwise a new endpoint is chosen and recorded. Entries
 * hold the endpoint by value, so endpoint set updates need no walk: an
 * endpoint that left the set or its pool is simply not found or not
 * admitted on the next use ("validate on use").
 *
 * Entries are allocated in the packet path (GFP_ATOMIC): they cannot be
 * charged to the memory cgroup of whoever configured the service, so they
 * are bounded instead, per netns, by kvip.max_affinity. Expired entries are
 * replaced on use and reclaimed by a deferrable delayed work that only
 * runs while the table is not empty. When the table is full, a new client
 * gets a random endpoint without an entry (and the reclaim work is kicked).
 *
 * Each service with entries has a small refcounted counter block
 * (kvip_aff_svc) that entries point to, so that replies can tell the
 * number of entries of a service in O(1) and an entry never points to a
 * freed service.
 */
#include <linux/jiffies.h>
#include <linux/moduleparam.h>
#include <linux/rhashtable.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "kvip_core.h"

static unsigned int kvip_max_affinity __read_mostly = 65536;
module_param_named(max_affinity, kvip_max_affinity, uint, 0644);
MODULE_PARM_DESC(max_affinity,
		 "Maximum session affinity entries per network namespace");

#define KVIP_AFF_GC_PERIOD	(5 * HZ)
#define KVIP_AFF_GC_BATCH	256	/* entries between rescheduling points */

struct kvip_aff_svc {
	refcount_t ref;			/* the service + one per entry */
	atomic_t count;			/* entries in the table */
	bool dead;			/* the service is gone */
	struct rcu_head rcu;
};

struct kvip_aff_key {
	u64 svc_id;
	union nf_inet_addr client;
	u8 family;
	u8 pad[7];			/* zero: the key is hashed as memory */
};

struct kvip_aff {
	struct rhash_head node;
	struct kvip_aff_key key;
	union nf_inet_addr addr;	/* the endpoint */
	__be16 port;
	u32 hint;			/* its index when last seen */
	unsigned long expires;		/* jiffies; refreshed under RCU */
	struct kvip_aff_svc *as;
	struct rcu_head rcu;
};

struct kvip_affinity_table {
	struct rhashtable ht;
	atomic_t count;
	unsigned long next_kick;	/* jiffies: rate of full-table kicks */
	struct delayed_work gc;
};

static const struct rhashtable_params kvip_aff_params = {
	.head_offset = offsetof(struct kvip_aff, node),
	.key_offset = offsetof(struct kvip_aff, key),
	.key_len = sizeof(struct kvip_aff_key),
	.automatic_shrinking = true,
};

static void kvip_aff_svc_put(struct kvip_aff_svc *as)
{
	if (refcount_dec_and_test(&as->ref))
		kfree_rcu(as, rcu);
}

static void kvip_aff_free_rcu(struct rcu_head *head)
{
	struct kvip_aff *e = container_of(head, struct kvip_aff, rcu);

	kvip_aff_svc_put(e->as);
	kfree(e);
}

/* Remove @e unless somebody else did; whoever removes it frees it. */
static void kvip_aff_remove(struct kvip_affinity_table *tbl,
			    struct kvip_aff *e)
{
	if (rhashtable_remove_fast(&tbl->ht, &e->node, kvip_aff_params))
		return;
	atomic_dec(&tbl->count);
	atomic_dec(&e->as->count);
	call_rcu(&e->rcu, kvip_aff_free_rcu);
}

static bool kvip_aff_expired(const struct kvip_aff *e)
{
	return time_after_eq(jiffies, READ_ONCE(e->expires));
}

/*
 * Where is the entry's endpoint in @eps? Usually where it was last time;
 * after a set change, a scan of the family finds it once and the hint is
 * updated. -1: it left the set.
 */
static s64 kvip_aff_locate(const struct kvip_endpoints *eps, u8 family,
			   struct kvip_aff *e)
{
	const struct kvip_fam *f = &eps->fam[kvip_fam_index(family)];
	u32 i = READ_ONCE(e->hint);

	if (i >= f->first && i < f->first + f->count &&
	    eps->ep[i].port == e->port &&
	    nf_inet_addr_cmp(&eps->ep[i].addr, &e->addr))
		return i;
	for (i = f->first; i < f->first + f->count; i++) {
		if (eps->ep[i].port == e->port &&
		    nf_inet_addr_cmp(&eps->ep[i].addr, &e->addr)) {
			WRITE_ONCE(e->hint, i);
			return i;
		}
	}
	return -1;
}

/* The service's counter block, created on first use (packet path). */
static struct kvip_aff_svc *kvip_aff_svc_get(struct kvip_service *svc)
{
	struct kvip_aff_svc *as = rcu_dereference(svc->aff), *old;

	if (as)
		return as;
	as = kzalloc(sizeof(*as), GFP_ATOMIC | __GFP_NOWARN);
	if (!as)
		return NULL;
	refcount_set(&as->ref, 1);
	old = cmpxchg((struct kvip_aff_svc __force **)&svc->aff, NULL, as);
	if (old) {
		kfree(as);
		return old;
	}
	return as;
}

/* Record that @key's client got endpoint @i; best effort. */
static void kvip_aff_store(struct kvip_affinity_table *tbl,
			   struct kvip_service *svc,
			   const struct kvip_aff_key *key,
			   const struct kvip_endpoints *eps, u32 i,
			   unsigned long timeout, struct kvip_aff *old)
{
	struct kvip_aff_svc *as;
	struct kvip_aff *e, *other;

	if (old) {
		/* Replace, so that readers never see a torn endpoint. */
		kvip_aff_remove(tbl, old);
	}
	if (atomic_read(&tbl->count) >= READ_ONCE(kvip_max_affinity)) {
		/* Reclaim now, but not on every connection of a full table. */
		if (time_after_eq(jiffies, READ_ONCE(tbl->next_kick))) {
			WRITE_ONCE(tbl->next_kick, jiffies + HZ);
			mod_delayed_work(system_power_efficient_wq, &tbl->gc, 0);
		}
		return;
	}
	as = kvip_aff_svc_get(svc);
	if (!as)
		return;
	e = kmalloc(sizeof(*e), GFP_ATOMIC | __GFP_NOWARN);
	if (!e)
		return;
	e->key = *key;
	e->addr = eps->ep[i].addr;
	e->port = eps->ep[i].port;
	e->hint = i;
	e->expires = jiffies + timeout;
	e->as = as;
	refcount_inc(&as->ref);

	other = rhashtable_lookup_get_insert_fast(&tbl->ht, &e->node,
						  kvip_aff_params);
	if (other) {
		/* Another CPU recorded this client first, or no memory. */
		kvip_aff_svc_put(as);
		kfree(e);
		return;
	}
	atomic_inc(&tbl->count);
	atomic_inc(&as->count);
	queue_delayed_work(system_power_efficient_wq, &tbl->gc,
			   KVIP_AFF_GC_PERIOD);
}

const struct kvip_ep *kvip_affinity_select(struct kvip_net *kn,
					   struct kvip_service *svc,
					   u32 timeout_s,
					   const struct kvip_endpoints *eps,
					   u8 family, enum kvip_pool_kind kind,
					   const union nf_inet_addr *client,
					   u32 *index)
{
	struct kvip_affinity_table *tbl = kn->affinity;
	unsigned long timeout = (unsigned long)timeout_s * HZ;
	const struct kvip_ep *ep;
	struct kvip_aff_key key;
	struct kvip_aff *e;
	s64 i;

	memset(&key, 0, sizeof(key));
	key.svc_id = svc->id;
	key.client = *client;
	key.family = family;

	e = rhashtable_lookup(&tbl->ht, &key, kvip_aff_params);
	if (e && !kvip_aff_expired(e)) {
		i = kvip_aff_locate(eps, family, e);
		if (i >= 0 && kvip_pool_has(eps, family, kind, i)) {
			WRITE_ONCE(e->expires, jiffies + timeout);
			*index = i;
			return &eps->ep[i];
		}
	}

	ep = kvip_select(eps, family, kind, index);
	if (ep)
		kvip_aff_store(tbl, svc, &key, eps, *index, timeout, e);
	return ep;
}

/*
 * Walk the table calling @fn on every entry (process context, may sleep
 * between batches). A walk may see an entry twice or miss one that moves
 * during a resize; both are harmless here.
 */
static void kvip_aff_walk(struct kvip_affinity_table *tbl,
			  bool (*fn)(struct kvip_aff *e, void *arg), void *arg)
{
	struct rhashtable_iter iter;
	struct kvip_aff *e;
	unsigned int n = 0;

	rhashtable_walk_enter(&tbl->ht, &iter);
	rhashtable_walk_start(&iter);
	while ((e = rhashtable_walk_next(&iter))) {
		if (IS_ERR(e)) {
			if (PTR_ERR(e) == -EAGAIN)
				continue;
			break;
		}
		if (fn(e, arg))
			kvip_aff_remove(tbl, e);
		if (++n % KVIP_AFF_GC_BATCH == 0) {
			rhashtable_walk_stop(&iter);
			cond_resched();
			rhashtable_walk_start(&iter);
		}
	}
	rhashtable_walk_stop(&iter);
	rhashtable_walk_exit(&iter);
}

/*
 * Expired entries, and those of deleted services: a packet that chose
 * while its service was being deleted may have recorded one after
 * kvip_affinity_forget(); it must not wait for its timeout (hours).
 */
static bool kvip_aff_gc_one(struct kvip_aff *e, void *arg)
{
	return kvip_aff_expired(e) || READ_ONCE(e->as->dead);
}

static void kvip_aff_gc(struct work_struct *work)
{
	struct kvip_affinity_table *tbl =
		container_of(to_delayed_work(work), struct kvip_affinity_table,
			     gc);

	kvip_aff_walk(tbl, kvip_aff_gc_one, NULL);
	if (atomic_read(&tbl->count))
		queue_delayed_work(system_power_efficient_wq, &tbl->gc,
				   KVIP_AFF_GC_PERIOD);
}

struct kvip_aff_forget {
	const struct kvip_service *svc;	/* NULL: all */
};

static bool kvip_aff_forget_one(struct kvip_aff *e, void *arg)
{
	const struct kvip_aff_forget *f = arg;

	return !f->svc || e->key.svc_id == f->svc->id;
}

void kvip_affinity_forget(struct kvip_net *kn, const struct kvip_service *svc)
{
	struct kvip_affinity_table *tbl = kn->affinity;
	struct kvip_aff_forget f = { .svc = svc };
	const struct kvip_aff_svc *as;

	if (!atomic_read(&tbl->count))
		return;
	if (svc) {
		/* Only services that ever had an entry have a block. */
		rcu_read_lock();
		as = rcu_dereference(svc->aff);
		if (!as || !atomic_read(&as->count)) {
			rcu_read_unlock();
			return;
		}
		rcu_read_unlock();
	}
	kvip_aff_walk(tbl, kvip_aff_forget_one, &f);
}

/* After a grace period: no packet path can record an entry for @svc. */
void kvip_affinity_release(struct kvip_service *svc)
{
	struct kvip_aff_svc *as = rcu_dereference_protected(svc->aff, 1);

	if (as) {
		WRITE_ONCE(as->dead, true);
		kvip_aff_svc_put(as);
	}
}

struct kvip_aff_fill {
	struct sk_buff *skb;
	const struct kvip_service *svc;
	u32 left;
	bool full;
};

static int kvip_aff_put(struct sk_buff *skb, const struct kvip_aff *e)
{
	unsigned int len = e->key.family == AF_INET ? 4 : 16;
	long left = (long)(READ_ONCE(e->expires) - jiffies);
	struct nlattr *nest;

	nest = nla_nest_start(skb, 0);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u16(skb, KVIP_AFFINITY_A_FAMILY, e->key.family) ||
	    nla_put(skb, KVIP_AFFINITY_A_CLIENT, len, &e->key.client) ||
	    nla_put(skb, KVIP_AFFINITY_A_ENDPOINT, len, &e->addr) ||
	    nla_put_u16(skb, KVIP_AFFINITY_A_PORT, ntohs(e->port)) ||
	    nla_put_u32(skb, KVIP_AFFINITY_A_EXPIRES,
			left > 0 ? jiffies_to_msecs(left) : 0)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static bool kvip_aff_fill_one(struct kvip_aff *e, void *arg)
{
	struct kvip_aff_fill *f = arg;

	if (f->full || !f->left || e->key.svc_id != f->svc->id ||
	    kvip_aff_expired(e))
		return false;
	if (kvip_aff_put(f->skb, e))
		f->full = true;
	else
		f->left--;
	return false;
}

/*
 * The count includes entries that expired but were not reclaimed yet
 * (at most one reclaim period old); the list only unexpired ones.
 */
u32 kvip_affinity_fill(struct sk_buff *skb, struct kvip_net *kn,
		       const struct kvip_service *svc, u32 max)
{
	struct kvip_aff_fill f = { .skb = skb, .svc = svc, .left = max };
	const struct kvip_aff_svc *as;
	u32 count;

	rcu_read_lock();
	as = rcu_dereference(svc->aff);
	count = as ? atomic_read(&as->count) : 0;
	rcu_read_unlock();
	if (skb && count && max)
		kvip_aff_walk(kn->affinity, kvip_aff_fill_one, &f);
	return count;
}

int kvip_affinity_init(struct kvip_net *kn)
{
	struct kvip_affinity_table *tbl;
	int err;

	tbl = kzalloc(sizeof(*tbl), KVIP_GFP);
	if (!tbl)
		return -ENOMEM;
	err = rhashtable_init(&tbl->ht, &kvip_aff_params);
	if (err) {
		kfree(tbl);
		return err;
	}
	INIT_DEFERRABLE_WORK(&tbl->gc, kvip_aff_gc);
	kn->affinity = tbl;
	return 0;
}

static void kvip_aff_free(void *ptr, void *arg)
{
	struct kvip_aff *e = ptr;

	kvip_aff_svc_put(e->as);
	kfree(e);
}

/*
 * Netns exit, after the hooks are gone (no packet path user is left) and
 * every service was forgotten. Counter blocks of services still waiting
 * for their grace period go with them; module exit's rcu_barrier() waits
 * for all.
 */
void kvip_affinity_destroy(struct kvip_net *kn)
{
	struct kvip_affinity_table *tbl = kn->affinity;

	if (!tbl)
		return;
	cancel_delayed_work_sync(&tbl->gc);
	rhashtable_free_and_destroy(&tbl->ht, kvip_aff_free, NULL);
	kfree(tbl);
	kn->affinity = NULL;
}
