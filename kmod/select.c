// SPDX-License-Identifier: GPL-2.0
/*
 * Endpoint choice for a new connection: uniform random, weighted by weight,
 * from one pool of the set (kube-proxy's CategorizeEndpoints, computed once
 * when the set is built). Runs once per new flow; O(1) when the pool's
 * weights are equal (the common case), O(log n) otherwise, and never
 * allocates.
 */
#include <linux/random.h>
#include <linux/slab.h>

#include "kvip_core.h"

/* Smallest i in [lo, hi] with cum[i] > r; zero-weight entries never hit. */
static u32 kvip_cum_search(const u32 *cum, u32 lo, u32 hi, u32 r)
{
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (cum[mid] > r)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

const struct kvip_ep *kvip_select(const struct kvip_endpoints *eps,
				  u8 family, enum kvip_pool_kind kind,
				  u32 *index)
{
	int fi = kvip_fam_index(family);
	const struct kvip_pool *p = &eps->pool[fi][kind];
	const struct kvip_fam *f = &eps->fam[fi];
	u32 i;

	if (!p->total_weight)
		return NULL;

	if (p->idx) {
		if (p->uniform)
			i = get_random_u32_below(p->count);
		else
			i = kvip_cum_search(p->cum, 0, p->count - 1,
					    get_random_u32_below(p->total_weight));
		i = p->idx[i];
	} else if (f->uniform) {
		i = f->first + get_random_u32_below(f->count);
	} else {
		i = kvip_cum_search(eps->cum, f->first, f->first + f->count - 1,
				    get_random_u32_below(f->total_weight));
	}

	*index = i;
	return &eps->ep[i];
}

static u32 kvip_pool_members(const struct kvip_endpoints *eps,
			     const struct kvip_fam *f, u8 need)
{
	u32 i, n = 0;

	for (i = f->first; i < f->first + f->count; i++)
		n += eps->ep[i].weight && (eps->ep[i].flags & need) == need;
	return n;
}

static int kvip_pool_build(struct kvip_endpoints *eps, const struct kvip_fam *f,
			   struct kvip_pool *p, u8 local)
{
	u32 i, n, weighted = 0, sum = 0, w0 = 0;
	bool uniform = true;

	/* Ready endpoints, or failing that the serving terminating ones. */
	p->need = KVIP_ENDPOINT_F_READY | local;
	n = kvip_pool_members(eps, f, p->need);
	if (!n) {
		p->need = KVIP_ENDPOINT_F_SERVING |
			  KVIP_ENDPOINT_F_TERMINATING | local;
		n = kvip_pool_members(eps, f, p->need);
	}
	if (!n)
		return 0;

	for (i = f->first; i < f->first + f->count; i++)
		weighted += !!eps->ep[i].weight;
	p->count = n;
	if (n == weighted) {
		/* The whole family: its range and eps->cum serve. */
		p->total_weight = f->total_weight;
		p->uniform = f->uniform;
		return 0;
	}

	for (i = f->first; i < f->first + f->count; i++) {
		const struct kvip_ep *ep = &eps->ep[i];

		if (!ep->weight || (ep->flags & p->need) != p->need)
			continue;
		if (!w0)
			w0 = ep->weight;
		uniform &= ep->weight == w0;
	}
	p->idx = kvmalloc_array(uniform ? n : 2 * n, sizeof(u32), KVIP_GFP);
	if (!p->idx)
		return -ENOMEM;
	if (!uniform)
		p->cum = p->idx + n;
	n = 0;
	for (i = f->first; i < f->first + f->count; i++) {
		const struct kvip_ep *ep = &eps->ep[i];

		if (!ep->weight || (ep->flags & p->need) != p->need)
			continue;
		sum += ep->weight;
		if (p->cum)
			p->cum[n] = sum;
		p->idx[n++] = i;
	}
	p->total_weight = sum;
	p->uniform = uniform;
	return 0;
}

/*
 * Compute the pools of a set whose families and weights are final. On
 * error the caller frees the set with kvip_endpoints_free().
 */
int kvip_pools_build(struct kvip_endpoints *eps)
{
	int fi, err;

	for (fi = 0; fi < 2; fi++) {
		err = kvip_pool_build(eps, &eps->fam[fi],
				      &eps->pool[fi][KVIP_POOL_CLUSTER], 0);
		if (err)
			return err;
		err = kvip_pool_build(eps, &eps->fam[fi],
				      &eps->pool[fi][KVIP_POOL_LOCAL],
				      KVIP_ENDPOINT_F_LOCAL);
		if (err)
			return err;
	}
	return 0;
}

void kvip_pools_free(struct kvip_endpoints *eps)
{
	int fi, k;

	for (fi = 0; fi < 2; fi++)
		for (k = 0; k < __KVIP_POOL_MAX; k++)
			kvfree(eps->pool[fi][k].idx);
}
