// SPDX-License-Identifier: GPL-2.0
/*
 * Per-netns settings (KVIP_CMD_SET_CONFIG / KVIP_CMD_GET_CONFIG). The
 * settings are one immutable struct kvip_config, replaced whole under
 * kvip_net.lock and read by the packet path under RCU, so a new connection
 * sees all of the old settings or all of the new ones.
 */
#include <linux/slab.h>
#include <net/netlink.h>

#include "kvip_core.h"

const struct nla_policy kvip_config_policy[KVIP_CONFIG_A_MAX + 1] = {
	[KVIP_CONFIG_A_NODEPORT_ADDRS] = NLA_POLICY_NESTED_ARRAY(kvip_cidr_policy),
	[KVIP_CONFIG_A_CLUSTER_CIDRS]  = NLA_POLICY_NESTED_ARRAY(kvip_cidr_policy),
	[KVIP_CONFIG_A_MASQUERADE_ALL] = NLA_POLICY_MAX(NLA_U8, 1),
	[KVIP_CONFIG_A_DROP_INVALID]   = NLA_POLICY_MAX(NLA_U8, 1),
};

void kvip_config_free(struct kvip_config *cfg)
{
	if (!cfg)
		return;
	kfree(cfg->nodeport_addrs);
	kfree(cfg->cluster_cidrs);
	kfree(cfg);
}

static void kvip_config_free_rcu(struct rcu_head *head)
{
	kvip_config_free(container_of(head, struct kvip_config, rcu));
}

int kvip_config_init(struct kvip_net *kn)
{
	struct kvip_config *cfg = kzalloc(sizeof(*cfg), GFP_KERNEL);

	if (!cfg)
		return -ENOMEM;
	RCU_INIT_POINTER(kn->config, cfg);
	return 0;
}

/* Pernet exit; a late packet-path reader may still hold the settings. */
void kvip_config_destroy(struct kvip_net *kn)
{
	struct kvip_config *cfg = rcu_dereference_protected(kn->config, 1);

	RCU_INIT_POINTER(kn->config, NULL);
	if (cfg)
		call_rcu(&cfg->rcu, kvip_config_free_rcu);
}

const struct kvip_config *kvip_config_locked(struct kvip_net *kn)
{
	return rcu_dereference_protected(kn->config,
					 lockdep_is_held(&kn->lock));
}

/* A copy of @list, or NULL for NULL: each config owns its lists. */
static int kvip_cidrs_dup(struct kvip_cidrs **out, const struct kvip_cidrs *list)
{
	*out = NULL;
	if (!list)
		return 0;
	*out = kmemdup(list, struct_size(list, c, list->count), KVIP_GFP);
	return *out ? 0 : -ENOMEM;
}

static int kvip_config_list(struct kvip_cidrs **out, const struct nlattr *attr,
			    const struct kvip_cidrs *old,
			    struct netlink_ext_ack *extack)
{
	struct kvip_cidrs *set;

	if (!attr) {
		if (!kvip_cidrs_dup(out, old))
			return 0;
		NL_SET_ERR_MSG(extack, "out of memory for the settings");
		return -ENOMEM;
	}
	set = kvip_cidrs_parse(attr, KVIP_CIDRS_MAX, extack);
	if (IS_ERR(set))
		return PTR_ERR(set);
	*out = set;
	return 0;
}

/*
 * Build the settings that KVIP_A_CONFIG @nest makes of @old: absent
 * attributes keep their value, an empty list is the default. Returns a new
 * config for kvip_config_swap() or an ERR_PTR with extack set.
 */
struct kvip_config *kvip_config_build(const struct nlattr *nest,
				      const struct kvip_config *old,
				      struct netlink_ext_ack *extack)
{
	struct nlattr *tb[KVIP_CONFIG_A_MAX + 1];
	struct kvip_config *cfg;
	int err;

	err = nla_parse_nested(tb, KVIP_CONFIG_A_MAX, nest, kvip_config_policy,
			       extack);
	if (err)
		return ERR_PTR(err);
	cfg = kzalloc(sizeof(*cfg), KVIP_GFP);
	if (!cfg) {
		NL_SET_ERR_MSG(extack, "out of memory for the settings");
		return ERR_PTR(-ENOMEM);
	}
	err = kvip_config_list(&cfg->nodeport_addrs,
			       tb[KVIP_CONFIG_A_NODEPORT_ADDRS],
			       old->nodeport_addrs, extack);
	if (!err)
		err = kvip_config_list(&cfg->cluster_cidrs,
				       tb[KVIP_CONFIG_A_CLUSTER_CIDRS],
				       old->cluster_cidrs, extack);
	if (err) {
		kvip_config_free(cfg);
		return ERR_PTR(err);
	}
	cfg->masquerade_all = tb[KVIP_CONFIG_A_MASQUERADE_ALL] ?
		nla_get_u8(tb[KVIP_CONFIG_A_MASQUERADE_ALL]) :
		old->masquerade_all;
	cfg->drop_invalid = tb[KVIP_CONFIG_A_DROP_INVALID] ?
		nla_get_u8(tb[KVIP_CONFIG_A_DROP_INVALID]) :
		old->drop_invalid;
	return cfg;
}

/* Publish @cfg; the old settings go after a grace period. */
void kvip_config_swap(struct kvip_net *kn, struct kvip_config *cfg)
{
	struct kvip_config *old;

	old = rcu_replace_pointer(kn->config, cfg, lockdep_is_held(&kn->lock));
	call_rcu(&old->rcu, kvip_config_free_rcu);
}

/* Put @cfg as KVIP_A_CONFIG. */
int kvip_config_put(struct sk_buff *skb, const struct kvip_config *cfg)
{
	struct nlattr *nest = nla_nest_start(skb, KVIP_A_CONFIG);

	if (!nest ||
	    kvip_cidrs_put(skb, KVIP_CONFIG_A_NODEPORT_ADDRS,
			   cfg->nodeport_addrs) ||
	    kvip_cidrs_put(skb, KVIP_CONFIG_A_CLUSTER_CIDRS,
			   cfg->cluster_cidrs) ||
	    nla_put_u8(skb, KVIP_CONFIG_A_MASQUERADE_ALL, cfg->masquerade_all) ||
	    nla_put_u8(skb, KVIP_CONFIG_A_DROP_INVALID, cfg->drop_invalid))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

size_t kvip_config_size(const struct kvip_config *cfg)
{
	return nla_total_size(0) + kvip_cidrs_size(cfg->nodeport_addrs) +
	       kvip_cidrs_size(cfg->cluster_cidrs) +
	       2 * nla_total_size(sizeof(u8));
}
