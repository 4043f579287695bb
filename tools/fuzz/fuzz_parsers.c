// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The token parsers: the input (up to its first NUL, in a buffer of exactly
 * that size) goes through parse_u16, parse_port, parse_addr,
 * parse_addrport, parse_endpoint, parse_frontend (all three kinds, and
 * KIND\nARG), parse_proto, parse_name, parse_cidr and q().
 *
 * Invariants: a failure leaves a printable, non-empty message; a success
 * formats back (kvip_addrport_str, endpoint_flags_str) to text that parses
 * to the same value; ports are 1..65535, a u16 is exactly the decimal
 * value of an all-digit token; q() is printable and at most 64 bytes.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "kvip.h"
#include "parse.h"

static void check_error(const char *what, const char *s)
{
	const char *e = parse_error();
	size_t n = strlen(e);

	FUZZ_CHECK(n > 0, "%s('%s'): no message", what, s);
	FUZZ_CHECK(n < 511, "%s('%s'): message truncated", what, s);
	FUZZ_CHECK(printable_text(e, n) && !strchr(e, '\n'),
		   "%s: unprintable message '%s'", what, e);
}

/* Reference: an all-digit token of value <= 65535. */
static long ref_u16(const char *s)
{
	long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > 65535)
			return -1;
	}
	return v;
}

static bool same_addr(uint16_t fam, const union kvip_addr *a,
		      const union kvip_addr *b)
{
	return !memcmp(a, b, fam == AF_INET6 ? 16 : 4);
}

static void check_numbers(const char *s)
{
	long want = ref_u16(s);
	uint16_t v = 0;
	int r;

	r = parse_u16(s, &v);
	FUZZ_CHECK((r == 0) == (want >= 0) && (r < 0 || v == want),
		   "parse_u16('%s') = %d, %u; want %ld", s, r, v, want);
	r = parse_port(s, &v);
	FUZZ_CHECK((r == 0) == (want > 0) && (r < 0 || v == want),
		   "parse_port('%s') = %d, %u; want %ld", s, r, v, want);
	if (r < 0)
		check_error("parse_port", s);
}

static void check_addr(const char *s)
{
	union kvip_addr a, b;
	uint16_t fam = 0, fam2 = 0, port = 0, port2 = 0;
	char buf[KVIP_ADDRPORT_STRLEN];

	if (parse_addr(s, &fam, &a) < 0) {
		check_error("parse_addr", s);
	} else {
		FUZZ_CHECK(fam == AF_INET || fam == AF_INET6, "family %u",
			   fam);
		kvip_addr_str(fam, &a, buf, sizeof(buf));
		FUZZ_CHECK(parse_addr(buf, &fam2, &b) == 0 && fam2 == fam &&
			   same_addr(fam, &a, &b),
			   "'%s' -> '%s' does not parse back", s, buf);
	}

	if (parse_addrport(s, &fam, &a, &port) < 0) {
		check_error("parse_addrport", s);
		return;
	}
	FUZZ_CHECK((fam == AF_INET || fam == AF_INET6) && port > 0,
		   "'%s': family %u port %u", s, fam, port);
	kvip_addrport_str(fam, &a, port, buf, sizeof(buf));
	FUZZ_CHECK(parse_addrport(buf, &fam2, &b, &port2) == 0 &&
		   fam2 == fam && port2 == port && same_addr(fam, &a, &b),
		   "'%s' -> '%s' does not parse back", s, buf);
}

static void check_endpoint(const char *s)
{
	struct kvip_endpoint ep, ep2;
	char addr[KVIP_ADDRPORT_STRLEN], text[160];

	if (parse_endpoint(s, &ep) < 0) {
		check_error("parse_endpoint", s);
		return;
	}
	FUZZ_CHECK(ep.weight <= KVIP_WEIGHT_MAX && ep.port > 0 &&
		   !(ep.flags & ~(uint32_t)(KVIP_ENDPOINT_F_READY |
					    KVIP_ENDPOINT_F_SERVING |
					    KVIP_ENDPOINT_F_TERMINATING |
					    KVIP_ENDPOINT_F_LOCAL)),
		   "'%s': weight %u port %u flags 0x%x", s, ep.weight,
		   ep.port, ep.flags);
	snprintf(text, sizeof(text), "%s@%u,%s,%s%s%s",
		 kvip_addrport_str(ep.family, &ep.addr, ep.port, addr,
				   sizeof(addr)), ep.weight,
		 ep.flags & KVIP_ENDPOINT_F_READY ? "ready" : "notready",
		 ep.flags & KVIP_ENDPOINT_F_SERVING ? "serving" : "notserving",
		 ep.flags & KVIP_ENDPOINT_F_TERMINATING ? ",terminating" : "",
		 ep.flags & KVIP_ENDPOINT_F_LOCAL ? ",local" : "");
	FUZZ_CHECK(parse_endpoint(text, &ep2) == 0 &&
		   ep2.family == ep.family && ep2.port == ep.port &&
		   ep2.weight == ep.weight && ep2.flags == ep.flags &&
		   same_addr(ep.family, &ep.addr, &ep2.addr),
		   "'%s' -> '%s' does not parse back", s, text);
}

static void check_frontend(const char *kind, const char *s)
{
	struct kvip_frontend fe, fe2;
	char buf[KVIP_ADDRPORT_STRLEN];
	int type = frontend_kind(kind);

	if (parse_frontend(kind, s, &fe) < 0) {
		check_error("parse_frontend", s);
		return;
	}
	FUZZ_CHECK(type && fe.type == type && fe.port > 0,
		   "%s '%s': type %u port %u", kind, s, fe.type, fe.port);
	if (type == KVIP_FRONTEND_NODEPORT) {
		FUZZ_CHECK(fe.family == 0 && ref_u16(s) == fe.port,
			   "nodeport '%s' = %u", s, fe.port);
		return;
	}
	kvip_addrport_str(fe.family, &fe.addr, fe.port, buf, sizeof(buf));
	FUZZ_CHECK(parse_frontend(kind, buf, &fe2) == 0 &&
		   fe2.type == fe.type && fe2.family == fe.family &&
		   fe2.port == fe.port && same_addr(fe.family, &fe.addr,
						    &fe2.addr),
		   "%s '%s' -> '%s' does not parse back", kind, s, buf);
}

static void check_misc(const char *s)
{
	size_t n = strlen(s);
	const char *qs = q(s);
	uint8_t proto = 0;

	FUZZ_CHECK(strlen(qs) <= 64 && printable_text(qs, strlen(qs)) &&
		   !strchr(qs, '\n'), "q('%s') = '%s'", s, qs);
	if (n <= 64) {
		FUZZ_CHECK(strlen(qs) == n, "q('%s') = '%s'", s, qs);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(qs[i] == (isprint((unsigned char)s[i]) ?
					     s[i] : '?'),
				   "q('%s') = '%s'", s, qs);
	}

	if (parse_name(s) < 0) {
		FUZZ_CHECK(n == 0 || n > KVIP_NAME_MAX, "name '%s'", s);
		check_error("parse_name", s);
	} else {
		FUZZ_CHECK(n > 0 && n <= KVIP_NAME_MAX, "name of %zu", n);
	}
	if (parse_proto(s, &proto) < 0)
		check_error("parse_proto", s);
	else
		FUZZ_CHECK(proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
			   proto == IPPROTO_SCTP, "proto %u", proto);
}

/* endpoint_flags_str() into a buffer of exactly len bytes. */
static void check_flags_str(const uint8_t *data, size_t size)
{
	uint32_t flags = 0;
	size_t len;
	char *buf;

	if (size < 5)
		return;
	memcpy(&flags, data, 4);
	len = data[4] % 64 + 1;
	buf = malloc(len);
	if (!buf)
		abort();
	endpoint_flags_str(flags, buf, len);
	FUZZ_CHECK(memchr(buf, '\0', len), "flags 0x%x: not terminated",
		   flags);
	free(buf);
}

/* A CIDR parses iff it formats back to itself modulo zero-padding. */
static void check_cidr(const char *s)
{
	struct kvip_cidr c, c2;
	char buf[KVIP_ADDR_STRLEN + 8];
	unsigned int max;

	if (parse_cidr(s, &c) < 0) {
		check_error("parse_cidr", s);
		FUZZ_CHECK(kvip_cidr_parse(s, &c) < 0,
			   "parse_cidr('%s') failed, kvip_cidr_parse did not", s);
		return;
	}
	max = c.family == AF_INET ? 32 : 128;
	FUZZ_CHECK((c.family == AF_INET || c.family == AF_INET6) &&
		   c.prefix <= max, "parse_cidr('%s'): family %u /%u", s,
		   c.family, c.prefix);
	for (unsigned int i = c.prefix; i < max; i++)
		FUZZ_CHECK(!(c.addr.raw[i / 8] & (0x80 >> (i % 8))),
			   "parse_cidr('%s'): host bit %u set", s, i);
	kvip_cidr_str(&c, buf, sizeof(buf));
	FUZZ_CHECK(kvip_cidr_parse(buf, &c2) == 0 && c2.family == c.family &&
		   c2.prefix == c.prefix &&
		   !memcmp(&c2.addr, &c.addr, sizeof(c.addr)),
		   "parse_cidr('%s') -> '%s' does not parse back", s, buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = strnlen((const char *)data, size);
	char *s = malloc(n + 1), *nl;

	if (!s)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';

	check_numbers(s);
	check_addr(s);
	check_endpoint(s);
	check_frontend("clusterip", s);
	check_frontend("external", s);
	check_frontend("nodeport", s);
	check_misc(s);
	check_cidr(s);
	check_flags_str(data, size);

	/* KIND\nARG */
	nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		check_frontend(s, nl + 1);
	}
	free(s);
	return 0;
}
