// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Output of `kvipctl service show`: a table in the spirit of `ipvsadm -Ln`
 * and `kubectl describe`, or JSON (always an array).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "json.h"
#include "kvipctl.h"
#include "parse.h"

static const char *family_name(int family)
{
	return family == AF_INET ? "inet" : family == AF_INET6 ? "inet6" :
	       "unspec";
}

static const char *proto_str(uint8_t proto, char *buf, size_t len)
{
	const char *n = kvip_proto_name(proto);

	if (n)
		return n;
	snprintf(buf, len, "%u", proto);
	return buf;
}

static const char *fe_type_str(uint8_t type, char *buf, size_t len)
{
	const char *n = kvip_frontend_type_name(type);

	if (n)
		return n;
	snprintf(buf, len, "type-%u", type);
	return buf;
}

static int cmp_service(const void *a, const void *b)
{
	return strcmp(((const struct kvip_service *)a)->name,
		      ((const struct kvip_service *)b)->name);
}

/* ------------------------------------------------------------------ */

static void show_frontend(const struct kvip_frontend *fe)
{
	char tbuf[16], abuf[KVIP_ADDRPORT_STRLEN];
	const char *type = fe_type_str(fe->type, tbuf, sizeof(tbuf));

	if (fe->type == KVIP_FRONTEND_NODEPORT || !fe->family)
		printf("  %-9s %u\n", type, fe->port);
	else
		printf("  %-9s %s\n", type,
		       kvip_addrport_str(fe->family, &fe->addr, fe->port,
					 abuf, sizeof(abuf)));
}

static int digits(uint64_t v)
{
	int n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static void show_human(const struct kvip_service *s, bool first)
{
	char pbuf[8], abuf[KVIP_ADDRPORT_STRLEN], fbuf[64];
	int aw = 0, ww = 0, fw = 0;

	if (!first)
		putchar('\n');
	printf("Service %s  proto %s  conns %" PRIu64 "  rejects %" PRIu64,
	       s->name, proto_str(s->proto, pbuf, sizeof(pbuf)),
	       s->stats.conns, s->stats.rejects);
	if (s->flags)
		printf("  flags 0x%x", s->flags);
	putchar('\n');
	for (size_t i = 0; i < s->n_frontends; i++)
		show_frontend(&s->frontends[i]);
	printf("  endpoints %zu\n", s->has_endpoint_count ?
	       (size_t)s->endpoint_count : s->n_endpoints);

	for (size_t i = 0; i < s->n_endpoints; i++) {
		const struct kvip_endpoint *e = &s->endpoints[i];
		int l;

		l = (int)strlen(kvip_addrport_str(e->family, &e->addr, e->port,
						  abuf, sizeof(abuf)));
		if (l > aw)
			aw = l;
		if (digits(e->weight) > ww)
			ww = digits(e->weight);
		l = (int)strlen(endpoint_flags_str(e->flags, fbuf,
						   sizeof(fbuf)));
		if (l > fw)
			fw = l;
	}
	for (size_t i = 0; i < s->n_endpoints; i++) {
		const struct kvip_endpoint *e = &s->endpoints[i];

		printf("  -> %-*s  weight %-*u  %-*s  conns %" PRIu64 "\n",
		       aw, kvip_addrport_str(e->family, &e->addr, e->port,
					     abuf, sizeof(abuf)),
		       ww, e->weight,
		       fw, endpoint_flags_str(e->flags, fbuf, sizeof(fbuf)),
		       e->stats.conns);
	}
}

/* ------------------------------------------------------------------ */

static void json_flag_names(struct json *j, uint32_t flags, bool endpoint)
{
	static const struct { uint32_t bit; const char *name; } names[] = {
		{ KVIP_ENDPOINT_F_READY,	"ready" },
		{ KVIP_ENDPOINT_F_SERVING,	"serving" },
		{ KVIP_ENDPOINT_F_TERMINATING,	"terminating" },
		{ KVIP_ENDPOINT_F_LOCAL,	"local" },
	};
	char buf[16];

	json_begin_array(j);
	if (endpoint) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (flags & names[i].bit) {
				json_string(j, names[i].name);
				flags &= ~names[i].bit;
			}
		}
	}
	/* Bits this kvipctl has no name for. */
	for (int b = 0; b < 32; b++) {
		if (flags & (1U << b)) {
			snprintf(buf, sizeof(buf), "0x%x", 1U << b);
			json_string(j, buf);
		}
	}
	json_end_array(j);
}

static void json_addr(struct json *j, int family, const union kvip_addr *a)
{
	char buf[KVIP_ADDR_STRLEN];

	json_key(j, "family");
	json_string(j, family_name(family));
	json_key(j, "address");
	json_string(j, kvip_addr_str(family, a, buf, sizeof(buf)));
}

static void show_json(struct json *j, const struct kvip_service *s)
{
	char buf[16];

	json_begin_object(j);
	json_key(j, "name");
	json_string(j, s->name);
	json_key(j, "proto");
	json_string(j, proto_str(s->proto, buf, sizeof(buf)));
	json_key(j, "flags");
	json_flag_names(j, s->flags, false);

	json_key(j, "frontends");
	json_begin_array(j);
	for (size_t i = 0; i < s->n_frontends; i++) {
		const struct kvip_frontend *fe = &s->frontends[i];

		json_begin_object(j);
		json_key(j, "type");
		json_string(j, fe_type_str(fe->type, buf, sizeof(buf)));
		if (fe->type != KVIP_FRONTEND_NODEPORT && fe->family)
			json_addr(j, fe->family, &fe->addr);
		json_key(j, "port");
		json_u64(j, fe->port);
		json_end_object(j);
	}
	json_end_array(j);

	json_key(j, "stats");
	json_begin_object(j);
	json_key(j, "conns");
	json_u64(j, s->stats.conns);
	json_key(j, "rejects");
	json_u64(j, s->stats.rejects);
	json_end_object(j);

	json_key(j, "endpoints");
	json_begin_array(j);
	for (size_t i = 0; i < s->n_endpoints; i++) {
		const struct kvip_endpoint *e = &s->endpoints[i];

		json_begin_object(j);
		json_addr(j, e->family, &e->addr);
		json_key(j, "port");
		json_u64(j, e->port);
		json_key(j, "weight");
		json_u64(j, e->weight);
		json_key(j, "flags");
		json_flag_names(j, e->flags, true);
		json_key(j, "stats");
		json_begin_object(j);
		json_key(j, "conns");
		json_u64(j, e->stats.conns);
		json_end_object(j);
		json_end_object(j);
	}
	json_end_array(j);
	json_end_object(j);
}

void show_services(struct kvip_service_list *list, bool json)
{
	if (list->n > 1)
		qsort(list->v, list->n, sizeof(list->v[0]), cmp_service);

	if (json) {
		struct json j;

		json_init(&j, stdout);
		json_begin_array(&j);
		for (size_t i = 0; i < list->n; i++)
			show_json(&j, &list->v[i]);
		json_end_array(&j);
		putchar('\n');
		return;
	}
	for (size_t i = 0; i < list->n; i++)
		show_human(&list->v[i], i == 0);
}
