/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvip internal interfaces.
 *
 * Locking: every table mutation and every dump runs under kvip_net.lock.
 * The packet path never takes it: it reads frontends, services and
 * endpoint sets under RCU (netfilter hooks run in an RCU read section).
 * Frontend tables and services are freed after a grace period; an endpoint
 * set is replaced by publishing a new one with rcu_assign_pointer().
 */
#ifndef _KVIP_CORE_H
#define _KVIP_CORE_H

#include <linux/mutex.h>
#include <linux/netfilter.h>
#include <linux/percpu.h>
#include <linux/rhashtable-types.h>
#include <linux/workqueue.h>
#include <net/netlink.h>
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

enum kvip_fe_state {
	KVIP_FE_EMPTY,			/* never used: ends a probe */
	KVIP_FE_LIVE,
	KVIP_FE_DEAD,			/* removed: skipped, reclaimed by a resize */
};

/*
 * A frontend is a slot of the netns's open-addressing table (struct
 * kvip_fe_table), one cache line, and keeps copies of what the first packet
 * of a connection reads of its service (the endpoint set, the counters and
 * the flags): a new connection to a cluster IP reads that line and the
 * endpoint set, and nothing else (plus the service's per-CPU counter with
 * KVIP_SERVICE_F_CONN_STATS, the per-endpoint one with ..._ENDPOINT_STATS).
 * With 100,000 services each is a cache miss (under an emulator, a TLB
 * miss too); a chained hash table would add its bucket. table.c writes the
 * copies with the service's, under kvip_net.lock.
 *
 * The key, the owner and the position are fixed while the slot is live; a
 * slot is never reused in place, so a reader that matched a key reads that
 * frontend's fields. A resize copies the live slots into a new table and
 * rewrites the owners' svc->fe[]: pointers to a frontend are valid under
 * kvip_net.lock (writers) or for one RCU read section (the packet path).
 */
struct kvip_frontend {
	struct kvip_fe_key key;
	u8 state;			/* enum kvip_fe_state, acquire/release */
	u8 type;			/* enum kvip_frontend_type */
	u16 pos;			/* in svc->fe[] */
	u32 flags;			/* svc->opts->flags */
	struct kvip_service *svc;	/* owner */
	struct kvip_endpoints __rcu *eps;	/* svc->eps */
	struct kvip_svc_stats __percpu *stats;	/* svc->stats */
} ____cacheline_aligned;

/*
 * Linear probing over a power-of-two array. At most 3/4 of the slots are
 * used (live or dead), so every probe sequence ends at an empty one. The
 * slots are an allocation of their own so that a large table is mapped
 * with huge pages (table.c).
 */
struct kvip_fe_table {
	struct kvip_frontend *slot;
	u32 mask;			/* slots - 1 */
	u32 seed;
	u32 used;			/* live + dead */
	u32 live;
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

/*
 * ISSUE 4 INTERFACE (select.c owns the layout): a pool is what one new
 * connection may choose from, per family and kind (cluster or local, see
 * <linux/kvip.h>), computed once when the set is built. When the pool is
 * the family's whole range (the common case) it needs no index array.
 */
enum kvip_pool_kind {
	KVIP_POOL_CLUSTER,
	KVIP_POOL_LOCAL,
	__KVIP_POOL_MAX
};

/*
 * Members are the endpoints of the family with a weight and all the flags
 * in @need (KVIP_ENDPOINT_F_READY, or else SERVING | TERMINATING; plus
 * LOCAL for the local pool), so membership is a test of one endpoint.
 * @idx is NULL when the members are every endpoint of the family with a
 * weight: then the family's range and eps->cum serve. Otherwise @idx lists
 * them, and @cum holds their cumulative weights unless they are uniform.
 * Sizes: at most 8 bytes per endpoint and pool, only for partial pools.
 */
struct kvip_pool {
	u32 *idx;			/* endpoint indices, or NULL: the family */
	u32 *cum;			/* inside idx's allocation, or NULL */
	u32 count;
	u32 total_weight;		/* 0: the pool is empty */
	u8 need;			/* enum kvip_endpoint_flags */
	bool uniform;
};

#define KVIP_STATS_CHUNK_SHIFT	11	/* counters per per-CPU chunk: 2048 */
#define KVIP_STATS_CHUNK	BIT(KVIP_STATS_CHUNK_SHIFT)

/*
 * An immutable endpoint set: IPv4 endpoints first, then IPv6. Per-endpoint
 * connection counters exist only with KVIP_SERVICE_F_ENDPOINT_STATS (they
 * cost 8 bytes per endpoint and CPU); they are per-CPU, in chunks because
 * the per-CPU allocator cannot hand out more than 32 KiB at once.
 */
struct kvip_endpoints {
	struct rcu_head rcu;
	u32 count;
	struct kvip_fam fam[2];		/* [0] IPv4, [1] IPv6 */
	u32 *cum;			/* cumulative weights, or NULL */
	u64 __percpu **conns;		/* NULL, or count / KVIP_STATS_CHUNK */
	struct kvip_pool pool[2][__KVIP_POOL_MAX];	/* [family][kind] */
	struct kvip_ep ep[];
};

struct kvip_svc_stats {
	u64 conns;
	u64 rejects;
	u64 drops;
};

/* An immutable list of prefixes, replaced whole under RCU. */
struct kvip_cidr {
	union nf_inet_addr addr;	/* bits past prefix are zero */
	u8 family;
	u8 prefix;
};

struct kvip_cidrs {
	struct rcu_head rcu;
	u32 count;
	struct kvip_cidr c[];
};

/*
 * Per-netns settings (KVIP_CMD_SET_CONFIG): immutable, replaced whole with
 * rcu_assign_pointer() under kvip_net.lock. NULL lists are the defaults.
 */
struct kvip_config {
	struct rcu_head rcu;
	struct kvip_cidrs *nodeport_addrs;	/* NULL: non-loopback local */
	struct kvip_cidrs *cluster_cidrs;	/* NULL: none */
	bool masquerade_all;
	bool drop_invalid;
};

/*
 * A service's options (KVIP_A_FLAGS, KVIP_A_AFFINITY_TIMEOUT,
 * KVIP_A_SOURCE_RANGES): immutable, replaced whole under RCU so a packet
 * sees one consistent version.
 */
struct kvip_svc_opts {
	struct rcu_head rcu;
	u32 flags;			/* enum kvip_service_flags */
	u32 affinity_timeout;		/* seconds */
	struct kvip_cidrs *source_ranges;	/* NULL: no restriction */
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
	struct kvip_frontend **fe;	/* slots of kn->frontends, lock held */
	struct kvip_staging *staging;
	struct kvip_svc_opts __rcu *opts;	/* never NULL once published */
	u64 id;				/* unique per netns, never reused */
	struct kvip_aff_svc __rcu *aff;	/* affinity.c, NULL until used */
	u16 nfe;
	u8 proto;
	struct rcu_head rcu;
	char name[];
};

struct kvip_net {
	struct mutex lock;		/* serialises all writers and dumps */
	struct kvip_fe_table __rcu *frontends;	/* NULL until the first */
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
	u64 next_id;			/* kvip_service.id */
	struct kvip_config __rcu *config;	/* never NULL */
	struct kvip_affinity_table *affinity;	/* affinity.c */
	struct list_head ct_jobs;	/* conntrack.c, lock held */
	struct work_struct ct_work;	/* conntrack.c: runs ct_jobs */
	bool invalid_hooked;			/* conntrack.c, lock held */
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
/*
 * Create and update take ownership of @opts, also when they fail: it is
 * published with the service, and update frees the old options after a
 * grace period.
 */
struct kvip_service *kvip_service_create(struct kvip_net *kn, const char *name,
					 u8 proto, struct kvip_svc_opts *opts,
					 const struct kvip_frontend *fe,
					 unsigned int nfe);
int kvip_service_update(struct kvip_net *kn, struct kvip_service *svc,
			u8 proto, struct kvip_svc_opts *opts,
			const struct kvip_frontend *fe, unsigned int nfe);
void kvip_svc_opts_free(struct kvip_svc_opts *opts);
/* The options of @svc for a writer (kvip_net.lock held). */
const struct kvip_svc_opts *kvip_svc_opts_locked(struct kvip_net *kn,
						 const struct kvip_service *svc);
void kvip_service_delete(struct kvip_net *kn, struct kvip_service *svc);
void kvip_flush(struct kvip_net *kn);
struct kvip_endpoints *kvip_endpoints_build(const struct kvip_ep *ep,
					    u32 count, bool stats, u32 *dup);
void kvip_endpoints_replace(struct kvip_net *kn, struct kvip_service *svc,
			    struct kvip_endpoints *eps);
void kvip_endpoints_free(struct kvip_endpoints *eps);
/* Only for a set with counters (eps->conns). */
u64 kvip_endpoint_conns(const struct kvip_endpoints *eps, u32 i);
void kvip_service_stats(const struct kvip_service *svc,
			struct kvip_svc_stats *sum);
struct kvip_staging *kvip_stage_begin(struct kvip_net *kn,
				      struct kvip_service *svc, u32 portid);
void kvip_unstage(struct kvip_net *kn, struct kvip_service *svc);
void kvip_bump_gen(struct kvip_net *kn);

/* select.c */
const struct kvip_ep *kvip_select(const struct kvip_endpoints *eps,
				  u8 family, enum kvip_pool_kind kind,
				  u32 *index);
/* Is endpoint @i (of family @family) a member of that pool? */
static inline bool kvip_pool_has(const struct kvip_endpoints *eps, u8 family,
				 enum kvip_pool_kind kind, u32 i)
{
	const struct kvip_pool *p = &eps->pool[kvip_fam_index(family)][kind];

	return p->total_weight && eps->ep[i].weight &&
	       (eps->ep[i].flags & p->need) == p->need;
}

/* Endpoint set building (table.c calls them): pools from eps->ep[]. */
int kvip_pools_build(struct kvip_endpoints *eps);
void kvip_pools_free(struct kvip_endpoints *eps);

/* cidr.c (shared helpers) */
bool kvip_cidrs_match(const struct kvip_cidrs *set, u8 family,
		      const union nf_inet_addr *addr);
extern const struct nla_policy kvip_cidr_policy[KVIP_CIDR_A_MAX + 1];
struct kvip_cidrs *kvip_cidrs_parse(const struct nlattr *list, u32 max,
				    struct netlink_ext_ack *extack);
int kvip_cidrs_put(struct sk_buff *skb, int type, const struct kvip_cidrs *set);
size_t kvip_cidrs_size(const struct kvip_cidrs *set);

/* config.c: per-netns settings */
int kvip_config_init(struct kvip_net *kn);
void kvip_config_destroy(struct kvip_net *kn);
extern const struct nla_policy kvip_config_policy[KVIP_CONFIG_A_MAX + 1];
const struct kvip_config *kvip_config_locked(struct kvip_net *kn);
struct kvip_config *kvip_config_build(const struct nlattr *nest,
				      const struct kvip_config *old,
				      struct netlink_ext_ack *extack);
void kvip_config_swap(struct kvip_net *kn, struct kvip_config *cfg);
/* Free settings that were never published. */
void kvip_config_free(struct kvip_config *cfg);
int kvip_config_put(struct sk_buff *skb, const struct kvip_config *cfg);
size_t kvip_config_size(const struct kvip_config *cfg);

/* affinity.c: client-IP session affinity (datapath + GC) */
int kvip_affinity_init(struct kvip_net *kn);
void kvip_affinity_destroy(struct kvip_net *kn);
/*
 * Forget every entry of @svc (flag turned off, service deleted). Called by
 * table.c under kvip_net.lock: kvip_service_update() when the new options
 * lack KVIP_SERVICE_F_AFFINITY and the old ones had it, and when a service
 * is deleted or flushed (also from pernet exit, before
 * kvip_affinity_destroy()).
 */
void kvip_affinity_forget(struct kvip_net *kn, const struct kvip_service *svc);
/*
 * Replies (netlink.c, kvip_net.lock held): return the number of entries
 * of @svc in use (KVIP_A_AFFINITY_COUNT). Dumps call it with @skb NULL for
 * every service, so that case should be cheap. When @skb is not NULL, also
 * put at most @max of them, each as a nest (type 0) holding
 * KVIP_AFFINITY_A_FAMILY, _CLIENT, _ENDPOINT, _PORT and _EXPIRES, into the
 * list nest the caller opened; an entry that does not fit in @skb is
 * cancelled and the rest skipped (a short list is not an error).
 */
u32 kvip_affinity_fill(struct sk_buff *skb, struct kvip_net *kn,
		       const struct kvip_service *svc, u32 max);
/*
 * Packet path: choose for a new connection of @client, like kvip_select()
 * but keeping the client's endpoint while it is in the pool and the entry
 * has not expired.
 */
const struct kvip_ep *kvip_affinity_select(struct kvip_net *kn,
					   struct kvip_service *svc,
					   u32 timeout_s,
					   const struct kvip_endpoints *eps,
					   u8 family, enum kvip_pool_kind kind,
					   const union nf_inet_addr *client,
					   u32 *index);
/* Drop the service's reference to its counters (kvip_service_free()). */
void kvip_affinity_release(struct kvip_service *svc);

/*
 * conntrack.c: conntrack hygiene after control-plane changes. Under
 * kvip_net.lock, after the change is published (endpoints) or before the
 * service's frontends go (deletion), these queue the deletion of the
 * entries the change made stale; a worker does it once the lock is free.
 * kvip_ct_destroy() (pernet exit, after the table) waits for it.
 */
void kvip_ct_endpoints_changed(struct kvip_net *kn,
			       const struct kvip_service *svc,
			       const struct kvip_endpoints *old,
			       const struct kvip_endpoints *new);
void kvip_ct_service_deleted(struct kvip_net *kn,
			     const struct kvip_service *svc);
void kvip_ct_init(struct kvip_net *kn);
void kvip_ct_destroy(struct kvip_net *kn);
/*
 * Make the ct-INVALID drop hook registered iff the netns is hooked and
 * @drop_invalid: config.c calls it with the new setting before publishing
 * it (and fails the change on error), nat.c when hooks come and go.
 */
int kvip_ct_invalid_sync(struct kvip_net *kn, bool drop_invalid);
/* The same, unconditionally: register iff @on (nat.c). */
int kvip_ct_invalid_set(struct kvip_net *kn, bool on);

/* nat.c */
/* Module init (before the pernet ops) and exit (after them): main.c. */
int kvip_nat_init(void);
void kvip_nat_exit(void);
int kvip_nat_enable(struct net *net);
void kvip_nat_disable(struct net *net);
/*
 * The frontend a packet or tuple to @addr:@port (network order) belongs
 * to, node ports included (RCU read side); *@nodeport tells which.
 */
struct kvip_frontend *kvip_nat_frontend(struct kvip_net *kn,
					const struct kvip_config *cfg,
					u8 family, u8 proto,
					const union nf_inet_addr *addr,
					__be16 port, bool *nodeport);
bool kvip_is_node_address(struct net *net, const struct kvip_config *cfg,
			  u8 family, const union nf_inet_addr *a);

/* netlink.c */
int kvip_genl_init(void);
void kvip_genl_exit(void);

#endif /* _KVIP_CORE_H */
