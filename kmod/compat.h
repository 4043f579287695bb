/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The only place for kernel version shims. kvip needs the NAT lookup hook
 * API (nf_nat_ipv4_register_fn, v5.1+), per-op genetlink policies (v5.10+)
 * and get_random_u32_below() (v6.1.x stable); it is built and tested on
 * Debian's 6.1 kernels.
 */
#ifndef _KVIP_COMPAT_H
#define _KVIP_COMPAT_H

#include <linux/netlink.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/task_work.h>

/* Feature tests, not version numbers: stable and vendor kernels backport. */
#ifndef NL_REQ_ATTR_CHECK
#error "kvip needs Linux 6.1 or newer"
#endif

#ifdef NL_SET_ERR_MSG_FMT
#define kvip_extack_fmt(extack, fmt, args...) \
	NL_SET_ERR_MSG_FMT(extack, fmt, ##args)
#else
/*
 * Before 6.2 there are no formatted extack messages, and the text must outlive the doit
 * callback: netlink_ack() copies it later in the same sendmsg() call. Keep
 * it until the sender returns to user space. Callers set a static message
 * first, which stays when this cannot allocate.
 */
struct kvip_extack_msg {
	struct callback_head work;
	char text[320];
};

static inline void kvip_extack_msg_free(struct callback_head *head)
{
	kfree(container_of(head, struct kvip_extack_msg, work));
}

static inline __printf(2, 3)
void kvip_extack_fmt(struct netlink_ext_ack *extack, const char *fmt, ...)
{
	struct kvip_extack_msg *m;
	va_list ap;

	if (!extack || (current->flags & PF_KTHREAD))
		return;
	m = kmalloc(sizeof(*m), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!m)
		return;
	va_start(ap, fmt);
	vsnprintf(m->text, sizeof(m->text), fmt, ap);
	va_end(ap);
	init_task_work(&m->work, kvip_extack_msg_free);
	if (task_work_add(current, &m->work, TWA_RESUME)) {
		kfree(m);
		return;
	}
	extack->_msg = m->text;
}
#endif

#endif /* _KVIP_COMPAT_H */
