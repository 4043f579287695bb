// SPDX-License-Identifier: GPL-2.0
/*
 * The per-netns service table: services by name, frontends by
 * (family, protocol, address, port), and immutable endpoint sets.
 *
 * Writers hold kvip_net.lock; the packet path reads under RCU only.
 */
#include <linux/jhash.h>
#include <linux/log2.h>
#include <linux/rhashtable.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "kvip_core.h"

static u32 kvip_name_hash(const void *data, u32 len, u32 seed)
{
	const char *name = data;

	return jhash(name, strlen(name), seed);
}

static u32 kvip_name_obj_hash(const void *data, u32 len, u32 seed)
{
	const struct kvip_service *svc = data;

	return kvip_name_hash(svc->name, len, seed);
}

static int kvip_name_cmp(struct rhashtable_compare_arg *arg, const void *obj)
{
	const struct kvip_service *svc = obj;

	return strcmp(svc->name, arg->key);
}

static const struct rhashtable_params kvip_name_params = {
	.head_offset = offsetof(struct kvip_service, node),
	.hashfn = kvip_name_hash,
	.obj_hashfn = kvip_name_obj_hash,
	.obj_cmpfn = kvip_name_cmp,
	.automatic_shrinking = true,
};

void kvip_bump_gen(struct kvip_net *kn)
{
	/* 0 means "no previous dump chunk" to nl_dump_check_consistent(). */
	if (!++kn->gen)
		kn->gen = 1;
}

struct kvip_service *kvip_service_find(struct kvip_net *kn, const char *name)
{
	return rhashtable_lookup_fast(&kn->names, name, kvip_name_params);
}

/* Frontends: see struct kvip_fe_table. */

#define KVIP_FE_MIN_SLOTS	16
#define KVIP_FE_MAX_LIVE	BIT(28)		/* 32 GiB of slots: never */

/* Bring @fe's copies of @svc's fields up to date (see struct kvip_frontend). */
static void kvip_fe_sync(struct kvip_net *kn, const struct kvip_service *svc,
			 struct kvip_frontend *fe)
{
	fe->stats = svc->stats;
	WRITE_ONCE(fe->flags, kvip_svc_opts_locked(kn, svc)->flags);
	rcu_assign_pointer(fe->eps,
			   rcu_dereference_protected(svc->eps,
						     lockdep_is_held(&kn->lock)));
}

static u32 kvip_fe_hash(const struct kvip_fe_table *t,
			const struct kvip_fe_key *key)
{
	BUILD_BUG_ON(sizeof(*key) % sizeof(u32));
	return jhash2((const u32 *)key, sizeof(*key) / sizeof(u32), t->seed);
}

static bool kvip_fe_key_eq(const struct kvip_fe_key *a,
			   const struct kvip_fe_key *b)
{
	const u32 *x = (const u32 *)a, *y = (const u32 *)b;
	u32 i, diff = 0;

	for (i = 0; i < sizeof(*a) / sizeof(u32); i++)
		diff |= x[i] ^ y[i];
	return !diff;
}

static struct kvip_frontend *kvip_fe_table_find(struct kvip_fe_table *t,
						const struct kvip_fe_key *key)
{
	u32 i;

	if (!t)
		return NULL;
	for (i = kvip_fe_hash(t, key) & t->mask;; i = (i + 1) & t->mask) {
		struct kvip_frontend *fe = &t->slot[i];
		/* Pairs with the release in kvip_fe_insert(): a whole key. */
		u8 state = smp_load_acquire(&fe->state);

		if (state == KVIP_FE_EMPTY)
			return NULL;
		if (state == KVIP_FE_LIVE && kvip_fe_key_eq(&fe->key, key))
			return fe;
	}
}

static struct kvip_fe_table *kvip_fe_table_locked(struct kvip_net *kn)
{
	return rcu_dereference_protected(kn->frontends,
					 lockdep_is_held(&kn->lock));
}

/* Packet path: caller is in an RCU read-side section. */
struct kvip_frontend *kvip_frontend_lookup(struct kvip_net *kn,
					   const struct kvip_fe_key *key)
{
	return kvip_fe_table_find(rcu_dereference(kn->frontends), key);
}

struct kvip_frontend *kvip_frontend_find(struct kvip_net *kn,
					 const struct kvip_fe_key *key)
{
	return kvip_fe_table_find(kvip_fe_table_locked(kn), key);
}

/* The first empty slot of @key's probe sequence (there always is one). */
static struct kvip_frontend *kvip_fe_table_empty(struct kvip_fe_table *t,
						 const struct kvip_fe_key *key)
{
	u32 i = kvip_fe_hash(t, key) & t->mask;

	while (t->slot[i].state != KVIP_FE_EMPTY)
		i = (i + 1) & t->mask;
	return &t->slot[i];
}

/*
 * A table is read at random by every new connection: from 2 MiB on, its
 * slots are mapped with huge pages (one TLB entry per 32,768 frontends; a
 * kvmalloc() of that size would be mapped with 4 KiB pages).
 */
static struct kvip_fe_table *kvip_fe_table_alloc(u32 slots)
{
	size_t size = array_size(slots, sizeof(struct kvip_frontend));
	struct kvip_fe_table *t;

	t = kzalloc(sizeof(*t), KVIP_GFP);
	if (!t)
		return NULL;
	if (size >= PMD_SIZE)
		t->slot = vmalloc_huge(size, KVIP_GFP | __GFP_ZERO);
	else
		t->slot = kvzalloc(size, KVIP_GFP);
	if (!t->slot) {
		kfree(t);
		return NULL;
	}
	t->mask = slots - 1;
	t->seed = get_random_u32();
	return t;
}

static void kvip_fe_table_free(struct kvip_fe_table *t)
{
	kvfree(t->slot);
	kfree(t);
}

static void kvip_fe_table_free_rcu(struct rcu_head *head)
{
	kvip_fe_table_free(container_of(head, struct kvip_fe_table, rcu));
}

/*
 * Copy the live frontends into a new table of @slots and publish it. Their
 * owners' svc->fe[] follow; readers of the old table finish with it, so
 * it is freed after a grace period.
 */
static int kvip_fe_table_resize(struct kvip_net *kn, u32 slots)
{
	struct kvip_fe_table *old = kvip_fe_table_locked(kn), *t;
	u32 i;

	t = kvip_fe_table_alloc(slots);
	if (!t)
		return -ENOMEM;
	for (i = 0; old && i <= old->mask; i++) {
		struct kvip_frontend *fe = &old->slot[i], *to;

		if (fe->state != KVIP_FE_LIVE)
			continue;
		to = kvip_fe_table_empty(t, &fe->key);
		*to = *fe;
		fe->svc->fe[fe->pos] = to;
		t->used++;
		t->live++;
	}
	rcu_assign_pointer(kn->frontends, t);
	if (old)
		call_rcu(&old->rcu, kvip_fe_table_free_rcu);
	return 0;
}

/* Twice the live frontends: half full after a resize. */
static u32 kvip_fe_table_slots(u32 live)
{
	return max_t(u32, KVIP_FE_MIN_SLOTS, roundup_pow_of_two(2 * live));
}

/* Make room for @n more frontends, so that inserting them cannot fail. */
static int kvip_fe_table_reserve(struct kvip_net *kn, u32 n)
{
	struct kvip_fe_table *t = kvip_fe_table_locked(kn);
	u32 live = t ? t->live : 0;

	if (t && t->used + n <= (t->mask + 1) / 4 * 3)
		return 0;
	/* Only a raised max_services gets here; the slot count must fit. */
	if (live + n > KVIP_FE_MAX_LIVE)
		return -ENOMEM;
	return kvip_fe_table_resize(kn, kvip_fe_table_slots(live + n));
}

/* Shrink a table that is at most 1/8 live; an allocation failure keeps it. */
static void kvip_fe_table_trim(struct kvip_net *kn)
{
	struct kvip_fe_table *t = kvip_fe_table_locked(kn);

	if (t && t->mask + 1 > KVIP_FE_MIN_SLOTS && t->live < (t->mask + 1) / 8)
		kvip_fe_table_resize(kn, kvip_fe_table_slots(t->live));
}

/* Insert @key, absent, after kvip_fe_table_reserve() made room for it. */
static struct kvip_frontend *kvip_fe_insert(struct kvip_net *kn,
					    const struct kvip_fe_key *key,
					    u8 type, struct kvip_service *svc)
{
	struct kvip_fe_table *t = kvip_fe_table_locked(kn);
	struct kvip_frontend *fe = kvip_fe_table_empty(t, key);

	fe->key = *key;
	fe->type = type;
	fe->svc = svc;
	kvip_fe_sync(kn, svc, fe);
	/* Readers see the key and the copies before the slot is live. */
	smp_store_release(&fe->state, KVIP_FE_LIVE);
	t->used++;
	t->live++;
	if (type == KVIP_FRONTEND_NODEPORT)
		kn->nnodeports++;
	return fe;
}

/* Endpoint sets */

void kvip_endpoints_free(struct kvip_endpoints *eps)
{
	u32 i;

	if (!eps)
		return;
	if (eps->conns) {
		for (i = 0; i < DIV_ROUND_UP(eps->count, KVIP_STATS_CHUNK); i++)
			free_percpu(eps->conns[i]);
		kfree(eps->conns);
	}
	kvfree(eps->cum);
	kvip_pools_free(eps);
	kvfree(eps);
}

static void kvip_endpoints_free_rcu(struct rcu_head *head)
{
	kvip_endpoints_free(container_of(head, struct kvip_endpoints, rcu));
}

static int kvip_endpoints_alloc_stats(struct kvip_endpoints *eps)
{
	u32 i, n = DIV_ROUND_UP(eps->count, KVIP_STATS_CHUNK);

	eps->conns = kcalloc(n, sizeof(*eps->conns), KVIP_GFP);
	if (!eps->conns)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		u32 len = min(KVIP_STATS_CHUNK, eps->count - i * KVIP_STATS_CHUNK);

		eps->conns[i] = __alloc_percpu_gfp(len * sizeof(u64),
						   sizeof(u64),
						   KVIP_GFP);
		if (!eps->conns[i])
			return -ENOMEM;
	}
	return 0;
}

u64 kvip_endpoint_conns(const struct kvip_endpoints *eps, u32 i)
{
	u64 __percpu *c;
	u64 sum = 0;
	int cpu;

	c = kvip_endpoint_counter(eps, i);
	for_each_possible_cpu(cpu)
		sum += *per_cpu_ptr(c, cpu);
	return sum;
}

/*
 * A throw-away open-addressing index over an endpoint array, keyed by
 * (address, port, family): finds duplicates and matches endpoints of the
 * old set to the new one in O(n).
 */
struct kvip_ep_index {
	u32 mask;
	u32 slot[];	/* endpoint index + 1, 0 = empty */
};

#define KVIP_EP_KEY_LEN offsetof(struct kvip_ep, flags)

static struct kvip_ep_index *kvip_ep_index_alloc(u32 count)
{
	u32 size = roundup_pow_of_two(max(2 * count, 4U));
	struct kvip_ep_index *idx;

	idx = kvzalloc(struct_size(idx, slot, size), KVIP_GFP);
	if (idx)
		idx->mask = size - 1;
	return idx;
}

/*
 * Return the index of an entry equal to @ep, or insert @i and return -1.
 * With @i == U32_MAX, look up only.
 */
static s64 kvip_ep_index_get(struct kvip_ep_index *idx,
			     const struct kvip_ep *base,
			     const struct kvip_ep *ep, u32 i)
{
	u32 h = jhash(ep, KVIP_EP_KEY_LEN, 0) & idx->mask;

	for (;; h = (h + 1) & idx->mask) {
		u32 s = idx->slot[h];

		if (!s) {
			if (i != U32_MAX)
				idx->slot[h] = i + 1;
			return -1;
		}
		if (!memcmp(&base[s - 1], ep, KVIP_EP_KEY_LEN))
			return s - 1;
	}
}

static void kvip_fam_finish(struct kvip_endpoints *eps, struct kvip_fam *f)
{
	u32 i, sum = 0;
	bool uniform = true;

	for (i = f->first; i < f->first + f->count; i++) {
		if (eps->ep[i].weight != eps->ep[f->first].weight)
			uniform = false;
		sum += eps->ep[i].weight;
		if (eps->cum)
			eps->cum[i] = sum;
	}
	f->total_weight = sum;
	f->uniform = uniform && sum;
}

/*
 * Build an immutable set from @count endpoints in any family order, with
 * per-endpoint counters if @stats. Returns NULL for the empty set,
 * ERR_PTR(-EEXIST) with *dup set to the input index of a repeated
 * endpoint, or ERR_PTR(-ENOMEM).
 */
struct kvip_endpoints *kvip_endpoints_build(const struct kvip_ep *in,
					    u32 count, bool stats, u32 *dup)
{
	struct kvip_endpoints *eps;
	struct kvip_ep_index *idx;
	u32 i, n4 = 0, pos[2];
	bool uniform = true;
	int err = -ENOMEM;

	if (!count)
		return NULL;

	idx = kvip_ep_index_alloc(count);
	if (!idx)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < count; i++) {
		if (kvip_ep_index_get(idx, in, &in[i], i) >= 0) {
			*dup = i;
			kvfree(idx);
			return ERR_PTR(-EEXIST);
		}
		n4 += in[i].family == AF_INET;
		uniform &= in[i].weight == in[0].weight;
	}
	kvfree(idx);

	eps = kvzalloc(struct_size(eps, ep, count), KVIP_GFP);
	if (!eps)
		return ERR_PTR(-ENOMEM);
	eps->count = count;
	if (!uniform) {
		eps->cum = kvcalloc(count, sizeof(u32), KVIP_GFP);
		if (!eps->cum)
			goto err;
	}
	if (stats) {
		err = kvip_endpoints_alloc_stats(eps);
		if (err)
			goto err;
	}

	/* IPv4 first, then IPv6, each in the order given. */
	eps->fam[0].count = n4;
	eps->fam[1].first = n4;
	eps->fam[1].count = count - n4;
	pos[0] = 0;
	pos[1] = n4;
	for (i = 0; i < count; i++)
		eps->ep[pos[kvip_fam_index(in[i].family)]++] = in[i];
	kvip_fam_finish(eps, &eps->fam[0]);
	kvip_fam_finish(eps, &eps->fam[1]);
	err = kvip_pools_build(eps);
	if (err)
		goto err;
	return eps;
err:
	kvip_endpoints_free(eps);
	return ERR_PTR(err);
}

/*
 * Carry connection counters of endpoints present in both sets, so that an
 * endpoint update does not reset what operators see. Best effort: without
 * memory for the index the new counters start at zero.
 */
static void kvip_endpoints_carry(struct kvip_endpoints *new,
				 const struct kvip_endpoints *old)
{
	u64 __percpu *from, *to;
	struct kvip_ep_index *idx;
	u32 i;
	int cpu;

	if (!new->conns || !old->conns)
		return;
	idx = kvip_ep_index_alloc(old->count);
	if (!idx)
		return;
	for (i = 0; i < old->count; i++)
		kvip_ep_index_get(idx, old->ep, &old->ep[i], i);
	for (i = 0; i < new->count; i++) {
		s64 o = kvip_ep_index_get(idx, old->ep, &new->ep[i], U32_MAX);

		if (o < 0)
			continue;
		to = kvip_endpoint_counter(new, i);
		from = kvip_endpoint_counter(old, o);
		for_each_possible_cpu(cpu)
			per_cpu(*to, cpu) = per_cpu(*from, cpu);
	}
	kvfree(idx);
}

static void kvip_frontends_sync(struct kvip_net *kn,
				const struct kvip_service *svc)
{
	unsigned int i;

	for (i = 0; i < svc->nfe; i++)
		kvip_fe_sync(kn, svc, svc->fe[i]);
}

/* Publish @eps (may be NULL: empty) and free the old set after a grace period. */
void kvip_endpoints_replace(struct kvip_net *kn, struct kvip_service *svc,
			    struct kvip_endpoints *eps)
{
	struct kvip_endpoints *old;

	old = rcu_dereference_protected(svc->eps, lockdep_is_held(&kn->lock));
	kn->nendpoints += (eps ? eps->count : 0) - (old ? old->count : 0);

	if (old && eps)
		kvip_endpoints_carry(eps, old);
	rcu_assign_pointer(svc->eps, eps);
	kvip_frontends_sync(kn, svc);
	kvip_ct_endpoints_changed(kn, svc, old, eps);
	if (old)
		call_rcu(&old->rcu, kvip_endpoints_free_rcu);
}

struct kvip_staging *kvip_stage_begin(struct kvip_net *kn,
				      struct kvip_service *svc, u32 portid)
{
	struct kvip_staging *st;

	kvip_unstage(kn, svc);
	st = kzalloc(sizeof(*st), KVIP_GFP);
	if (!st)
		return NULL;
	st->svc = svc;
	st->portid = portid;
	list_add(&st->list, &kn->staged);
	svc->staging = st;
	return st;
}

void kvip_unstage(struct kvip_net *kn, struct kvip_service *svc)
{
	struct kvip_staging *st = svc->staging;

	if (!st)
		return;
	kn->nstaged -= st->count;
	list_del(&st->list);
	kvfree(st->ep);
	kfree(st);
	svc->staging = NULL;
}

/* Service options */

void kvip_svc_opts_free(struct kvip_svc_opts *opts)
{
	if (!opts)
		return;
	kfree(opts->source_ranges);
	kfree(opts);
}

static void kvip_svc_opts_free_rcu(struct rcu_head *head)
{
	kvip_svc_opts_free(container_of(head, struct kvip_svc_opts, rcu));
}

const struct kvip_svc_opts *kvip_svc_opts_locked(struct kvip_net *kn,
						 const struct kvip_service *svc)
{
	return rcu_dereference_protected(svc->opts, lockdep_is_held(&kn->lock));
}

void kvip_service_stats(const struct kvip_service *svc,
			struct kvip_svc_stats *sum)
{
	int cpu;

	memset(sum, 0, sizeof(*sum));
	for_each_possible_cpu(cpu) {
		const struct kvip_svc_stats *s = per_cpu_ptr(svc->stats, cpu);

		sum->conns += READ_ONCE(s->conns);
		sum->rejects += READ_ONCE(s->rejects);
		sum->drops += READ_ONCE(s->drops);
	}
}

/* Frontends */

/* The slot stays dead until a resize: readers may still be matching it. */
static void kvip_frontend_remove(struct kvip_net *kn, struct kvip_frontend *fe)
{
	WRITE_ONCE(fe->state, KVIP_FE_DEAD);
	kvip_fe_table_locked(kn)->live--;
	if (fe->type == KVIP_FRONTEND_NODEPORT)
		kn->nnodeports--;
}

static bool kvip_fe_in(const struct kvip_frontend *fe,
		       struct kvip_frontend **set, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (set[i] == fe)
			return true;
	return false;
}

/*
 * Make @svc own exactly the frontends in @spec, with protocol @proto.
 * The caller has checked that no other service owns any of them. Either
 * everything changes or nothing does.
 */
static int kvip_frontends_set(struct kvip_net *kn, struct kvip_service *svc,
			      u8 proto, const struct kvip_frontend *spec,
			      unsigned int nfe)
{
	struct kvip_frontend **set, *fe;
	unsigned int i;
	int err;

	set = kcalloc(nfe, sizeof(*set), KVIP_GFP);
	if (!set)
		return -ENOMEM;
	/* Room for all, so that nothing below fails but the sanity check. */
	err = kvip_fe_table_reserve(kn, nfe);
	if (err) {
		kfree(set);
		return err;
	}

	for (i = 0; i < nfe; i++) {
		struct kvip_fe_key key = spec[i].key;

		key.proto = proto;
		fe = kvip_frontend_find(kn, &key);
		if (fe) {
			/* The caller rejected duplicates and others' frontends. */
			if (WARN_ON_ONCE(fe->svc != svc ||
					 kvip_fe_in(fe, set, i))) {
				err = -EEXIST;
				goto unwind;
			}
			set[i] = fe;	/* ours: kept, maybe retyped below */
			continue;
		}
		set[i] = kvip_fe_insert(kn, &key, spec[i].type, svc);
	}

	for (i = 0; i < svc->nfe; i++)
		if (!kvip_fe_in(svc->fe[i], set, nfe))
			kvip_frontend_remove(kn, svc->fe[i]);
	for (i = 0; i < nfe; i++) {
		fe = set[i];
		WRITE_ONCE(fe->type, spec[i].type);	/* never to or from NODEPORT */
		fe->pos = i;
	}
	kfree(svc->fe);
	svc->fe = set;
	svc->nfe = nfe;
	kvip_fe_table_trim(kn);
	return 0;

unwind:
	/* Remove only what this call inserted: those are not in svc->fe. */
	while (i--)
		if (!kvip_fe_in(set[i], svc->fe, svc->nfe))
			kvip_frontend_remove(kn, set[i]);
	kfree(set);
	return err;
}

/* Services */

static void kvip_service_free(struct kvip_service *svc)
{
	/* After a grace period, or never published: no readers left. */
	kvip_endpoints_free(rcu_dereference_protected(svc->eps, 1));
	kvip_svc_opts_free(rcu_dereference_protected(svc->opts, 1));
	kvip_affinity_release(svc);
	free_percpu(svc->stats);
	kfree(svc);
}

static void kvip_service_free_rcu(struct rcu_head *head)
{
	kvip_service_free(container_of(head, struct kvip_service, rcu));
}

struct kvip_service *kvip_service_create(struct kvip_net *kn, const char *name,
					 u8 proto, struct kvip_svc_opts *opts,
					 const struct kvip_frontend *fe,
					 unsigned int nfe)
{
	size_t len = strlen(name) + 1;
	struct kvip_service *svc;
	bool hooked_here = false;
	int err = -ENOMEM;

	svc = kzalloc(struct_size(svc, name, len), KVIP_GFP);
	if (!svc) {
		kvip_svc_opts_free(opts);
		return ERR_PTR(-ENOMEM);
	}
	memcpy(svc->name, name, len);
	svc->proto = proto;
	RCU_INIT_POINTER(svc->opts, opts);
	svc->stats = alloc_percpu_gfp(struct kvip_svc_stats,
				      KVIP_GFP);
	if (!svc->stats)
		goto err_free;

	if (!kn->hooked) {
		err = kvip_nat_enable(kn->net);
		if (err)
			goto err_free;
		kn->hooked = true;
		hooked_here = true;
	}

	err = rhashtable_insert_fast(&kn->names, &svc->node, kvip_name_params);
	if (err)
		goto err_unhook;
	err = kvip_frontends_set(kn, svc, proto, fe, nfe);
	if (err)
		goto err_unname;

	svc->id = ++kn->next_id;
	list_add_tail(&svc->list, &kn->services);
	kn->nservices++;
	kvip_bump_gen(kn);
	return svc;

err_unname:
	rhashtable_remove_fast(&kn->names, &svc->node, kvip_name_params);
	/* Lookups may have seen it: free after a grace period. */
	call_rcu(&svc->rcu, kvip_service_free_rcu);
	svc = NULL;
err_unhook:
	if (hooked_here) {
		kvip_nat_disable(kn->net);
		kn->hooked = false;
	}
err_free:
	if (svc)
		kvip_service_free(svc);
	return ERR_PTR(err);
}

int kvip_service_update(struct kvip_net *kn, struct kvip_service *svc,
			u8 proto, struct kvip_svc_opts *opts,
			const struct kvip_frontend *fe, unsigned int nfe)
{
	struct kvip_svc_opts *old;
	int err;

	err = kvip_frontends_set(kn, svc, proto, fe, nfe);
	if (err) {
		kvip_svc_opts_free(opts);
		return err;
	}
	WRITE_ONCE(svc->proto, proto);
	old = rcu_replace_pointer(svc->opts, opts, lockdep_is_held(&kn->lock));
	kvip_frontends_sync(kn, svc);
	if ((old->flags & KVIP_SERVICE_F_AFFINITY) &&
	    !(opts->flags & KVIP_SERVICE_F_AFFINITY))
		kvip_affinity_forget(kn, svc);
	call_rcu(&old->rcu, kvip_svc_opts_free_rcu);
	kvip_bump_gen(kn);
	return 0;
}

static void kvip_service_unlink(struct kvip_net *kn, struct kvip_service *svc)
{
	struct kvip_endpoints *eps;
	unsigned int i;

	eps = rcu_dereference_protected(svc->eps, lockdep_is_held(&kn->lock));
	if (eps)
		kn->nendpoints -= eps->count;
	kvip_ct_service_deleted(kn, svc);
	for (i = 0; i < svc->nfe; i++)
		kvip_frontend_remove(kn, svc->fe[i]);
	kfree(svc->fe);
	kvip_fe_table_trim(kn);
	kvip_unstage(kn, svc);
	kvip_affinity_forget(kn, svc);
	rhashtable_remove_fast(&kn->names, &svc->node, kvip_name_params);
	list_del(&svc->list);
	kn->nservices--;
	call_rcu(&svc->rcu, kvip_service_free_rcu);
}

static void kvip_maybe_unhook(struct kvip_net *kn)
{
	/* A netns without services pays nothing on its packet path. */
	if (!kn->nservices && kn->hooked) {
		kvip_nat_disable(kn->net);
		kn->hooked = false;
	}
}

void kvip_service_delete(struct kvip_net *kn, struct kvip_service *svc)
{
	kvip_service_unlink(kn, svc);
	kvip_bump_gen(kn);
	kvip_maybe_unhook(kn);
}

void kvip_flush(struct kvip_net *kn)
{
	struct kvip_service *svc, *tmp;

	list_for_each_entry_safe(svc, tmp, &kn->services, list) {
		kvip_service_unlink(kn, svc);
		cond_resched();
	}
	kvip_bump_gen(kn);
	kvip_maybe_unhook(kn);
}

int kvip_table_init(struct kvip_net *kn)
{
	return rhashtable_init(&kn->names, &kvip_name_params);
}

void kvip_table_destroy(struct kvip_net *kn)
{
	struct kvip_fe_table *t;

	kvip_flush(kn);
	rhashtable_destroy(&kn->names);
	t = rcu_replace_pointer(kn->frontends, NULL, lockdep_is_held(&kn->lock));
	if (t)
		call_rcu(&t->rcu, kvip_fe_table_free_rcu);
}
