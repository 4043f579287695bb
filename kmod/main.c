// SPDX-License-Identifier: GPL-2.0
/*
 * kvip: Kubernetes Service VIPs with the kernel's own conntrack and NAT.
 *
 * Module and per-netns lifetime. A netns gets an empty table when it is
 * created; its NAT hooks and conntrack dependency are only taken while it
 * has services (see table.c).
 */
#include <linux/module.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>

#include "kvip_core.h"

unsigned int kvip_net_id __read_mostly;

/*
 * Per-netns limits: with CAP_NET_ADMIN in its own user namespace a
 * container may configure kvip in its netns; its memory is charged to its
 * memory cgroup, and these bound what any one netns can hold.
 */
unsigned int kvip_max_services __read_mostly = 262144;
module_param_named(max_services, kvip_max_services, uint, 0644);
MODULE_PARM_DESC(max_services, "Maximum services per network namespace");

unsigned int kvip_max_endpoints __read_mostly = 4194304;
module_param_named(max_endpoints, kvip_max_endpoints, uint, 0644);
MODULE_PARM_DESC(max_endpoints,
		 "Maximum endpoints per network namespace, staged ones included");

static int __net_init kvip_net_init(struct net *net)
{
	struct kvip_net *kn = kvip_pernet(net);
	int err;

	mutex_init(&kn->lock);
	INIT_LIST_HEAD(&kn->services);
	INIT_LIST_HEAD(&kn->staged);
	kn->net = net;
	kn->gen = 1;
	kvip_ct_init(kn);
	err = kvip_config_init(kn);
	if (err)
		goto err_mutex;
	err = kvip_affinity_init(kn);
	if (err)
		goto err_config;
	err = kvip_table_init(kn);
	if (err)
		goto err_affinity;
	return 0;

err_affinity:
	kvip_affinity_destroy(kn);
err_config:
	kvip_config_destroy(kn);
err_mutex:
	mutex_destroy(&kn->lock);
	return err;
}

static void __net_exit kvip_net_exit(struct net *net)
{
	struct kvip_net *kn = kvip_pernet(net);

	mutex_lock(&kn->lock);
	kvip_table_destroy(kn);
	mutex_unlock(&kn->lock);
	kvip_ct_destroy(kn);
	kvip_affinity_destroy(kn);
	kvip_config_destroy(kn);
	mutex_destroy(&kn->lock);
}

static struct pernet_operations kvip_net_ops = {
	.init = kvip_net_init,
	.exit = kvip_net_exit,
	.id   = &kvip_net_id,
	.size = sizeof(struct kvip_net),
};

static int __init kvip_init(void)
{
	int err;

	err = kvip_nat_init();
	if (err)
		return err;
	err = register_pernet_subsys(&kvip_net_ops);
	if (err)
		goto err_nat;
	err = kvip_genl_init();
	if (err)
		goto err_pernet;
	pr_info("Kubernetes Service VIPs, genl family %s v%d\n",
		KVIP_GENL_NAME, KVIP_GENL_VERSION);
	return 0;

err_pernet:
	unregister_pernet_subsys(&kvip_net_ops);
err_nat:
	kvip_nat_exit();
	return err;
}

static void __exit kvip_exit(void)
{
	/* No new configuration first, then every netns's table and hooks. */
	kvip_genl_exit();
	unregister_pernet_subsys(&kvip_net_ops);
	kvip_nat_exit();
	/*
	 * Endpoint sets, frontends, services, options and settings still
	 * waiting for RCU.
	 */
	rcu_barrier();
}

module_init(kvip_init);
module_exit(kvip_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Kubernetes Service VIPs with conntrack and NAT");
MODULE_AUTHOR("The kvip authors");
MODULE_ALIAS_GENL_FAMILY(KVIP_GENL_NAME);
