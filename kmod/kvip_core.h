/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvip internal interfaces.
 *
 * Locking: every table mutation and every dump runs under kvip_net.lock.
 * The packet path never takes it: it reads frontends, services and
 * endpoint sets under RCU (netfilter hooks run in an RCU read section).
 * Frontends and services are freed after a grace period; an endpoint set is
 * replaced by publishing a new one with rcu_assign_pointer().
 */
#ifndef _KVIP_CORE_H
#define _KVIP_CORE_H

#include <linux/mutex.h>
#include <linux/netfilter.h>
#include <linux/percpu.h>
#include <linux/rhashtable-types.h>
#include <net/netns/generic.h>

#include <uapi/linux/kvip.h>

#include "compat.h"

/*
 * Memory allocated on behalf of a netlink caller: charged to its memory
 * cgroup, and failing with ENOMEM (reported with an extack message) rather
 * than OOM-killing anyone or warning: the caller gets an error it handles.
 */
#define KVIP_GFP (GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

/* Frontend key: zero for every byte not in use, it is hashed as memory. */
struct kvip_fe_key {
	union nf_inet_addr addr;	/* zero for node ports */
	__be16 port;
	u8 proto;
	u8 family;			/* AF_INET, AF_INET6; 0 for node ports */
};

struct kvip_frontend {
	struct rhash_head node;
	struct kvip_fe_key key;
	u8 type;			/* enum kvip_frontend_type */
	struct kvip_service *svc;	/* owner, for the frontend's lifetime */
	struct rcu_head rcu;
};

/* One endpoint; 24 bytes so large sets stay compact. */
struct kvip_ep {
	union nf_inet_addr addr;
	__be16 port;
	u8 family;
	u8 flags;			/* enum kvip_endpoint_flags */
	u32 weight;
};

/* The endpoints of one address family inside a set. */
struct kvip_fam {
	u32 first;
	u32 count;
	u32 total_weight;		/* 0: nothing to choose from */
	bool uniform;			/* all weights equal: no cum[] search */
};

#define KVIP_STATS_CHUNK_SHIFT	11	/* counters per per-CPU chunk: 2048 */
#define KVIP_STATS_CHUNK	BIT(KVIP_STATS_CHUNK_SHIFT)

/*
 * An immutable endpoint set: IPv4 endpoints first, then IPv6. Per-endpoint
 * connection counters are per-CPU, in chunks because the per-CPU allocator
 * cannot hand out more than 32 KiB at once.
 */
struct kvip_endpoints {
	struct rcu_head rcu;
	u32 count;
	struct kvip_fam fam[2];		/* [0] IPv4, [1] IPv6 */
	u32 *cum;			/* cumulative weights, or NULL */
	u64 __percpu **conns;		/* count / KVIP_STATS_CHUNK chunks */
	struct kvip_ep ep[];
};

struct kvip_svc_stats {
	u64 conns;
	u64 rejects;
};

/*
 * A set being assembled from several KVIP_CMD_SET_ENDPOINTS messages of one
 * socket; on kvip_net.staged so that closing the socket frees it.
 */
struct kvip_staging {
	struct list_head list;
	struct kvip_service *svc;
	u32 portid;
	u32 count;
	u32 cap;
	struct kvip_ep *ep;
};

struct kvip_service {
	struct rhash_head node;		/* kvip_net.names */
	struct list_head list;		/* kvip_net.services, dump order */
	struct kvip_endpoints __rcu *eps;
	struct kvip_svc_stats __percpu *stats;
	struct kvip_frontend **fe;
	struct kvip_staging *staging;
	u32 flags;
	u16 nfe;
	u8 proto;
	struct rcu_head rcu;
	char name[];
};

struct kvip_net {
	struct mutex lock;		/* serialises all writers and dumps */
	struct rhashtable frontends;	/* kvip_fe_key -> kvip_frontend */
	struct rhashtable names;	/* name -> kvip_service */
	struct list_head services;
	struct list_head staged;	/* kvip_staging.list */
	struct net *net;
	u32 nservices;
	u32 nendpoints;			/* in published sets */
	u32 nstaged;			/* in staged sets */
	u32 nnodeports;			/* node-port frontends */
	u32 gen;			/* bumped on every change; never 0 */
	bool hooked;			/* NAT hooks + conntrack taken */
};

extern unsigned int kvip_net_id;
extern unsigned int kvip_max_services;
extern unsigned int kvip_max_endpoints;

static inline struct kvip_net *kvip_pernet(const struct net *net)
{
	return net_generic(net, kvip_net_id);
}

static inline u64 __percpu *
kvip_endpoint_counter(const struct kvip_endpoints *eps, u32 i)
{
	return eps->conns[i >> KVIP_STATS_CHUNK_SHIFT] +
	       (i & (KVIP_STATS_CHUNK - 1));
}

static inline int kvip_fam_index(u8 family)
{
	return family == AF_INET6;
}

/* table.c */
int kvip_table_init(struct kvip_net *kn);
void kvip_table_destroy(struct kvip_net *kn);
struct kvip_service *kvip_service_find(struct kvip_net *kn, const char *name);
struct kvip_frontend *kvip_frontend_lookup(struct kvip_net *kn,
					   const struct kvip_fe_key *key);
struct kvip_frontend *kvip_frontend_find(struct kvip_net *kn,
					 const struct kvip_fe_key *key);
struct kvip_service *kvip_service_create(struct kvip_net *kn, const char *name,
					 u8 proto, u32 flags,
					 const struct kvip_frontend *fe,
					 unsigned int nfe);
int kvip_service_update(struct kvip_net *kn, struct kvip_service *svc,
			u8 proto, u32 flags, const struct kvip_frontend *fe,
			unsigned int nfe);
void kvip_service_delete(struct kvip_net *kn, struct kvip_service *svc);
void kvip_flush(struct kvip_net *kn);
struct kvip_endpoints *kvip_endpoints_build(const struct kvip_ep *ep,
					    u32 count, u32 *dup);
void kvip_endpoints_replace(struct kvip_net *kn, struct kvip_service *svc,
			    struct kvip_endpoints *eps);
void kvip_endpoints_free(struct kvip_endpoints *eps);
u64 kvip_endpoint_conns(const struct kvip_endpoints *eps, u32 i);
void kvip_service_stats(const struct kvip_service *svc,
			struct kvip_svc_stats *sum);
struct kvip_staging *kvip_stage_begin(struct kvip_net *kn,
				      struct kvip_service *svc, u32 portid);
void kvip_unstage(struct kvip_net *kn, struct kvip_service *svc);
void kvip_bump_gen(struct kvip_net *kn);

/* select.c */
const struct kvip_ep *kvip_select(const struct kvip_endpoints *eps,
				  u8 family, u32 *index);

/* nat.c */
int kvip_nat_enable(struct net *net);
void kvip_nat_disable(struct net *net);

/* netlink.c */
int kvip_genl_init(void);
void kvip_genl_exit(void);

#endif /* _KVIP_CORE_H */
