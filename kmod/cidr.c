// SPDX-License-Identifier: GPL-2.0
/*
 * Address prefix lists (KVIP_CIDR_A_*): service source ranges and the
 * per-netns node-port address and cluster CIDR lists. A list is immutable
 * once built; whoever holds it replaces it whole under RCU.
 */
#include <linux/slab.h>
#include <net/ipv6.h>
#include <net/netlink.h>

#include "kvip_core.h"

const struct nla_policy kvip_cidr_policy[KVIP_CIDR_A_MAX + 1] = {
	[KVIP_CIDR_A_FAMILY] = { .type = NLA_U16 },
	[KVIP_CIDR_A_ADDR]   = { .type = NLA_BINARY,
				 .len = sizeof(struct in6_addr) },
	[KVIP_CIDR_A_PREFIX] = NLA_POLICY_MAX(NLA_U8, 128),
};

/* Is @addr inside the prefix (in network order, @bits long) of @base? */
static bool kvip_prefix_eq(const void *base, const void *addr, u8 bits)
{
	const u8 *a = base, *b = addr;
	unsigned int bytes = bits / 8;

	if (memcmp(a, b, bytes))
		return false;
	bits %= 8;
	return !bits || !((a[bytes] ^ b[bytes]) & (0xff00 >> bits));
}

/* Packet path (RCU) or control path: does any prefix of @set hold @addr? */
bool kvip_cidrs_match(const struct kvip_cidrs *set, u8 family,
		      const union nf_inet_addr *addr)
{
	u32 i;

	if (!set)
		return false;
	for (i = 0; i < set->count; i++) {
		const struct kvip_cidr *c = &set->c[i];

		if (c->family == family &&
		    kvip_prefix_eq(&c->addr, addr, c->prefix))
			return true;
	}
	return false;
}

/* Are the bits of @addr past @prefix all zero? */
static bool kvip_host_bits_zero(const union nf_inet_addr *addr,
				unsigned int len, u8 prefix)
{
	union nf_inet_addr zero = {};
	const u8 *a = (const u8 *)addr;
	unsigned int i = prefix / 8;

	if (prefix % 8 && (a[i++] & (0xff >> (prefix % 8))))
		return false;
	return i >= len || !memcmp(a + i, &zero, len - i);
}

static int kvip_cidr_parse(const struct nlattr *nest, struct kvip_cidr *c,
			   struct netlink_ext_ack *extack)
{
	struct nlattr *tb[KVIP_CIDR_A_MAX + 1];
	unsigned int len;
	u16 family;
	int err;

	err = nla_parse_nested(tb, KVIP_CIDR_A_MAX, nest, kvip_cidr_policy,
			       extack);
	if (err)
		return err;
	if (NL_REQ_ATTR_CHECK(extack, nest, tb, KVIP_CIDR_A_FAMILY)) {
		NL_SET_ERR_MSG(extack, "prefix family missing");
		return -EINVAL;
	}
	if (NL_REQ_ATTR_CHECK(extack, nest, tb, KVIP_CIDR_A_ADDR)) {
		NL_SET_ERR_MSG(extack, "prefix address missing");
		return -EINVAL;
	}
	if (NL_REQ_ATTR_CHECK(extack, nest, tb, KVIP_CIDR_A_PREFIX)) {
		NL_SET_ERR_MSG(extack, "prefix length missing");
		return -EINVAL;
	}
	family = nla_get_u16(tb[KVIP_CIDR_A_FAMILY]);
	if (family != AF_INET && family != AF_INET6) {
		NL_SET_ERR_MSG_ATTR(extack, tb[KVIP_CIDR_A_FAMILY],
				    "address family must be AF_INET or AF_INET6");
		return -EINVAL;
	}
	len = family == AF_INET ? 4 : 16;
	if (nla_len(tb[KVIP_CIDR_A_ADDR]) != len) {
		NL_SET_ERR_MSG_ATTR(extack, tb[KVIP_CIDR_A_ADDR],
				    "address length does not match its family");
		return -EINVAL;
	}
	memset(c, 0, sizeof(*c));
	c->family = family;
	c->prefix = nla_get_u8(tb[KVIP_CIDR_A_PREFIX]);
	if (c->prefix > len * 8) {
		NL_SET_ERR_MSG_ATTR(extack, tb[KVIP_CIDR_A_PREFIX],
				    "prefix length too long for the family");
		return -EINVAL;
	}
	nla_memcpy(&c->addr, tb[KVIP_CIDR_A_ADDR], len);
	if (!kvip_host_bits_zero(&c->addr, len, c->prefix)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[KVIP_CIDR_A_ADDR],
				    "address has bits set past the prefix length");
		return -EINVAL;
	}
	return 0;
}

/*
 * Parse a list of KVIP_CIDR_A_* nests into a new immutable list: NULL for
 * an empty list, ERR_PTR(-E2BIG) beyond @max entries. Repeated prefixes are
 * kept (they change nothing).
 */
struct kvip_cidrs *kvip_cidrs_parse(const struct nlattr *list, u32 max,
				    struct netlink_ext_ack *extack)
{
	struct kvip_cidrs *set;
	const struct nlattr *nest;
	u32 n = 0;
	int rem, err;

	nla_for_each_nested(nest, list, rem)
		n++;
	if (!n)
		return NULL;
	if (n > max) {
		NL_SET_ERR_MSG_ATTR(extack, list, "too many prefixes");
		kvip_extack_fmt(extack, "at most %u prefixes in one list", max);
		return ERR_PTR(-E2BIG);
	}
	set = kzalloc(struct_size(set, c, n), KVIP_GFP);
	if (!set) {
		NL_SET_ERR_MSG(extack, "out of memory for the prefix list");
		return ERR_PTR(-ENOMEM);
	}
	nla_for_each_nested(nest, list, rem) {
		err = kvip_cidr_parse(nest, &set->c[set->count], extack);
		if (err) {
			kfree(set);
			return ERR_PTR(err);
		}
		set->count++;
	}
	return set;
}

/* Put @set (may be NULL: empty) as a list attribute of type @type. */
int kvip_cidrs_put(struct sk_buff *skb, int type, const struct kvip_cidrs *set)
{
	struct nlattr *list, *nest;
	u32 i;

	list = nla_nest_start(skb, type);
	if (!list)
		return -EMSGSIZE;
	for (i = 0; set && i < set->count; i++) {
		const struct kvip_cidr *c = &set->c[i];

		nest = nla_nest_start(skb, 0);
		if (!nest ||
		    nla_put_u16(skb, KVIP_CIDR_A_FAMILY, c->family) ||
		    nla_put(skb, KVIP_CIDR_A_ADDR,
			    c->family == AF_INET ? 4 : 16, &c->addr) ||
		    nla_put_u8(skb, KVIP_CIDR_A_PREFIX, c->prefix)) {
			nla_nest_cancel(skb, list);
			return -EMSGSIZE;
		}
		nla_nest_end(skb, nest);
	}
	nla_nest_end(skb, list);
	return 0;
}

size_t kvip_cidrs_size(const struct kvip_cidrs *set)
{
	size_t one = nla_total_size(0) + nla_total_size(sizeof(u16)) +
		     nla_total_size(sizeof(struct in6_addr)) +
		     nla_total_size(sizeof(u8));

	return nla_total_size(0) + (set ? set->count : 0) * one;
}
