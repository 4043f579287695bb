// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl service add|replace|del|show
 */
#include <errno.h>

#include "kvipctl.h"
#include "parse.h"

/* ------------------------------------------------------------------ */
/* add / replace                                                      */

static int kw_proto(struct req *r, const char *word, const char *arg);
static int kw_frontend(struct req *r, const char *word, const char *arg);

/*
 * Keywords after NAME, in any order, each taking one argument. Service
 * OPTIONs (external-traffic-policy, affinity, ...) go in this table.
 */
static const struct keyword {
	const char *word;
	const char *metavar;
	int (*parse)(struct req *r, const char *word, const char *arg);
} service_keywords[] = {
	{ "proto",	"PROTO",	kw_proto },
	{ "clusterip",	"ADDR:PORT",	kw_frontend },
	{ "external",	"ADDR:PORT",	kw_frontend },
	{ "nodeport",	"PORT",		kw_frontend },
};

static int kw_proto(struct req *r, const char *word, const char *arg)
{
	/* 0 is no valid protocol: "not given yet". */
	if (r->svc.proto)
		return parse_fail("duplicate '%s'", word);
	return parse_proto(arg, &r->svc.proto);
}

static int kw_frontend(struct req *r, const char *word, const char *arg)
{
	struct kvip_frontend fe, *slot;

	if (parse_frontend(word, arg, &fe) < 0)
		return -1;
	slot = kvip_service_add_frontend(&r->svc);
	if (!slot)
		return parse_fail("out of memory");
	*slot = fe;
	return 0;
}

static int run_new(struct kvip *k, struct req *r)
{
	int err = r->replace ? kvip_service_replace(k, &r->svc) :
				 kvip_service_add(k, &r->svc);

	if (err < 0)
		return kernel_error(r, err, k);
	kernel_warning(r, k);
	return EXIT_OK;
}

static int new_parse(int argc, char **argv, struct req *r)
{
	int i;

	if (argc < 2)
		return parse_fail("missing service NAME");
	if (parse_name(argv[1]) < 0)
		return -1;
	r->name = argv[1];
	memcpy(r->svc.name, argv[1], strlen(argv[1]) + 1);

	for (i = 2; i < argc; i += 2) {
		const struct keyword *kw = NULL;

		for (size_t j = 0; j < sizeof(service_keywords) /
				       sizeof(service_keywords[0]); j++)
			if (!strcmp(argv[i], service_keywords[j].word))
				kw = &service_keywords[j];
		if (!kw)
			return parse_fail("unknown argument '%s'", q(argv[i]));
		if (i + 1 >= argc)
			return parse_fail("missing %s after '%s'",
					  kw->metavar, kw->word);
		if (kw->parse(r, argv[i], argv[i + 1]) < 0)
			return -1;
	}
	if (!r->svc.proto)
		return parse_fail("missing 'proto PROTO' (tcp, udp or sctp)");
	if (!r->svc.n_frontends)
		return parse_fail("at least one FRONTEND is required "
				  "(clusterip ADDR:PORT, external ADDR:PORT "
				  "or nodeport PORT)");
	r->run = run_new;
	r->needs_kernel = true;
	return 0;
}

static int add_parse(int argc, char **argv, struct req *r)
{
	r->label = "service add";
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

static int run_del(struct kvip *k, struct req *r)
{
	int err = kvip_service_del(k, r->name);

	if (err < 0)
		return kernel_error(r, err, k);
	kernel_warning(r, k);
	return EXIT_OK;
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
	r->run = run_del;
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
	show_services(&list, r->json);
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
