/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Token parsers for kvipctl. They never print: on failure they return -1
 * and leave a message (without the "kvipctl: " prefix) in parse_error(),
 * always quoting the offending token.
 */
#ifndef KVIPCTL_PARSE_H
#define KVIPCTL_PARSE_H

#include <stdint.h>
#include "kvip.h"

const char *parse_error(void);
int parse_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Quote a token for an error message, shortening very long ones. */
const char *q(const char *token);

int parse_port(const char *s, uint16_t *port);
int parse_u16(const char *s, uint16_t *v);		/* 0..65535, digits */
/* A bare address: IPv4 dotted quad or IPv6 (no brackets). */
int parse_addr(const char *s, uint16_t *family, union kvip_addr *addr);
/* ADDR:PORT or [ADDR6]:PORT. */
int parse_addrport(const char *s, uint16_t *family, union kvip_addr *addr,
		   uint16_t *port);
int parse_proto(const char *s, uint8_t *proto);
int parse_name(const char *s);
/* ADDR:PORT[@WEIGHT][,FLAG]... */
int parse_endpoint(const char *s, struct kvip_endpoint *ep);
/* kind is "clusterip", "external" or "nodeport"; arg is its value. */
int parse_frontend(const char *kind, const char *arg, struct kvip_frontend *fe);
/* Returns KVIP_FRONTEND_* for a frontend keyword, or 0. */
int frontend_kind(const char *word);

/* ADDR/LEN with the host bits zero: "invalid CIDR 'x'". */
int parse_cidr(const char *s, struct kvip_cidr *c);
/* CIDR[,CIDR]...: add() each; it returns -1 when out of memory. */
int parse_cidr_list(const char *s, int (*add)(void *arg,
					      const struct kvip_cidr *c),
		    void *arg);
/* "on" -> 1, "off" -> 0, for option @word. */
int parse_on_off(const char *word, const char *s, int *v);

/* Endpoint flag names, "ready,serving" ("-" when none). */
const char *endpoint_flags_str(uint32_t flags, char *buf, size_t len);

/*
 * Split a batch line into arguments, like `ip -batch`: whitespace separates,
 * '#' at the start of a word begins a comment, "..." and '...' quote,
 * backslash escapes the next character (outside single quotes). Arguments
 * are written into out (at least strlen(line) + 1 bytes); argv pointers into
 * out, at most maxargs. Returns argc, or -1 (parse_error() set).
 */
int split_line(const char *line, size_t len, char *out, char **argv,
	       int maxargs);

#endif
