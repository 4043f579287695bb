// SPDX-License-Identifier: GPL-2.0
/*
 * Endpoint choice for a new connection: uniform random, weighted by weight.
 * Runs once per new flow; O(1) when all weights are equal (the common
 * case), O(log n) otherwise.
 */
#include <linux/random.h>

#include "kvip_core.h"

static u32 kvip_weighted(const struct kvip_endpoints *eps,
			 const struct kvip_fam *f)
{
	u32 r = get_random_u32_below(f->total_weight);
	u32 lo = f->first, hi = f->first + f->count - 1;

	/* Smallest i with cum[i] > r; zero-weight entries are never hit. */
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (eps->cum[mid] > r)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

const struct kvip_ep *kvip_select(const struct kvip_endpoints *eps,
				  u8 family, u32 *index)
{
	const struct kvip_fam *f = &eps->fam[kvip_fam_index(family)];
	u32 i;

	if (!f->total_weight)
		return NULL;

	if (f->uniform)
		i = f->first + get_random_u32_below(f->count);
	else
		i = kvip_weighted(eps, f);

	*index = i;
	return &eps->ep[i];
}
