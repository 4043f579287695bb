// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl config set|show, kvipctl monitor
 */
#include <errno.h>
#include <stdlib.h>

#include "kvipctl.h"
#include "parse.h"

/* ------------------------------------------------------------------ */
/* config set                                                         */

static int request_config_set(struct kvip *k, struct req *r)
{
	return kvip_config_set(k, &r->cfg);
}

static int add_cidr(struct kvip_cidr **v, size_t *n, const struct kvip_cidr *c)
{
	struct kvip_cidr *nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -1;
	nv[(*n)++] = *c;
	*v = nv;
	return 0;
}

static int add_nodeport(void *arg, const struct kvip_cidr *c)
{
	struct kvip_config *cfg = arg;

	return add_cidr(&cfg->nodeport_addrs, &cfg->n_nodeport_addrs, c);
}

static int add_cluster(void *arg, const struct kvip_cidr *c)
{
	struct kvip_config *cfg = arg;

	return add_cidr(&cfg->cluster_cidrs, &cfg->n_cluster_cidrs, c);
}

static const char *const config_keys[] = {
	"nodeport-addresses", "cluster-cidr", "masquerade-all", "drop-invalid",
};

static bool is_config_key(const char *s)
{
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
		if (!strcmp(s, config_keys[i]))
			return true;
	return false;
}

/*
 * KEY CIDR... | KEY RESET: prefixes until the next key, each word may be
 * CIDR[,CIDR]...; RESET ("default" or "none") alone is the empty list.
 * Returns the words used, or -1.
 */
static int list_arg(struct kvip_config *cfg, int argc, char **argv,
		    const char *reset, bool *has,
		    int (*add)(void *arg, const struct kvip_cidr *c))
{
	int i;

	if (*has)
		return parse_fail("duplicate '%s'", argv[0]);
	*has = true;
	if (argc < 2 || is_config_key(argv[1]))
		return parse_fail("missing CIDR... or '%s' after '%s'", reset,
				  argv[0]);
	if (!strcmp(argv[1], reset)) {
		if (argc > 2 && !is_config_key(argv[2]))
			return parse_fail("'%s' cannot be mixed with CIDRs",
					  reset);
		return 2;
	}
	for (i = 1; i < argc && !is_config_key(argv[i]); i++) {
		if (!strcmp(argv[i], reset))
			return parse_fail("'%s' cannot be mixed with CIDRs",
					  reset);
		if (parse_cidr_list(argv[i], add, cfg) < 0)
			return -1;
	}
	return i;
}

static int set_parse(int argc, char **argv, struct req *r)
{
	struct kvip_config *cfg = &r->cfg;
	int i, n;

	r->label = "config set";
	if (argc < 2)
		return parse_fail("missing setting after 'config set' (%s, "
				  "%s, %s or %s)", config_keys[0],
				  config_keys[1], config_keys[2],
				  config_keys[3]);
	for (i = 1; i < argc; i += n) {
		const char *key = argv[i];
		int *flag = NULL;

		if (!strcmp(key, "nodeport-addresses")) {
			n = list_arg(cfg, argc - i, argv + i, "default",
				     &cfg->has_nodeport_addrs, add_nodeport);
		} else if (!strcmp(key, "cluster-cidr")) {
			n = list_arg(cfg, argc - i, argv + i, "none",
				     &cfg->has_cluster_cidrs, add_cluster);
		} else if (!strcmp(key, "masquerade-all") ||
			   !strcmp(key, "drop-invalid")) {
			flag = key[0] == 'm' ? &cfg->masquerade_all :
					       &cfg->drop_invalid;
			if (*flag >= 0)
				return parse_fail("duplicate '%s'", key);
			if (i + 1 >= argc)
				return parse_fail("missing on|off after '%s'",
						  key);
			n = parse_on_off(key, argv[i + 1], flag) < 0 ? -1 : 2;
		} else {
			return parse_fail("unknown setting '%s'", q(key));
		}
		if (n < 0)
			return -1;
	}
	r->run = run_request;
	r->request = request_config_set;
	r->needs_kernel = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* config show                                                        */

static int check_stdout(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, PROG_NAME ": %swrite error: %s\n", line_prefix,
			strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int run_config_show(struct kvip *k, struct req *r)
{
	struct kvip_config cfg;
	int err;

	err = kvip_config_get(k, &cfg);
	if (err < 0)
		return kernel_error(r, err, k);
	show_config(&cfg, r->json);
	kvip_config_free(&cfg);
	return check_stdout();
}

static bool is_json_opt(const char *a)
{
	return !strcmp(a, "-j") || !strcmp(a, "--json") || !strcmp(a, "-json");
}

/*
 * Arguments of a command that takes nothing but -j (and, given @help, a
 * help option, which shows that help instead).
 */
static int parse_json_only(int argc, char **argv, struct req *r,
			   void (*help)(FILE *))
{
	for (int i = 1; i < argc; i++) {
		if (help && is_help(argv[i])) {
			r->help = help;
			return 0;
		}
		if (is_json_opt(argv[i]))
			r->json = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return parse_fail("unknown option '%s'", q(argv[i]));
		else
			return parse_fail("unknown argument '%s'", q(argv[i]));
	}
	r->needs_kernel = true;
	return 0;
}

static int show_parse(int argc, char **argv, struct req *r)
{
	r->label = "config show";
	r->run = run_config_show;
	return parse_json_only(argc, argv, r, NULL);
}

int config_parse(int argc, char **argv, struct req *r)
{
	static char *show_argv[] = { "show", NULL };

	kvip_config_init(&r->cfg);
	/* `kvipctl config` alone shows, like `kvipctl service`. */
	if (argc < 2)
		return show_parse(1, show_argv, r);
	if (is_help(argv[1]) || (argc > 2 && (!strcmp(argv[2], "-h") ||
					      !strcmp(argv[2], "--help")))) {
		r->help = usage_config;
		return 0;
	}
	if (!strcmp(argv[1], "set"))
		return set_parse(argc - 1, argv + 1, r);
	if (!strcmp(argv[1], "show"))
		return show_parse(argc - 1, argv + 1, r);
	return parse_fail("unknown command 'config %s' (try '" PROG_NAME
			  " config help')", q(argv[1]));
}

/* ------------------------------------------------------------------ */
/* monitor                                                            */

static int monitor_event(uint8_t cmd, const struct kvip_service *svc,
			 const struct kvip_config *cfg, void *arg)
{
	const struct req *r = arg;

	return show_event(cmd, svc, cfg, r->json) ? -EIO : 0;
}

static int run_monitor(struct kvip *k, struct req *r)
{
	int err = kvip_monitor(k, monitor_event, r);

	if (err == -EIO) {		/* stdout failed */
		check_stdout();
		return EXIT_FAIL;
	}
	return kernel_error(r, err, k);
}

int monitor_parse(int argc, char **argv, struct req *r)
{
	r->label = "monitor";
	r->run = run_monitor;
	return parse_json_only(argc, argv, r, usage_monitor);
}
