// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Host unit tests for kvipctl's parsers and JSON writer. No kernel needed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kvip.h"
#include "parse.h"

static int failures, checks;

#define CHECK(cond, ...) do {						\
	checks++;							\
	if (!(cond)) {							\
		failures++;						\
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

/* parse_fail() message must equal want. */
#define CHECK_ERR(ret, want) do {					\
	int r_ = (ret);							\
	CHECK(r_ < 0, "%s: expected failure", #ret);			\
	if (r_ < 0)							\
		CHECK(!strcmp(parse_error(), want),			\
		      "%s: error '%s', want '%s'", #ret, parse_error(),	\
		      want);						\
} while (0)

static void test_port(void)
{
	uint16_t p = 0;

	CHECK(parse_port("1", &p) == 0 && p == 1, "port 1");
	CHECK(parse_port("80", &p) == 0 && p == 80, "port 80");
	CHECK(parse_port("65535", &p) == 0 && p == 65535, "port 65535");
	CHECK(parse_port("0080", &p) == 0 && p == 80, "port 0080");
	CHECK_ERR(parse_port("0", &p), "invalid port '0'");
	CHECK_ERR(parse_port("65536", &p), "invalid port '65536'");
	CHECK_ERR(parse_port("99999999999999999999", &p),
		  "invalid port '99999999999999999999'");
	CHECK_ERR(parse_port("", &p), "invalid port ''");
	CHECK_ERR(parse_port("-1", &p), "invalid port '-1'");
	CHECK_ERR(parse_port("+80", &p), "invalid port '+80'");
	CHECK_ERR(parse_port("80 ", &p), "invalid port '80 '");
	CHECK_ERR(parse_port("0x50", &p), "invalid port '0x50'");
	CHECK_ERR(parse_port("http", &p), "invalid port 'http'");
}

/*
 * Addresses of 64 bytes (ADDR_MAX) and 65 around parse_addrport()'s copy
 * buffer, so that the sanitized build sees an off-by-one there.
 */
static void test_addr_lengths(void)
{
	char s[80], want[120];
	union kvip_addr a;
	uint16_t fam = 0, port = 0;

	for (int len = 63; len <= 66; len++) {
		for (int br = 0; br <= 1; br++) {
			memset(s, ':', sizeof(s));
			s[0] = br ? '[' : '1';
			strcpy(s + br + len, br ? "]:80" : ":80");
			if (!br)	/* one ':' only: "11...1:80" */
				memset(s, '1', (size_t)len);
			if (len <= 64)
				snprintf(want, sizeof(want),
					 "invalid address '%.*s'", len,
					 s + br);
			else
				snprintf(want, sizeof(want),
					 "invalid address '%.61s...'", s);
			CHECK_ERR(parse_addrport(s, &fam, &a, &port), want);
		}
	}
}

static void test_addr(void)
{
	union kvip_addr a;
	uint16_t fam = 0, port = 0;
	char buf[KVIP_ADDRPORT_STRLEN];

	CHECK(parse_addr("10.96.0.10", &fam, &a) == 0 && fam == AF_INET &&
	      a.in.s_addr == htonl(0x0a60000a), "v4");
	CHECK(parse_addr("fd00::1", &fam, &a) == 0 && fam == AF_INET6 &&
	      a.in6.s6_addr[0] == 0xfd && a.in6.s6_addr[15] == 1, "v6");
	CHECK(parse_addr("::", &fam, &a) == 0 && fam == AF_INET6, "::");
	CHECK(parse_addr("::ffff:1.2.3.4", &fam, &a) == 0 && fam == AF_INET6,
	      "v4-mapped");
	CHECK_ERR(parse_addr("x", &fam, &a), "invalid address 'x'");
	CHECK_ERR(parse_addr("10.0.0", &fam, &a), "invalid address '10.0.0'");
	CHECK_ERR(parse_addr("10.0.0.256", &fam, &a),
		  "invalid address '10.0.0.256'");
	CHECK_ERR(parse_addr("1.2.3.4 ", &fam, &a),
		  "invalid address '1.2.3.4 '");
	CHECK_ERR(parse_addr("fd00:::1", &fam, &a),
		  "invalid address 'fd00:::1'");
	CHECK_ERR(parse_addr("fe80::1%eth0", &fam, &a),
		  "invalid address 'fe80::1%eth0'");
	CHECK_ERR(parse_addr("", &fam, &a), "invalid address ''");

	CHECK(parse_addrport("10.96.0.10:9200", &fam, &a, &port) == 0 &&
	      fam == AF_INET && port == 9200, "v4:port");
	CHECK(!strcmp(kvip_addrport_str(fam, &a, port, buf, sizeof(buf)),
		      "10.96.0.10:9200"), "format v4: %s", buf);
	CHECK(parse_addrport("[fd00::1]:9200", &fam, &a, &port) == 0 &&
	      fam == AF_INET6 && port == 9200, "[v6]:port");
	CHECK(!strcmp(kvip_addrport_str(fam, &a, port, buf, sizeof(buf)),
		      "[fd00::1]:9200"), "format v6: %s", buf);
	CHECK(parse_addrport("[::]:1", &fam, &a, &port) == 0 &&
	      fam == AF_INET6 && port == 1, "[::]:1");
	CHECK(parse_addrport("[2001:db8:0:0:0:0:0:1]:443", &fam, &a,
			     &port) == 0, "long v6");
	CHECK(!strcmp(kvip_addrport_str(fam, &a, port, buf, sizeof(buf)),
		      "[2001:db8::1]:443"), "format canonical: %s", buf);

	CHECK_ERR(parse_addrport("x:80", &fam, &a, &port),
		  "invalid address 'x'");
	CHECK_ERR(parse_addrport(":80", &fam, &a, &port), "invalid address ''");
	CHECK_ERR(parse_addrport("10.0.0.1:0", &fam, &a, &port),
		  "invalid port '0'");
	CHECK_ERR(parse_addrport("10.0.0.1:", &fam, &a, &port),
		  "invalid port ''");
	CHECK_ERR(parse_addrport("10.0.0.1:65536", &fam, &a, &port),
		  "invalid port '65536'");
	CHECK_ERR(parse_addrport("10.0.0.1", &fam, &a, &port),
		  "missing port in '10.0.0.1' (expected ADDR:PORT)");
	CHECK_ERR(parse_addrport("fd00::1:80", &fam, &a, &port),
		  "invalid address 'fd00::1:80' (write IPv6 addresses as "
		  "[ADDR]:PORT)");
	CHECK_ERR(parse_addrport("[fd00::1]", &fam, &a, &port),
		  "missing port in '[fd00::1]' (expected [ADDR]:PORT)");
	CHECK_ERR(parse_addrport("[fd00::1]80", &fam, &a, &port),
		  "invalid address '[fd00::1]80' (expected [ADDR]:PORT)");
	CHECK_ERR(parse_addrport("[fd00::1:80", &fam, &a, &port),
		  "invalid address '[fd00::1:80'");
	CHECK_ERR(parse_addrport("[10.0.0.1]:80", &fam, &a, &port),
		  "invalid IPv6 address '10.0.0.1'");
	CHECK_ERR(parse_addrport("[fd00::g]:80", &fam, &a, &port),
		  "invalid address 'fd00::g'");
	CHECK_ERR(parse_addrport("[fd00::1]:0", &fam, &a, &port),
		  "invalid port '0'");
	CHECK_ERR(parse_addrport("[]:80", &fam, &a, &port),
		  "invalid IPv6 address ''");
	test_addr_lengths();
}

static void test_proto_name(void)
{
	uint8_t p = 0;
	char longname[300];

	CHECK(parse_proto("tcp", &p) == 0 && p == IPPROTO_TCP, "tcp");
	CHECK(parse_proto("UDP", &p) == 0 && p == IPPROTO_UDP, "UDP");
	CHECK(parse_proto("sctp", &p) == 0 && p == IPPROTO_SCTP, "sctp");
	CHECK_ERR(parse_proto("foo", &p),
		  "unknown protocol 'foo' (use tcp, udp or sctp)");
	CHECK_ERR(parse_proto("6", &p),
		  "unknown protocol '6' (use tcp, udp or sctp)");

	CHECK(parse_name("default/elastic:http") == 0, "name");
	memset(longname, 'a', sizeof(longname));
	longname[255] = '\0';
	CHECK(parse_name(longname) == 0, "255-byte name");
	longname[255] = 'a';
	longname[256] = '\0';
	CHECK_ERR(parse_name(longname),
		  "service name too long (max 255 bytes)");
	CHECK_ERR(parse_name(""), "invalid service name ''");
}

static void test_endpoint(void)
{
	struct kvip_endpoint ep;
	char buf[64];

	CHECK(parse_endpoint("10.0.1.1:9200", &ep) == 0 &&
	      ep.family == AF_INET && ep.port == 9200 && ep.weight == 1 &&
	      ep.flags == KVIP_ENDPOINT_F_DEFAULT, "plain endpoint");
	CHECK(parse_endpoint("10.0.1.1:9200@0", &ep) == 0 && ep.weight == 0,
	      "weight 0");
	CHECK(parse_endpoint("10.0.1.1:9200@65535", &ep) == 0 &&
	      ep.weight == 65535, "weight max");
	CHECK(parse_endpoint("[fd00::1]:80@7", &ep) == 0 &&
	      ep.family == AF_INET6 && ep.port == 80 && ep.weight == 7,
	      "v6 weight");
	CHECK(parse_endpoint("[fd00::1]:80,local", &ep) == 0 &&
	      ep.flags == (KVIP_ENDPOINT_F_DEFAULT | KVIP_ENDPOINT_F_LOCAL),
	      "local");
	CHECK(parse_endpoint("1.2.3.4:80@3,notready,terminating", &ep) == 0 &&
	      ep.weight == 3 &&
	      ep.flags == (KVIP_ENDPOINT_F_SERVING |
			   KVIP_ENDPOINT_F_TERMINATING), "notready,terminating");
	CHECK(parse_endpoint("1.2.3.4:80,notready,notserving", &ep) == 0 &&
	      ep.flags == 0, "no flags");
	CHECK(parse_endpoint("1.2.3.4:80,notready,ready", &ep) == 0 &&
	      ep.flags == KVIP_ENDPOINT_F_DEFAULT, "last wins");

	CHECK_ERR(parse_endpoint("1.2.3.4:80@65536", &ep),
		  "invalid weight '65536' (0..65535)");
	CHECK_ERR(parse_endpoint("1.2.3.4:80@", &ep),
		  "invalid weight '' (0..65535)");
	CHECK_ERR(parse_endpoint("1.2.3.4:80@-1", &ep),
		  "invalid weight '-1' (0..65535)");
	CHECK_ERR(parse_endpoint("1.2.3.4:80@1@2", &ep),
		  "invalid weight '1@2' (0..65535)");
	CHECK_ERR(parse_endpoint("1.2.3.4:80,foo", &ep),
		  "unknown endpoint flag 'foo' (use local, notready, "
		  "notserving or terminating)");
	CHECK_ERR(parse_endpoint("1.2.3.4:80,", &ep),
		  "unknown endpoint flag '' (use local, notready, notserving "
		  "or terminating)");
	CHECK_ERR(parse_endpoint("1.2.3.4:80,local,,", &ep),
		  "unknown endpoint flag '' (use local, notready, notserving "
		  "or terminating)");
	CHECK_ERR(parse_endpoint("1.2.3.4", &ep),
		  "missing port in '1.2.3.4' (expected ADDR:PORT)");
	CHECK_ERR(parse_endpoint("1.2.3.4:0", &ep), "invalid port '0'");
	CHECK_ERR(parse_endpoint("bad:80@2,local", &ep),
		  "invalid address 'bad'");

	CHECK(!strcmp(endpoint_flags_str(KVIP_ENDPOINT_F_DEFAULT, buf,
					 sizeof(buf)), "ready,serving"),
	      "flags str %s", buf);
	CHECK(!strcmp(endpoint_flags_str(0, buf, sizeof(buf)), "-"),
	      "flags str none %s", buf);
	CHECK(!strcmp(endpoint_flags_str(0xff, buf, sizeof(buf)),
		      "ready,serving,terminating,local,0xf0"),
	      "flags str all %s", buf);
}

static void test_frontend(void)
{
	struct kvip_frontend fe;

	CHECK(parse_frontend("clusterip", "10.96.0.10:80", &fe) == 0 &&
	      fe.type == KVIP_FRONTEND_CLUSTERIP && fe.family == AF_INET &&
	      fe.port == 80, "clusterip");
	CHECK(parse_frontend("external", "[2001:db8::7]:443", &fe) == 0 &&
	      fe.type == KVIP_FRONTEND_EXTERNAL && fe.family == AF_INET6 &&
	      fe.port == 443, "external v6");
	CHECK(parse_frontend("nodeport", "30080", &fe) == 0 &&
	      fe.type == KVIP_FRONTEND_NODEPORT && fe.family == 0 &&
	      fe.port == 30080, "nodeport");
	CHECK_ERR(parse_frontend("nodeport", "1.2.3.4:80", &fe),
		  "invalid port '1.2.3.4:80'");
	CHECK_ERR(parse_frontend("nodeport", "0", &fe), "invalid port '0'");
	CHECK_ERR(parse_frontend("clusterip", "30080", &fe),
		  "missing port in '30080' (expected ADDR:PORT)");
	CHECK_ERR(parse_frontend("loadbalancer", "1.2.3.4:80", &fe),
		  "unknown frontend type 'loadbalancer'");
	CHECK(frontend_kind("proto") == 0, "kind proto");
}

static void test_quote(void)
{
	char big[200];

	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	CHECK(strlen(q(big)) == 64 && !strcmp(q(big) + 61, "..."),
	      "q truncates: %s", q(big));
	CHECK(!strcmp(q("a\tb\x01"), "a?b?"), "q sanitizes");
}

static int split(const char *line, char ***argvp)
{
	static char out[512];
	static char *argv[32];

	*argvp = argv;
	return split_line(line, strlen(line), out, argv, 31);
}

static void test_split(void)
{
	char **av;
	int n;

	n = split("service add a proto tcp", &av);
	CHECK(n == 5 && !strcmp(av[0], "service") && !strcmp(av[4], "tcp") &&
	      av[5] == NULL, "simple split: %d", n);
	n = split("   \t  ", &av);
	CHECK(n == 0, "blank");
	n = split("# comment", &av);
	CHECK(n == 0, "comment");
	n = split("flush # trailing comment", &av);
	CHECK(n == 1 && !strcmp(av[0], "flush"), "trailing comment");
	n = split("a#b", &av);
	CHECK(n == 1 && !strcmp(av[0], "a#b"), "hash inside word");
	n = split("service del \"my svc\" 'x y' a\\ b \"q\\\"q\"\r", &av);
	CHECK(n == 6 && !strcmp(av[2], "my svc") && !strcmp(av[3], "x y") &&
	      !strcmp(av[4], "a b") && !strcmp(av[5], "q\"q"),
	      "quotes: %d '%s' '%s' '%s' '%s'", n, n > 2 ? av[2] : "",
	      n > 3 ? av[3] : "", n > 4 ? av[4] : "", n > 5 ? av[5] : "");
	n = split("del \"\"", &av);
	CHECK(n == 2 && !strcmp(av[1], ""), "empty quoted arg");
	CHECK_ERR(split("del \"abc", &av), "unterminated double quote");
	CHECK_ERR(split("del 'abc", &av), "unterminated single quote");
	CHECK_ERR(split("a b c d e f g h i j k l m n o p q r s t u v w x y z "
			"0 1 2 3 4 5 6 7 8 9", &av), "too many arguments");
	{
		/* NUL bytes, raw or escaped (found by fuzz_batch). */
		static const char raw[] = "del a\0b", esc[] = "del a\\\0b";
		char out[16], *v[8];

		CHECK_ERR(split_line(raw, sizeof(raw) - 1, out, v, 7),
			  "NUL byte in line");
		CHECK_ERR(split_line(esc, sizeof(esc) - 1, out, v, 7),
			  "NUL byte in line");
	}
}

static char *json_of(void (*fn)(struct json *j, const void *arg),
		     const void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;

	json_init(&j, f);
	fn(&j, arg);
	fclose(f);
	return buf;
}

static void json_str_fn(struct json *j, const void *arg)
{
	json_string(j, arg);
}

static void json_doc_fn(struct json *j, const void *arg)
{
	(void)arg;
	json_begin_array(j);
	json_begin_object(j);
	json_key(j, "name");
	json_string(j, "a");
	json_key(j, "flags");
	json_begin_array(j);
	json_end_array(j);
	json_key(j, "list");
	json_begin_array(j);
	json_u64(j, 1);
	json_u64(j, 18446744073709551615ULL);
	json_begin_object(j);
	json_end_object(j);
	json_end_array(j);
	json_key(j, "t");
	json_bool(j, true);
	json_key(j, "n");
	json_null(j);
	json_end_object(j);
	json_begin_object(j);
	json_end_object(j);
	json_end_array(j);
}

static void check_json_str(const char *in, const char *want)
{
	char *got = json_of(json_str_fn, in);

	CHECK(!strcmp(got, want), "json '%s' -> '%s', want '%s'", in, got,
	      want);
	free(got);
}

static void test_json(void)
{
	char *got;

	check_json_str("plain", "\"plain\"");
	check_json_str("", "\"\"");
	check_json_str("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
	check_json_str("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
	check_json_str("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	check_json_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		       "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	check_json_str("bad\xff", "\"bad\\ufffd\"");
	check_json_str("\xc3", "\"\\ufffd\"");		/* truncated */
	check_json_str("\xc0\xaf", "\"\\ufffd\\ufffd\"");	/* overlong */
	check_json_str("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");	/* surrogate */
	check_json_str("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");

	got = json_of(json_doc_fn, NULL);
	CHECK(!strcmp(got, "[{\"name\":\"a\",\"flags\":[],\"list\":[1,"
		      "18446744073709551615,{}],\"t\":true,\"n\":null},{}]"),
	      "json doc: %s", got);
	free(got);
}

static void test_cidr(void)
{
	struct kvip_cidr c;
	char buf[64];
	static const char *const good[] = {
		"10.0.0.0/8", "0.0.0.0/0", "10.1.2.3/32", "192.168.128.0/17",
		"fd00::/64", "::/0", "::1/128", "2001:db8::/32",
		"fd00:1:2:3:4:5:6:0/112",
	};
	static const char *const bad[] = {
		"", "/", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "fd00::/129",
		"10.0.0.1/8", "fd00::1/64", "10.0.0.0/8/8", "10.0.0.0/+8",
		"10.0.0.0/ 8", "10.0.0.0/08x", "x/8", "10.0.0.0/0008",
		"10.0.0.0/-1", "[fd00::]/64", "10.0.0.0/99999999999999999999",
		"192.168.129.0/17",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK(kvip_cidr_parse(good[i], &c) == 0, "cidr %s", good[i]);
		CHECK(!strcmp(kvip_cidr_str(&c, buf, sizeof(buf)), good[i]),
		      "cidr %s round trip: %s", good[i], buf);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(kvip_cidr_parse(bad[i], &c) == -EINVAL, "bad cidr '%s'",
		      bad[i]);
	CHECK(kvip_cidr_parse("10.0.0.0/8", &c) == 0 && c.family == AF_INET &&
	      c.prefix == 8 && c.addr.raw[0] == 10, "cidr fields");
	CHECK(kvip_cidr_parse("fd00::/16", &c) == 0 && c.family == AF_INET6 &&
	      c.prefix == 16 && c.addr.raw[0] == 0xfd, "cidr6 fields");

	CHECK(parse_cidr("10.0.0.0/8", &c) == 0, "parse_cidr");
	CHECK_ERR(parse_cidr("x", &c), "invalid CIDR 'x'");
	CHECK_ERR(parse_cidr("10.0.0.0/33", &c), "invalid CIDR '10.0.0.0/33'");
	CHECK_ERR(parse_cidr("10.0.0.1/8", &c),
		  "invalid CIDR '10.0.0.1/8' (bits set past the prefix length)");
	CHECK_ERR(parse_cidr("fd00::1/120", &c),
		  "invalid CIDR 'fd00::1/120' (bits set past the prefix length)");
}

static int count_cidr(void *arg, const struct kvip_cidr *c)
{
	(void)c;
	++*(int *)arg;
	return 0;
}

static void test_cidr_list(void)
{
	int n = 0;

	CHECK(parse_cidr_list("10.0.0.0/8,fd00::/8,0.0.0.0/0", count_cidr,
			      &n) == 0 && n == 3, "cidr list: %d", n);
	CHECK_ERR(parse_cidr_list("", count_cidr, &n), "invalid CIDR ''");
	CHECK_ERR(parse_cidr_list("10.0.0.0/8,", count_cidr, &n),
		  "invalid CIDR ''");
	CHECK_ERR(parse_cidr_list("10.0.0.0/8,,fd00::/8", count_cidr, &n),
		  "invalid CIDR ''");
	CHECK_ERR(parse_cidr_list("10.0.0.0/8,bad", count_cidr, &n),
		  "invalid CIDR 'bad'");
}

/* Dump retries: exponential, capped, jittered, bounded in total. */
static void test_backoff(void)
{
	unsigned int total_min = 0, total_max = 0;

	CHECK(kvip__dump_backoff_ms(1, 0) == 0, "attempt 1, rnd 0: %u",
	      kvip__dump_backoff_ms(1, 0));
	CHECK(kvip__dump_backoff_ms(1, 500) == 1, "attempt 1, max jitter");
	CHECK(kvip__dump_backoff_ms(2, 0) == 1, "attempt 2 min");
	CHECK(kvip__dump_backoff_ms(2, 1000) == 2, "attempt 2 max");
	CHECK(kvip__dump_backoff_ms(8, 0) == 64, "attempt 8 min: %u",
	      kvip__dump_backoff_ms(8, 0));
	CHECK(kvip__dump_backoff_ms(8, 64000) == 128, "attempt 8 max");
	CHECK(kvip__dump_backoff_ms(30, 0xffffffff) <= 128, "cap");
	CHECK(kvip__dump_backoff_ms(1000000, 0xffffffff) <= 128, "cap, huge");
	for (unsigned int a = 1; a < 40; a++) {
		unsigned int lo = kvip__dump_backoff_ms(a, 0);
		unsigned int hi = kvip__dump_backoff_ms(a, 0xffffffff);

		CHECK(lo <= hi && hi <= 128, "attempt %u: %u..%u", a, lo, hi);
		for (uint32_t r = 0; r < 300000; r += 977) {
			unsigned int v = kvip__dump_backoff_ms(a, r);

			CHECK(v >= lo / 2 && v <= 128, "attempt %u rnd %u: %u",
			      a, r, v);
		}
		total_min += lo;
		total_max += hi;
	}
	/* 40 attempts, pauses capped: enough to ride out bursts of changes. */
	CHECK(total_min >= 1000, "total minimum pause %u ms", total_min);
	CHECK(total_max <= 5000, "total maximum pause %u ms", total_max);
}

int main(void)
{
	test_port();
	test_addr();
	test_proto_name();
	test_endpoint();
	test_frontend();
	test_quote();
	test_split();
	test_json();
	test_cidr();
	test_cidr_list();
	test_backoff();

	printf("test_parse: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
