// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl service add|replace|del|show
 */
#include <errno.h>

#include "kvipctl.h"
#include "parse.h"

/* ------------------------------------------------------------------ */
/* add / replace                                                      */

/*
 * Keywords after NAME, in any order. Each parser gets the keyword and what
 * follows it, and returns how many words it used (the keyword included),
 * or -1.
 */
typedef int (*kw_fn)(struct req *r, int argc, char **argv);

static int kw_proto(struct req *r, int argc, char **argv);
static int kw_frontend(struct req *r, int argc, char **argv);
static int kw_policy(struct req *r, int argc, char **argv);
static int kw_affinity(struct req *r, int argc, char **argv);
static int kw_source_ranges(struct req *r, int argc, char **argv);
static int kw_managed(struct req *r, int argc, char **argv);
static int kw_endpoint_stats(struct req *r, int argc, char **argv);
static int kw_conn_stats(struct req *r, int argc, char **argv);

static const struct keyword {
	const char *word;
	const char *metavar;	/* of the argument; NULL: none */
	kw_fn parse;
	uint32_t bit;		/* service flag it sets, for duplicates */
} service_keywords[] = {
	{ "proto",	"PROTO",	kw_proto, 0 },
	{ "clusterip",	"ADDR:PORT",	kw_frontend, 0 },
	{ "external",	"ADDR:PORT",	kw_frontend, 0 },
	{ "nodeport",	"PORT",		kw_frontend, 0 },
	{ "external-traffic-policy", "cluster|local", kw_policy,
	  KVIP_SERVICE_F_EXTERNAL_LOCAL },
	{ "internal-traffic-policy", "cluster|local", kw_policy,
	  KVIP_SERVICE_F_INTERNAL_LOCAL },
	{ "affinity",	"none|clientip", kw_affinity, KVIP_SERVICE_F_AFFINITY },
	{ "source-ranges", "CIDR[,CIDR]...", kw_source_ranges, 0 },
	{ "managed",	NULL,		kw_managed, KVIP_SERVICE_F_MANAGED },
	{ "endpoint-stats", NULL,	kw_endpoint_stats,
	  KVIP_SERVICE_F_ENDPOINT_STATS },
	{ "conn-stats",	NULL,		kw_conn_stats, KVIP_SERVICE_F_CONN_STATS },
};

#define N_KEYWORDS (sizeof(service_keywords) / sizeof(service_keywords[0]))

static const struct keyword *find_keyword(const char *word)
{
	for (size_t j = 0; j < N_KEYWORDS; j++)
		if (!strcmp(word, service_keywords[j].word))
			return &service_keywords[j];
	return NULL;
}

static int kw_proto(struct req *r, int argc, char **argv)
{
	(void)argc;
	/* 0 is no valid protocol: "not given yet". */
	if (r->svc.proto)
		return parse_fail("duplicate '%s'", argv[0]);
	return parse_proto(argv[1], &r->svc.proto) < 0 ? -1 : 2;
}

static int kw_frontend(struct req *r, int argc, char **argv)
{
	struct kvip_frontend fe, *slot;

	(void)argc;
	if (parse_frontend(argv[0], argv[1], &fe) < 0)
		return -1;
	slot = kvip_service_add_frontend(&r->svc);
	if (!slot)
		return parse_fail("out of memory");
	*slot = fe;
	return 2;
}

static int kw_policy(struct req *r, int argc, char **argv)
{
	const struct keyword *kw = find_keyword(argv[0]);

	(void)argc;
	if (!strcmp(argv[1], "local"))
		r->svc.flags |= kw->bit;
	else if (strcmp(argv[1], "cluster"))
		return parse_fail("invalid %s '%s' (use cluster or local)",
				  argv[0], q(argv[1]));
	return 2;
}

static int kw_affinity(struct req *r, int argc, char **argv)
{
	uint32_t t = 0;

	if (!strcmp(argv[1], "clientip"))
		r->svc.flags |= KVIP_SERVICE_F_AFFINITY;
	else if (strcmp(argv[1], "none"))
		return parse_fail("invalid affinity '%s' (use none or "
				  "clientip)", q(argv[1]));
	if (argc < 3 || strcmp(argv[2], "timeout"))
		return 2;
	if (!(r->svc.flags & KVIP_SERVICE_F_AFFINITY))
		return parse_fail("'timeout' needs 'affinity clientip'");
	if (argc < 4)
		return parse_fail("missing SECONDS after 'timeout'");
	for (const char *p = argv[3]; *p; p++) {
		if (*p < '0' || *p > '9' || t > KVIP_AFFINITY_TIMEOUT_MAX) {
			t = 0;
			break;
		}
		t = t * 10 + (uint32_t)(*p - '0');
	}
	if (!t || t > KVIP_AFFINITY_TIMEOUT_MAX)
		return parse_fail("invalid affinity timeout '%s' (1..%d "
				  "seconds)", q(argv[3]),
				  KVIP_AFFINITY_TIMEOUT_MAX);
	r->svc.affinity_timeout = t;
	return 4;
}

static int add_source_range(void *arg, const struct kvip_cidr *c)
{
	struct kvip_cidr *slot = kvip_service_add_source_range(arg);

	if (!slot)
		return -1;
	*slot = *c;
	return 0;
}

static int kw_source_ranges(struct req *r, int argc, char **argv)
{
	(void)argc;
	return parse_cidr_list(argv[1], add_source_range, &r->svc) < 0 ?
	       -1 : 2;
}

static int kw_managed(struct req *r, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	r->svc.flags |= KVIP_SERVICE_F_MANAGED;
	return 1;
}

static int kw_endpoint_stats(struct req *r, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	r->svc.flags |= KVIP_SERVICE_F_ENDPOINT_STATS;
	return 1;
}

static int kw_conn_stats(struct req *r, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	r->svc.flags |= KVIP_SERVICE_F_CONN_STATS;
	return 1;
}

static int request_new(struct kvip *k, struct req *r)
{
	return r->replace ? kvip_service_replace(k, &r->svc) :
			    kvip_service_add(k, &r->svc);
}

static int new_parse(int argc, char **argv, struct req *r)
{
	uint32_t seen = 0;
	int i, n;

	if (argc < 2)
		return parse_fail("missing service NAME");
	if (parse_name(argv[1]) < 0)
		return -1;
	r->name = argv[1];
	memcpy(r->svc.name, argv[1], strlen(argv[1]) + 1);

	for (i = 2; i < argc; i += n) {
		const struct keyword *kw = find_keyword(argv[i]);

		if (!kw)
			return parse_fail("unknown argument '%s'", q(argv[i]));
		/* Options may be given once; frontends many times. */
		if (kw->parse != kw_frontend && kw->parse != kw_proto) {
			if (seen & (1U << (kw - service_keywords)))
				return parse_fail("duplicate '%s'", kw->word);
			seen |= 1U << (kw - service_keywords);
		}
		if (kw->metavar && i + 1 >= argc)
			return parse_fail("missing %s after '%s'",
					  kw->metavar, kw->word);
		n = kw->parse(r, argc - i, argv + i);
		if (n < 0)
			return -1;
	}
	if (!r->svc.proto)
		return parse_fail("missing 'proto PROTO' (tcp, udp or sctp)");
	if (!r->svc.n_frontends)
		return parse_fail("at least one FRONTEND is required "
				  "(clusterip ADDR:PORT, external ADDR:PORT "
				  "or nodeport PORT)");
	r->run = run_request;
	r->request = request_new;
	r->needs_kernel = true;
	return 0;
}

static int add_parse(int argc, char **argv, struct req *r)
{
	r->label = "service add";
	r->kind = REQ_SERVICE_ADD;
	return new_parse(argc, argv, r);
}

static int replace_parse(int argc, char **argv, struct req *r)
{
	r->label = "service replace";
	r->replace = true;
	return new_parse(argc, argv, r);
}

/* ------------------------------------------------------------------ */
/* del                                                                */

static int request_del(struct kvip *k, struct req *r)
{
	return kvip_service_del(k, r->name);
}

static int del_parse(int argc, char **argv, struct req *r)
{
	r->label = "service del";
	if (argc < 2)
		return parse_fail("missing service NAME");
	if (parse_name(argv[1]) < 0)
		return -1;
	if (argc > 2)
		return parse_fail("unknown argument '%s'", q(argv[2]));
	r->name = argv[1];
	r->run = run_request;
	r->request = request_del;
	r->needs_kernel = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* show                                                               */

static int run_show(struct kvip *k, struct req *r)
{
	struct kvip_service_list list;
	int err;

	err = kvip_service_list(k, r->name, &list);
	if (err < 0)
		return kernel_error(r, err, k);
	show_services(&list, r->json, r->name != NULL);
	kvip_service_list_free(&list);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, PROG_NAME ": %swrite error: %s\n", line_prefix,
			strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int show_parse(int argc, char **argv, struct req *r)
{
	r->label = "service show";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-j") || !strcmp(a, "--json") ||
		    !strcmp(a, "-json")) {
			r->json = true;
		} else if (a[0] == '-' && a[1]) {
			return parse_fail("unknown option '%s'", q(a));
		} else if (!r->name) {
			if (parse_name(a) < 0)
				return -1;
			r->name = a;
		} else {
			return parse_fail("unknown argument '%s'", q(a));
		}
	}
	r->run = run_show;
	r->needs_kernel = true;
	return 0;
}

/* ------------------------------------------------------------------ */

static const struct {
	const char *name;
	int (*parse)(int argc, char **argv, struct req *r);
} service_cmds[] = {
	{ "add",	add_parse },
	{ "replace",	replace_parse },
	{ "del",	del_parse },
	{ "delete",	del_parse },
	{ "show",	show_parse },
	{ "list",	show_parse },
};

int service_parse(int argc, char **argv, struct req *r)
{
	static char *show_argv[] = { "show", NULL };

	/* `kvipctl service` alone lists, like `ip link`. */
	if (argc < 2)
		return show_parse(1, show_argv, r);
	if (is_help(argv[1]) || (argc > 2 && (!strcmp(argv[2], "-h") ||
					      !strcmp(argv[2], "--help")))) {
		r->help = usage_service;
		return 0;
	}
	for (size_t i = 0; i < sizeof(service_cmds) / sizeof(service_cmds[0]);
	     i++)
		if (!strcmp(argv[1], service_cmds[i].name))
			return service_cmds[i].parse(argc - 1, argv + 1, r);
	return parse_fail("unknown command 'service %s' (try '" PROG_NAME
			  " service help')", q(argv[1]));
}
