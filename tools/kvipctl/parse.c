// SPDX-License-Identifier: GPL-2.0 OR MIT
#include "parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static char errbuf[512];

const char *parse_error(void)
{
	return errbuf;
}

int parse_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return -1;
}

#define Q_MAX 64

const char *q(const char *token)
{
	static char bufs[4][Q_MAX + 8];
	static unsigned int next;
	char *b = bufs[next++ % 4];
	size_t i;

	for (i = 0; token[i] && i < Q_MAX; i++)
		b[i] = isprint((unsigned char)token[i]) ? token[i] : '?';
	if (token[i]) {
		i -= 3;
		memcpy(b + i, "...", 3);
		i += 3;
	}
	b[i] = '\0';
	return b;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int parse_u16(const char *s, uint16_t *v)
{
	unsigned long n = 0;

	if (!all_digits(s))
		return -1;
	for (; *s; s++) {
		n = n * 10 + (unsigned long)(*s - '0');
		if (n > 65535)
			return -1;
	}
	*v = (uint16_t)n;
	return 0;
}

int parse_port(const char *s, uint16_t *port)
{
	uint16_t p;

	if (parse_u16(s, &p) < 0 || p == 0)
		return parse_fail("invalid port '%s'", q(s));
	*port = p;
	return 0;
}

int parse_addr(const char *s, uint16_t *family, union kvip_addr *addr)
{
	union kvip_addr a;

	memset(&a, 0, sizeof(a));
	if (strchr(s, ':')) {
		if (inet_pton(AF_INET6, s, &a.in6) != 1)
			return parse_fail("invalid address '%s'", q(s));
		*family = AF_INET6;
	} else {
		if (inet_pton(AF_INET, s, &a.in) != 1)
			return parse_fail("invalid address '%s'", q(s));
		*family = AF_INET;
	}
	*addr = a;
	return 0;
}

#define ADDR_MAX 64	/* longer than any textual IPv6 address */

int parse_addrport(const char *s, uint16_t *family, union kvip_addr *addr,
		   uint16_t *port)
{
	char buf[ADDR_MAX + 1];
	const char *end, *ps;
	size_t len;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end)
			return parse_fail("invalid address '%s'", q(s));
		len = (size_t)(end - s - 1);
		if (len > ADDR_MAX)
			return parse_fail("invalid address '%s'", q(s));
		memcpy(buf, s + 1, len);
		buf[len] = '\0';
		if (!strchr(buf, ':'))	/* [10.0.0.1]:80 */
			return parse_fail("invalid IPv6 address '%s'", q(buf));
		if (end[1] == '\0')
			return parse_fail("missing port in '%s' "
					  "(expected [ADDR]:PORT)", q(s));
		if (end[1] != ':')
			return parse_fail("invalid address '%s' "
					  "(expected [ADDR]:PORT)", q(s));
		ps = end + 2;
	} else {
		end = strrchr(s, ':');
		if (!end)
			return parse_fail("missing port in '%s' "
					  "(expected ADDR:PORT)", q(s));
		if (memchr(s, ':', (size_t)(end - s)))
			return parse_fail("invalid address '%s' (write IPv6 "
					  "addresses as [ADDR]:PORT)", q(s));
		len = (size_t)(end - s);
		if (len > ADDR_MAX)
			return parse_fail("invalid address '%s'", q(s));
		memcpy(buf, s, len);
		buf[len] = '\0';
		ps = end + 1;
	}
	if (parse_addr(buf, family, addr) < 0)
		return -1;
	return parse_port(ps, port);
}

int parse_proto(const char *s, uint8_t *proto)
{
	/* Kubernetes spells them TCP, UDP, SCTP. */
	if (!strcasecmp(s, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcasecmp(s, "udp"))
		*proto = IPPROTO_UDP;
	else if (!strcasecmp(s, "sctp"))
		*proto = IPPROTO_SCTP;
	else
		return parse_fail("unknown protocol '%s' (use tcp, udp or "
				  "sctp)", q(s));
	return 0;
}

int parse_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0)
		return parse_fail("invalid service name ''");
	if (len > KVIP_NAME_MAX)
		return parse_fail("service name too long (max %d bytes)",
				  KVIP_NAME_MAX);
	return 0;
}

static const struct {
	const char *name;
	uint32_t set, clear;
} ep_flags[] = {
	{ "ready",	 KVIP_ENDPOINT_F_READY,       0 },
	{ "serving",	 KVIP_ENDPOINT_F_SERVING,     0 },
	{ "terminating", KVIP_ENDPOINT_F_TERMINATING, 0 },
	{ "local",	 KVIP_ENDPOINT_F_LOCAL,       0 },
	{ "notready",	 0, KVIP_ENDPOINT_F_READY },
	{ "notserving",	 0, KVIP_ENDPOINT_F_SERVING },
};

const char *endpoint_flags_str(uint32_t flags, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(ep_flags) / sizeof(ep_flags[0]); i++) {
		if (!ep_flags[i].set || !(flags & ep_flags[i].set))
			continue;
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
					"%s%s", off ? "," : "",
					ep_flags[i].name);
		flags &= ~ep_flags[i].set;
	}
	if (flags)
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
					"%s0x%x", off ? "," : "", flags);
	if (!off)
		snprintf(buf, len, "-");
	return buf;
}

int parse_endpoint(const char *s, struct kvip_endpoint *ep)
{
	char hostport[ADDR_MAX + 16], wbuf[16];
	const char *comma = strchr(s, ',');
	size_t mlen = comma ? (size_t)(comma - s) : strlen(s);
	const char *at;
	uint16_t w = KVIP_WEIGHT_DEFAULT;

	memset(ep, 0, sizeof(*ep));
	if (mlen >= sizeof(hostport))
		return parse_fail("invalid endpoint '%s'", q(s));
	memcpy(hostport, s, mlen);
	hostport[mlen] = '\0';

	at = strchr(hostport, '@');
	if (at) {
		size_t wlen = strlen(at + 1);

		if (wlen >= sizeof(wbuf) || parse_u16(at + 1, &w) < 0)
			return parse_fail("invalid weight '%s' (0..%d)",
					  q(at + 1), KVIP_WEIGHT_MAX);
		hostport[at - hostport] = '\0';
	}
	if (parse_addrport(hostport, &ep->family, &ep->addr, &ep->port) < 0)
		return -1;
	ep->weight = w;
	ep->flags = KVIP_ENDPOINT_F_DEFAULT;

	while (comma) {
		const char *f = comma + 1;
		size_t flen, i;

		comma = strchr(f, ',');
		flen = comma ? (size_t)(comma - f) : strlen(f);
		for (i = 0; i < sizeof(ep_flags) / sizeof(ep_flags[0]); i++)
			if (strlen(ep_flags[i].name) == flen &&
			    !strncmp(ep_flags[i].name, f, flen))
				break;
		if (i == sizeof(ep_flags) / sizeof(ep_flags[0])) {
			char fbuf[Q_MAX + 1];

			snprintf(fbuf, sizeof(fbuf), "%.*s", (int)flen, f);
			return parse_fail("unknown endpoint flag '%s' (use "
					  "local, notready, notserving or "
					  "terminating)", q(fbuf));
		}
		ep->flags = (ep->flags | ep_flags[i].set) & ~ep_flags[i].clear;
	}
	return 0;
}

int parse_cidr(const char *s, struct kvip_cidr *c)
{
	char buf[ADDR_MAX + 8];
	const char *slash = strchr(s, '/');
	union kvip_addr a;
	uint16_t plen;
	size_t alen;

	if (!kvip_cidr_parse(s, c))
		return 0;
	/* Say why when the address and the length are each fine. */
	alen = slash ? (size_t)(slash - s) : 0;
	if (slash && alen < sizeof(buf) && strlen(slash + 1) <= 3 &&
	    !parse_u16(slash + 1, &plen)) {
		memcpy(buf, s, alen);
		buf[alen] = '\0';
		if ((inet_pton(AF_INET, buf, &a) == 1 && plen <= 32) ||
		    (inet_pton(AF_INET6, buf, &a) == 1 && plen <= 128))
			return parse_fail("invalid CIDR '%s' (bits set past "
					  "the prefix length)", q(s));
	}
	return parse_fail("invalid CIDR '%s'", q(s));
}

int parse_cidr_list(const char *s, int (*add)(void *arg,
					      const struct kvip_cidr *c),
		    void *arg)
{
	char buf[ADDR_MAX + 8];

	if (!*s)
		return parse_fail("invalid CIDR ''");
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		struct kvip_cidr c;

		if (len >= sizeof(buf)) {
			snprintf(buf, sizeof(buf), "%.*s", (int)len, s);
			return parse_fail("invalid CIDR '%s'", q(buf));
		}
		memcpy(buf, s, len);
		buf[len] = '\0';
		if (parse_cidr(buf, &c) < 0)
			return -1;
		if (add(arg, &c) < 0)
			return parse_fail("out of memory");
		if (!comma)
			break;
		s = comma + 1;
		if (!*s)
			return parse_fail("invalid CIDR ''");
	}
	return 0;
}

int parse_on_off(const char *word, const char *s, int *v)
{
	if (!strcmp(s, "on"))
		*v = 1;
	else if (!strcmp(s, "off"))
		*v = 0;
	else
		return parse_fail("invalid value '%s' for '%s' (use on or "
				  "off)", q(s), word);
	return 0;
}

int frontend_kind(const char *word)
{
	if (!strcmp(word, "clusterip"))
		return KVIP_FRONTEND_CLUSTERIP;
	if (!strcmp(word, "external"))
		return KVIP_FRONTEND_EXTERNAL;
	if (!strcmp(word, "nodeport"))
		return KVIP_FRONTEND_NODEPORT;
	return 0;
}

int parse_frontend(const char *kind, const char *arg, struct kvip_frontend *fe)
{
	int type = frontend_kind(kind);

	memset(fe, 0, sizeof(*fe));
	if (!type)
		return parse_fail("unknown frontend type '%s'", q(kind));
	fe->type = (uint8_t)type;
	if (type == KVIP_FRONTEND_NODEPORT)
		return parse_port(arg, &fe->port);
	return parse_addrport(arg, &fe->family, &fe->addr, &fe->port);
}

int split_line(const char *line, size_t len, char *out, char **argv,
	       int maxargs)
{
	const char *p = line, *end = line + len;
	int argc = 0;

	for (;;) {
		char quote = 0;

		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' ||
				   *p == '\n' || *p == '\v' || *p == '\f'))
			p++;
		if (p == end || *p == '#')
			break;
		if (argc == maxargs)
			return parse_fail("too many arguments");
		argv[argc++] = out;
		for (; p < end; p++) {
			char c = *p;

			if (c == '\0')
				return parse_fail("NUL byte in line");
			if (quote) {
				if (c == quote) {
					quote = 0;
					continue;
				}
				if (c == '\\' && quote == '"' && p + 1 < end &&
				    (p[1] == '"' || p[1] == '\\'))
					c = *++p;
				*out++ = c;
				continue;
			}
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
			    c == '\v' || c == '\f')
				break;
			if (c == '"' || c == '\'') {
				quote = c;
				continue;
			}
			if (c == '\\' && p + 1 < end) {
				c = *++p;
				/* Else "a\<NUL>b" would end the argument. */
				if (c == '\0')
					return parse_fail("NUL byte in line");
			}
			*out++ = c;
		}
		if (quote)
			return parse_fail("unterminated %s quote",
					  quote == '"' ? "double" : "single");
		*out++ = '\0';
	}
	argv[argc] = NULL;
	return argc;
}
