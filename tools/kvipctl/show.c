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

static const char *policy(uint32_t flags, uint32_t bit)
{
	return flags & bit ? "local" : "cluster";
}

/* The options as the words of `service add`: "external-traffic-policy ..." */
static void print_options(FILE *f, const struct kvip_service *s,
			  const char *sep)
{
	char cbuf[KVIP_ADDR_STRLEN + 8];
	uint32_t unknown = s->flags & ~(uint32_t)__KVIP_SERVICE_F_ALL;

	fprintf(f, "external-traffic-policy %s%sinternal-traffic-policy %s%s",
		policy(s->flags, KVIP_SERVICE_F_EXTERNAL_LOCAL), sep,
		policy(s->flags, KVIP_SERVICE_F_INTERNAL_LOCAL), sep);
	if (s->flags & KVIP_SERVICE_F_AFFINITY)
		fprintf(f, "affinity clientip timeout %u", s->affinity_timeout);
	else
		fputs("affinity none", f);
	for (size_t i = 0; i < s->n_source_ranges; i++) {
		if (!i)
			fprintf(f, "%ssource-ranges ", sep);
		fprintf(f, "%s%s", i ? "," : "",
			kvip_cidr_str(&s->source_ranges[i], cbuf, sizeof(cbuf)));
	}
	if (s->flags & KVIP_SERVICE_F_MANAGED)
		fprintf(f, "%smanaged", sep);
	if (s->flags & KVIP_SERVICE_F_ENDPOINT_STATS)
		fprintf(f, "%sendpoint-stats", sep);
	if (s->flags & KVIP_SERVICE_F_CONN_STATS)
		fprintf(f, "%sconn-stats", sep);
	if (unknown)
		fprintf(f, "%sflags 0x%x", sep, unknown);
}

static void show_affinity_human(const struct kvip_service *s)
{
	char cbuf[KVIP_ADDR_STRLEN], ebuf[KVIP_ADDRPORT_STRLEN];

	printf("  affinity entries %u\n", s->affinity_count);
	for (size_t i = 0; i < s->n_affinity; i++) {
		const struct kvip_affinity *a = &s->affinity[i];

		printf("  client %s -> %s  expires %u.%03us\n",
		       kvip_addr_str(a->family, &a->client, cbuf, sizeof(cbuf)),
		       kvip_addrport_str(a->family, &a->endpoint, a->port,
					 ebuf, sizeof(ebuf)),
		       a->expires_ms / 1000, a->expires_ms % 1000);
	}
}

static void show_human(const struct kvip_service *s, bool first, bool detail)
{
	char pbuf[8], abuf[KVIP_ADDRPORT_STRLEN], fbuf[64], cbuf[24] = "-";
	int aw = 0, ww = 0, fw = 0;

	if (!first)
		putchar('\n');
	/* "-": not counted (conn-stats off), unlike a count of 0. */
	if (s->stats.has_conns)
		snprintf(cbuf, sizeof(cbuf), "%" PRIu64, s->stats.conns);
	printf("Service %s  proto %s  conns %s  rejects %" PRIu64
	       "  drops %" PRIu64 "\n",
	       s->name, proto_str(s->proto, pbuf, sizeof(pbuf)),
	       cbuf, s->stats.rejects, s->stats.drops);
	fputs("  ", stdout);
	print_options(stdout, s, "  ");
	putchar('\n');
	for (size_t i = 0; i < s->n_frontends; i++)
		show_frontend(&s->frontends[i]);
	if (s->flags & KVIP_SERVICE_F_AFFINITY || s->affinity_count) {
		if (detail)
			show_affinity_human(s);
		else
			printf("  affinity entries %u\n", s->affinity_count);
	}
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

		printf("  -> %-*s  weight %-*u  ",
		       aw, kvip_addrport_str(e->family, &e->addr, e->port,
					     abuf, sizeof(abuf)),
		       ww, e->weight);
		/* Per-endpoint counters only with endpoint-stats. */
		if (e->has_stats)
			printf("%-*s  conns %" PRIu64 "\n", fw,
			       endpoint_flags_str(e->flags, fbuf, sizeof(fbuf)),
			       e->stats.conns);
		else
			printf("%s\n",
			       endpoint_flags_str(e->flags, fbuf, sizeof(fbuf)));
	}
}

/* ------------------------------------------------------------------ */

struct flag_name {
	uint32_t bit;
	const char *name;
};

static const struct flag_name ep_names[] = {
	{ KVIP_ENDPOINT_F_READY,	"ready" },
	{ KVIP_ENDPOINT_F_SERVING,	"serving" },
	{ KVIP_ENDPOINT_F_TERMINATING,	"terminating" },
	{ KVIP_ENDPOINT_F_LOCAL,	"local" },
	{ 0, NULL },
};

static const struct flag_name svc_names[] = {
	{ KVIP_SERVICE_F_EXTERNAL_LOCAL, "external_local" },
	{ KVIP_SERVICE_F_INTERNAL_LOCAL, "internal_local" },
	{ KVIP_SERVICE_F_AFFINITY,	 "affinity" },
	{ KVIP_SERVICE_F_MANAGED,	 "managed" },
	{ KVIP_SERVICE_F_ENDPOINT_STATS, "endpoint_stats" },
	{ KVIP_SERVICE_F_CONN_STATS,	 "conn_stats" },
	{ 0, NULL },
};

static void json_flag_names(struct json *j, uint32_t flags, bool endpoint)
{
	const struct flag_name *names = endpoint ? ep_names : svc_names;
	char buf[16];

	json_begin_array(j);
	for (size_t i = 0; names[i].name; i++) {
		if (flags & names[i].bit) {
			json_string(j, names[i].name);
			flags &= ~names[i].bit;
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

static void json_cidrs(struct json *j, const struct kvip_cidr *c, size_t n)
{
	char buf[KVIP_ADDR_STRLEN + 8];

	json_begin_array(j);
	for (size_t i = 0; i < n; i++)
		json_string(j, kvip_cidr_str(&c[i], buf, sizeof(buf)));
	json_end_array(j);
}

/* The options, as keys of the service object (also in events). */
static void json_options(struct json *j, const struct kvip_service *s)
{
	json_key(j, "flags");
	json_flag_names(j, s->flags, false);
	json_key(j, "external_traffic_policy");
	json_string(j, policy(s->flags, KVIP_SERVICE_F_EXTERNAL_LOCAL));
	json_key(j, "internal_traffic_policy");
	json_string(j, policy(s->flags, KVIP_SERVICE_F_INTERNAL_LOCAL));
	json_key(j, "affinity");
	json_string(j, s->flags & KVIP_SERVICE_F_AFFINITY ? "clientip" : "none");
	if (s->flags & KVIP_SERVICE_F_AFFINITY) {
		json_key(j, "affinity_timeout");
		json_u64(j, s->affinity_timeout);
	}
	json_key(j, "source_ranges");
	json_cidrs(j, s->source_ranges, s->n_source_ranges);
	json_key(j, "managed");
	json_bool(j, s->flags & KVIP_SERVICE_F_MANAGED);
	json_key(j, "endpoint_stats");
	json_bool(j, s->flags & KVIP_SERVICE_F_ENDPOINT_STATS);
	json_key(j, "conn_stats");
	json_bool(j, s->flags & KVIP_SERVICE_F_CONN_STATS);
}

static void json_frontends(struct json *j, const struct kvip_service *s)
{
	char buf[16];

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
}

static void json_affinity(struct json *j, const struct kvip_service *s)
{
	char buf[KVIP_ADDR_STRLEN];

	json_key(j, "affinity_entries");
	json_begin_array(j);
	for (size_t i = 0; i < s->n_affinity; i++) {
		const struct kvip_affinity *a = &s->affinity[i];

		json_begin_object(j);
		json_key(j, "family");
		json_string(j, family_name(a->family));
		json_key(j, "client");
		json_string(j, kvip_addr_str(a->family, &a->client, buf,
					     sizeof(buf)));
		json_key(j, "endpoint");
		json_string(j, kvip_addr_str(a->family, &a->endpoint, buf,
					     sizeof(buf)));
		json_key(j, "port");
		json_u64(j, a->port);
		json_key(j, "expires_ms");
		json_u64(j, a->expires_ms);
		json_end_object(j);
	}
	json_end_array(j);
}

static void show_json(struct json *j, const struct kvip_service *s,
		      bool detail)
{
	char buf[16];

	json_begin_object(j);
	json_key(j, "name");
	json_string(j, s->name);
	json_key(j, "proto");
	json_string(j, proto_str(s->proto, buf, sizeof(buf)));
	json_options(j, s);
	json_frontends(j, s);

	json_key(j, "stats");
	json_begin_object(j);
	if (s->stats.has_conns) {	/* conn-stats */
		json_key(j, "conns");
		json_u64(j, s->stats.conns);
	}
	json_key(j, "rejects");
	json_u64(j, s->stats.rejects);
	json_key(j, "drops");
	json_u64(j, s->stats.drops);
	json_end_object(j);

	json_key(j, "affinity_count");
	json_u64(j, s->affinity_count);
	if (detail)
		json_affinity(j, s);

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
		if (e->has_stats) {
			json_key(j, "stats");
			json_begin_object(j);
			json_key(j, "conns");
			json_u64(j, e->stats.conns);
			json_end_object(j);
		}
		json_end_object(j);
	}
	json_end_array(j);
	json_end_object(j);
}

void show_services(struct kvip_service_list *list, bool json, bool detail)
{
	if (list->n > 1)
		qsort(list->v, list->n, sizeof(list->v[0]), cmp_service);

	if (json) {
		struct json j;

		json_init(&j, stdout);
		json_begin_array(&j);
		for (size_t i = 0; i < list->n; i++)
			show_json(&j, &list->v[i], detail);
		json_end_array(&j);
		putchar('\n');
		return;
	}
	for (size_t i = 0; i < list->n; i++)
		show_human(&list->v[i], i == 0, detail);
}

/* ------------------------------------------------------------------ */
/* config show                                                        */

static void print_cidrs(const struct kvip_cidr *c, size_t n, const char *none)
{
	char buf[KVIP_ADDR_STRLEN + 8];

	if (!n)
		fputs(none, stdout);
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? " " : "",
		       kvip_cidr_str(&c[i], buf, sizeof(buf)));
}

static void config_human(const struct kvip_config *cfg, const char *sep)
{
	fputs("nodeport-addresses ", stdout);
	print_cidrs(cfg->nodeport_addrs, cfg->n_nodeport_addrs, "default");
	printf("%scluster-cidr ", sep);
	print_cidrs(cfg->cluster_cidrs, cfg->n_cluster_cidrs, "none");
	printf("%smasquerade-all %s%sdrop-invalid %s", sep,
	       cfg->masquerade_all > 0 ? "on" : "off", sep,
	       cfg->drop_invalid > 0 ? "on" : "off");
}

static void config_json(struct json *j, const struct kvip_config *cfg)
{
	json_key(j, "nodeport_addresses");
	json_cidrs(j, cfg->nodeport_addrs, cfg->n_nodeport_addrs);
	json_key(j, "cluster_cidrs");
	json_cidrs(j, cfg->cluster_cidrs, cfg->n_cluster_cidrs);
	json_key(j, "masquerade_all");
	json_bool(j, cfg->masquerade_all > 0);
	json_key(j, "drop_invalid");
	json_bool(j, cfg->drop_invalid > 0);
}

void show_config(const struct kvip_config *cfg, bool json)
{
	if (json) {
		struct json j;

		json_init(&j, stdout);
		json_begin_object(&j);
		config_json(&j, cfg);
		json_end_object(&j);
		putchar('\n');
		return;
	}
	config_human(cfg, "\n");
	putchar('\n');
}

/* ------------------------------------------------------------------ */
/* monitor                                                            */

static const char *event_name(uint8_t cmd)
{
	switch (cmd) {
	case KVIP_CMD_NEW_SERVICE:	return "service";
	case KVIP_CMD_DEL_SERVICE:	return "delete";
	case KVIP_CMD_SET_ENDPOINTS:	return "endpoints";
	case KVIP_CMD_FLUSH:		return "flush";
	case KVIP_CMD_SET_CONFIG:	return "config";
	default:			return "unknown";
	}
}

static void event_human(uint8_t cmd, const struct kvip_service *s,
			const struct kvip_config *cfg)
{
	char pbuf[8], tbuf[16], abuf[KVIP_ADDRPORT_STRLEN];

	fputs(event_name(cmd), stdout);
	if (s)
		printf(" %s", s->name);
	switch (cmd) {
	case KVIP_CMD_NEW_SERVICE:
		printf(" proto %s", proto_str(s->proto, pbuf, sizeof(pbuf)));
		for (size_t i = 0; i < s->n_frontends; i++) {
			const struct kvip_frontend *fe = &s->frontends[i];

			printf(" %s ", fe_type_str(fe->type, tbuf, sizeof(tbuf)));
			if (fe->type == KVIP_FRONTEND_NODEPORT || !fe->family)
				printf("%u", fe->port);
			else
				fputs(kvip_addrport_str(fe->family, &fe->addr,
							fe->port, abuf,
							sizeof(abuf)), stdout);
		}
		putchar(' ');
		print_options(stdout, s, " ");
		printf(" endpoints %u", s->endpoint_count);
		break;
	case KVIP_CMD_SET_ENDPOINTS:
		printf(" count %u", s->endpoint_count);
		break;
	case KVIP_CMD_SET_CONFIG:
		putchar(' ');
		config_human(cfg, " ");
		break;
	default:
		break;
	}
	putchar('\n');
}

static void event_json(uint8_t cmd, const struct kvip_service *s,
		       const struct kvip_config *cfg)
{
	struct json j;
	char buf[16];

	json_init(&j, stdout);
	json_begin_object(&j);
	json_key(&j, "event");
	json_string(&j, event_name(cmd));
	if (s) {
		json_key(&j, "name");
		json_string(&j, s->name);
	}
	if (cmd == KVIP_CMD_NEW_SERVICE) {
		json_key(&j, "proto");
		json_string(&j, proto_str(s->proto, buf, sizeof(buf)));
		json_options(&j, s);
		json_frontends(&j, s);
	}
	if (s && (cmd == KVIP_CMD_NEW_SERVICE ||
		  cmd == KVIP_CMD_SET_ENDPOINTS)) {
		json_key(&j, "endpoint_count");
		json_u64(&j, s->endpoint_count);
	}
	if (cfg)
		config_json(&j, cfg);
	json_end_object(&j);
	putchar('\n');
}

int show_event(uint8_t cmd, const struct kvip_service *svc,
	       const struct kvip_config *cfg, bool json)
{
	if (json)
		event_json(cmd, svc, cfg);
	else
		event_human(cmd, svc, cfg);
	return fflush(stdout) == EOF || ferror(stdout) ? -1 : 0;
}
