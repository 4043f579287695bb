// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl: configure kvip, Kubernetes Service VIPs in the Linux kernel.
 *
 * Every argument is parsed before the netlink session is opened; a batch is
 * validated completely before its first line is sent. One session per
 * invocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvipctl.h"
#include "parse.h"
#include "version.h"

bool opt_json;
static bool opt_check;
char line_prefix[32];

/* ------------------------------------------------------------------ */
/* Help                                                               */

static const char usage_synopsis[] =
"Usage: " PROG_NAME " [OPTIONS] COMMAND [ARGUMENTS]\n"
"       " PROG_NAME " [OPTIONS] -batch FILE\n"
"       " PROG_NAME " [-n NETNS] sync [SYNC-OPTION...]\n";

static const char usage_service_text[] =
"  " PROG_NAME " service add NAME proto PROTO FRONTEND... [OPTION...]\n"
"        Create a service. Fails with \"File exists\" if NAME exists or a\n"
"        frontend belongs to another service. The endpoint set is empty.\n"
"  " PROG_NAME " service replace NAME proto PROTO FRONTEND... [OPTION...]\n"
"        Create the service, or atomically replace its protocol, frontends\n"
"        and options (an OPTION not given goes back to its default). The\n"
"        endpoint set of an existing service is kept.\n"
"  " PROG_NAME " service del NAME\n"
"        Delete a service and its endpoints.\n"
"  " PROG_NAME " service show [NAME] [-j|--json]\n"
"        Show all services (sorted by name) or only NAME: options,\n"
"        frontends, endpoints with their flags, counters (conns, rejects,\n"
"        drops) and the number of session affinity entries; for NAME also\n"
"        the entries. `" PROG_NAME " service` alone is `service show`.\n";

static const char usage_config_text[] =
"  " PROG_NAME " config set SETTING...\n"
"        Change settings of the network namespace, all at once; those not\n"
"        named keep their value. SETTING is one of\n"
"          nodeport-addresses CIDR...|default\n"
"                 node ports answer on the node's addresses in these\n"
"                 prefixes; default: every address but loopback ones\n"
"          cluster-cidr CIDR...|none\n"
"                 pod addresses: cluster IP traffic from elsewhere is\n"
"                 masqueraded; none (the default): nothing is\n"
"          masquerade-all on|off\n"
"                 masquerade every translated connection (default off)\n"
"          drop-invalid on|off\n"
"                 drop packets of service flows that conntrack finds\n"
"                 INVALID (default off)\n"
"  " PROG_NAME " config show [-j|--json]\n"
"        Show the settings. `" PROG_NAME " config` alone is `config show`.\n";

static const char usage_monitor_text[] =
"  " PROG_NAME " monitor [-j|--json]\n"
"        Print every change of the service table and settings as it\n"
"        happens, one line each (a JSON object per line with -j):\n"
"          service NAME proto PROTO FRONTEND... OPTION... endpoints N\n"
"          endpoints NAME count N\n"
"          delete NAME\n"
"          flush\n"
"          config SETTING...\n"
"        Runs until interrupted; needs no privilege.\n";

static const char usage_endpoints_text[] =
"  " PROG_NAME " endpoints set NAME [ENDPOINT...]\n"
"        Atomically replace the endpoint set of service NAME. No ENDPOINT\n"
"        sets the empty set. Large sets are sent in several messages and\n"
"        committed at once.\n";

static const char usage_syntax[] =
"Syntax:\n"
"  NAME      service name, 1 to 255 bytes, e.g. default/elastic:http\n"
"  PROTO     tcp | udp | sctp\n"
"  FRONTEND  clusterip ADDR:PORT | external ADDR:PORT | nodeport PORT\n"
"            clusterip: the service's cluster IP; external: an external IP\n"
"            or load balancer ingress IP; nodeport: PORT on every local\n"
"            address of the node.\n"
"  OPTION    external-traffic-policy cluster|local\n"
"                 local: external and node-port frontends use only local\n"
"                 endpoints, keep the client's address, and drop new\n"
"                 connections when there is none (default cluster)\n"
"            internal-traffic-policy cluster|local\n"
"                 the same for cluster IP frontends (default cluster)\n"
"            affinity none|clientip [timeout SECONDS]\n"
"                 clientip: a client address keeps its endpoint until\n"
"                 SECONDS (1 to 86400, default 10800) pass without a new\n"
"                 connection (default none)\n"
"            source-ranges CIDR[,CIDR]...\n"
"                 only these clients may use the external and node-port\n"
"                 frontends (at most 64; default: any)\n"
"            managed\n"
"                 owned by a controller (kvipctl sync); only stored\n"
"            conn-stats\n"
"                 count the service's new connections (conns); off by\n"
"                 default: with many services it costs a cache miss per\n"
"                 new connection. Rejects and drops are always counted\n"
"            endpoint-stats\n"
"                 count new connections per endpoint (8 bytes per\n"
"                 endpoint and CPU)\n"
"  CIDR      ADDR/LEN, the address's bits past LEN zero: 10.0.0.0/8,\n"
"            fd00::/64.\n"
"  ENDPOINT  ADDR:PORT[@WEIGHT][,FLAG]...\n"
"  WEIGHT    0 to 65535, default 1; 0 receives no new connections.\n"
"  FLAG      local        the endpoint runs on this node\n"
"            notready     not ready (default: ready)\n"
"            notserving   not serving (default: serving)\n"
"            terminating  the endpoint is terminating\n"
"  ADDR:PORT IPv4 as 10.96.0.10:80, IPv6 in brackets as [fd00::10]:80.\n"
"  PORT      1 to 65535.\n";

static const char usage_options[] =
"Options:\n"
"  -n, -netns, --netns NETNS\n"
"                  work in network namespace NETNS: a name under\n"
"                  /run/netns (as `ip netns add` creates) or a path such as\n"
"                  /proc/PID/ns/net; like `ip -n`, and cheaper than\n"
"                  `ip netns exec` (needs CAP_SYS_ADMIN). Before `sync`, it\n"
"                  must be the only option.\n"
"  -j, --json      print `service show` as JSON (an array of objects),\n"
"                  `config show` as an object, `monitor` as JSON lines\n"
"  -batch FILE     read commands from FILE ('-' for stdin), one per line,\n"
"                  without the leading \"" PROG_NAME "\". Blank lines and\n"
"                  lines starting with '#' are ignored; \"...\" and '...'\n"
"                  quote. The whole file is checked first: if any line is\n"
"                  invalid nothing is sent. Then lines run in order over one\n"
"                  netlink session, stopping at the first failure: no line\n"
"                  after it is sent. \"service add NAME\" and a following\n"
"                  \"endpoints set NAME\" go as one request (the service is\n"
"                  created with its endpoints); if it fails, the two lines\n"
"                  run again one by one, so the outcome and the messages are\n"
"                  those of the two lines.\n"
"  -force          with -batch: report failures and continue; exit status\n"
"                  is 1 if any line failed. Up to 64 changes are sent per\n"
"                  system call (pipelined; add and set are not merged);\n"
"                  each failure is still reported under its own line, in\n"
"                  order, and show lines see every line before them.\n"
"  -c, --check     only parse and check the commands; do not talk to the\n"
"                  kernel\n"
"  -h, --help      show this help\n"
"  -V, --version   show the version\n";

static const char usage_examples[] =
"Examples:\n"
"  " PROG_NAME " service add default/elastic proto tcp \\\n"
"          clusterip 10.96.0.10:9200 clusterip [fd00:10:96::a]:9200 \\\n"
"          nodeport 30080\n"
"  " PROG_NAME " endpoints set default/elastic 10.0.1.1:9200 \\\n"
"          10.0.2.1:9200@2,local [fd00::1]:9200,terminating,notready\n"
"  " PROG_NAME " service replace default/elastic proto tcp \\\n"
"          clusterip 10.96.0.10:9200 external 203.0.113.7:443\n"
"  " PROG_NAME " service show default/elastic -j\n"
"  " PROG_NAME " service replace default/web proto tcp nodeport 30443 \\\n"
"          external-traffic-policy local affinity clientip timeout 600 \\\n"
"          source-ranges 203.0.113.0/24,2001:db8::/32\n"
"  " PROG_NAME " config set cluster-cidr 10.244.0.0/16 fd00:244::/56 \\\n"
"          nodeport-addresses 192.168.1.0/24 masquerade-all off\n"
"  " PROG_NAME " monitor -j\n"
"  " PROG_NAME " endpoints set default/elastic      # empty set\n"
"  " PROG_NAME " service del default/elastic\n"
"  printf 'service add a proto udp clusterip 10.96.0.53:53\\n' | "
PROG_NAME " -batch -\n";

static const char usage_exit[] =
"Exit status:\n"
"  0  success\n"
"  1  the kernel rejected a request, or another runtime error (for\n"
"     example the kvip module is not loaded)\n"
"  2  invalid command line or batch input\n"
"\n"
"Errors name the offending argument, and the kernel's explanation when it\n"
"gives one: \"" PROG_NAME ": COMMAND NAME: ERROR[: DETAIL]\". Changes need\n"
"CAP_NET_ADMIN; `service show`, `config show` and `monitor` do not.\n"
"Everything is per network namespace.\n";

void usage_main(FILE *f)
{
	fputs(usage_synopsis, f);
	fputs("\nConfigure kvip, Kubernetes Service virtual IPs implemented by "
	      "the kvip kernel\nmodule, in the current network namespace.\n"
	      "\nCommands:\n", f);
	fputs(usage_service_text, f);
	fputs(usage_endpoints_text, f);
	fputs(usage_config_text, f);
	fputs(usage_monitor_text, f);
	fputs("  " PROG_NAME " flush\n"
	      "        Delete every service of the network namespace.\n"
	      "  " PROG_NAME " [-n NETNS] sync [OPTION...]\n"
	      "        Program the table from the Kubernetes API (see sync --help).\n"
	      "  " PROG_NAME " help [service|endpoints|config|monitor]\n"
	      "        Show this help, or the help of one command.\n\n", f);
	fputs(usage_syntax, f);
	fputc('\n', f);
	fputs(usage_options, f);
	fputc('\n', f);
	fputs(usage_examples, f);
	fputc('\n', f);
	fputs(usage_exit, f);
}

void usage_service(FILE *f)
{
	fputs("Usage:\n", f);
	fputs(usage_service_text, f);
	fputc('\n', f);
	fputs(usage_syntax, f);
}

void usage_config(FILE *f)
{
	fputs("Usage:\n", f);
	fputs(usage_config_text, f);
	fputc('\n', f);
	fputs(usage_syntax, f);
}

void usage_monitor(FILE *f)
{
	fputs("Usage:\n", f);
	fputs(usage_monitor_text, f);
}

void usage_endpoints(FILE *f)
{
	fputs("Usage:\n", f);
	fputs(usage_endpoints_text, f);
	fputc('\n', f);
	fputs(usage_syntax, f);
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */

static void print_label(const char *label, const char *name)
{
	fprintf(stderr, PROG_NAME ": %s%s", line_prefix, label);
	if (name)
		fprintf(stderr, " %s", name);
}

static int report_error(const char *label, const char *name, int err,
			const struct kvip *k)
{
	const char *detail = kvip_errmsg(k);

	fflush(stdout);
	print_label(label, name);
	fprintf(stderr, ": %s", strerror(-err));
	if (*detail)
		fprintf(stderr, ": %s", detail);
	if (err == -EPERM)
		fputs(" (you need CAP_NET_ADMIN)", stderr);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int kernel_error(const struct req *r, int err, const struct kvip *k)
{
	return report_error(r->label, r->name, err, k);
}

static void report_warning(const char *label, const char *name,
			   const struct kvip *k)
{
	const char *detail = kvip_errmsg(k);

	if (!*detail)
		return;
	fflush(stdout);
	print_label(label, name);
	fprintf(stderr, ": warning: %s\n", detail);
}

void kernel_warning(const struct req *r, const struct kvip *k)
{
	report_warning(r->label, r->name, k);
}

int run_request(struct kvip *k, struct req *r)
{
	int err = r->request(k, r);

	if (err < 0)
		return kernel_error(r, err, k);
	kernel_warning(r, k);
	return EXIT_OK;
}

static int usage_error(void)
{
	fflush(stdout);
	fprintf(stderr, PROG_NAME ": %s%s\n", line_prefix, parse_error());
	return EXIT_USAGE;
}

/* ------------------------------------------------------------------ */
/* Commands                                                           */

static int request_flush(struct kvip *k, struct req *r)
{
	(void)r;
	return kvip_flush(k);
}

static int flush_parse(int argc, char **argv, struct req *r)
{
	r->label = "flush";
	if (argc > 1)
		return parse_fail("unknown argument '%s'", q(argv[1]));
	r->run = run_request;
	r->request = request_flush;
	r->needs_kernel = true;
	return 0;
}

static int help_parse(int argc, char **argv, struct req *r)
{
	if (argc > 2)
		return parse_fail("unknown argument '%s'", q(argv[2]));
	if (argc < 2)
		r->help = usage_main;
	else if (!strcmp(argv[1], "service"))
		r->help = usage_service;
	else if (!strcmp(argv[1], "endpoints"))
		r->help = usage_endpoints;
	else if (!strcmp(argv[1], "config"))
		r->help = usage_config;
	else if (!strcmp(argv[1], "monitor"))
		r->help = usage_monitor;
	else if (!strcmp(argv[1], "flush") || !strcmp(argv[1], "help"))
		r->help = usage_main;
	else
		return parse_fail("unknown command '%s'", q(argv[1]));
	return 0;
}

static const struct {
	const char *name;
	int (*parse)(int argc, char **argv, struct req *r);
} commands[] = {
	{ "service",	service_parse },
	{ "endpoints",	endpoints_parse },
	{ "config",	config_parse },
	{ "monitor",	monitor_parse },
	{ "flush",	flush_parse },
	{ "help",	help_parse },
};

static void req_reset(struct req *r)
{
	struct kvip_service svc = r->svc;

	kvip_service_reset(&svc);
	kvip_config_free(&r->cfg);
	memset(r, 0, sizeof(*r));
	r->svc = svc;
	kvip_config_init(&r->cfg);
}

/* Parse one command into r; -1 with parse_error() set on failure. */
static int parse_command(int argc, char **argv, struct req *r)
{
	req_reset(r);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[0], commands[i].name)) {
			if (commands[i].parse(argc, argv, r) < 0)
				return -1;
			r->json |= opt_json;
			return 0;
		}
	}
	if (argv[0][0] == '-')
		return parse_fail("unknown option '%s' (options go before "
				  "the command)", q(argv[0]));
	return parse_fail("unknown command '%s' (try '" PROG_NAME " help')",
			  q(argv[0]));
}

static int open_session(struct kvip **k)
{
	char msg[256];
	int err;

	if (*k)
		return 0;
	err = kvip_open(k, msg, sizeof(msg));
	if (err < 0) {
		fflush(stdout);
		fprintf(stderr, PROG_NAME ": %s\n", msg);
		return -1;
	}
	return 0;
}

static int execute(struct kvip **k, struct req *r)
{
	if (r->help) {
		r->help(stdout);
		return EXIT_OK;
	}
	if (!r->run)
		return EXIT_OK;
	if (r->needs_kernel && open_session(k) < 0)
		return EXIT_FAIL;
	return r->run(*k, r);
}

/* ------------------------------------------------------------------ */
/* Batch                                                              */

struct batch {
	char *data;
	size_t len;
	char *scratch;		/* split_line output */
	char **argv;
	size_t argv_cap;
};

static int read_all(const char *path, struct batch *b)
{
	size_t cap = 1 << 16;
	int fd;

	fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0)
		return parse_fail("cannot open '%s': %s", q(path),
				  strerror(errno));
	b->data = malloc(cap);
	if (!b->data)
		goto nomem;
	for (;;) {
		ssize_t n;

		if (b->len == cap) {
			char *d = realloc(b->data, cap * 2);

			if (!d)
				goto nomem;
			b->data = d;
			cap *= 2;
		}
		n = read(fd, b->data + b->len, cap - b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			parse_fail("cannot read '%s': %s", q(path),
				   strerror(errno));
			goto err;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
	}
	if (fd)
		close(fd);
	return 0;
nomem:
	parse_fail("out of memory");
err:
	if (fd)
		close(fd);
	return -1;
}

/*
 * Tokenize the line at [p, p+len) into b->argv; returns argc or -1. Each
 * line has its own part of b->scratch (at the line's offset: a line's
 * words take at most its length + 1 bytes), so the words of a line, e.g.
 * a service name, stay valid while later lines are read.
 */
static int batch_split(struct batch *b, const char *p, size_t len)
{
	size_t need = len / 2 + 2;

	if (need > b->argv_cap) {
		char **v = realloc(b->argv, need * sizeof(*v));

		if (!v)
			return parse_fail("out of memory");
		b->argv = v;
		b->argv_cap = need;
	}
	return split_line(p, len, b->scratch + (p - b->data), b->argv,
			  (int)b->argv_cap - 1);
}

static void at_line(unsigned long lineno)
{
	snprintf(line_prefix, sizeof(line_prefix), "line %lu: ", lineno);
}

/* Calls fn(b, lineno, argc, arg) for each line but blank ones. */
static int batch_lines(struct batch *b,
		       int (*fn)(struct batch *b, unsigned long lineno,
				 int argc, void *arg), void *arg)
{
	const char *p = b->data, *end = b->data + b->len;
	unsigned long lineno = 0;
	int ret = 0;

	while (p < end && !ret) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int argc;

		lineno++;
		argc = batch_split(b, p, len);
		p = nl ? nl + 1 : end;
		if (argc)
			ret = fn(b, lineno, argc, arg);
	}
	line_prefix[0] = '\0';
	return ret;
}

/* Pass 1: parse every line, report every error. */
struct check {
	struct req *r;
	bool needs_kernel;
	int status;
};

static int check_line(struct batch *b, unsigned long lineno, int argc,
		      void *arg)
{
	struct check *c = arg;

	if (argc < 0 || parse_command(argc, b->argv, c->r) < 0) {
		at_line(lineno);
		usage_error();
		c->status = EXIT_USAGE;
		return 0;
	}
	c->needs_kernel |= c->r->needs_kernel;
	return 0;
}

/*
 * Pass 2: run the lines, in order, over one session.
 *
 * Changes (service add/replace/del, endpoints set, config set, flush) go
 * through the library's pipeline; their answers come to batch_answer(),
 * which reports them under their own line. With -force the window is
 * KVIP_PIPE_MAX requests per sendmsg(): every line runs anyway, and the
 * kernel runs a sendmsg()'s messages in order, so the outcome is that of
 * one request at a time. Without -force the window is 1: the kernel runs
 * every message it is given, so a line is only sent once the one before it
 * succeeded; that is what keeps the lines after a failure unapplied.
 *
 * Without -force, "service add X" followed by "endpoints set X" (a set
 * sent in one message) is sent as one NEW_SERVICE carrying the endpoints.
 * If that fails, nothing changed, and the two lines run again one by one,
 * so that the outcome and the messages are those of the two lines. With
 * -force that retry would come after the lines sent behind the pair: the
 * pair is not merged there.
 *
 * Commands that wait for the kernel (show, and sets in several messages,
 * which flush the pipeline in the library) see every line before them
 * answered, and their output in order.
 */
struct sent {
	unsigned long line;
	unsigned long set_line;	/* merged: the endpoints set's line */
	const char *label;
	const char *name;	/* in b->scratch: valid during the batch */
	int err;
};

struct run {
	struct kvip *k;
	bool force;
	bool merge;		/* add + set as one request */
	bool stop;		/* a line failed, without -force */
	int status;
	struct req *cur, *held;	/* held: a service add that may merge */
	unsigned long held_line;
	struct sent ring[KVIP_PIPE_MAX];	/* > the requests in flight */
	unsigned int next;
};

static void line_failed(struct run *x)
{
	x->status = EXIT_FAIL;
	if (!x->force)
		x->stop = true;
}

static void batch_answer(void *cookie, int err, void *arg)
{
	struct sent *s = cookie;
	struct run *x = arg;

	s->err = err;
	if (s->set_line) {
		/* A failed merged pair runs again, unmerged (run_line). */
		if (err < 0)
			return;
		snprintf(line_prefix, sizeof(line_prefix), "lines %lu+%lu: ",
			 s->line, s->set_line);
	} else {
		at_line(s->line);
	}
	if (err < 0) {
		report_error(s->label, s->name, err, x->k);
		line_failed(x);
	} else {
		report_warning(s->label, s->name, x->k);
	}
}

/* Send r (of line @lineno); 0, or the error it failed with at once. */
static int send_req(struct run *x, struct req *r, unsigned long lineno,
		    unsigned long set_line)
{
	struct sent *s = &x->ring[x->next++ % KVIP_PIPE_MAX];
	int err;

	s->line = lineno;
	s->set_line = set_line;
	s->label = r->label;
	s->name = r->name;
	s->err = 0;
	kvip_pipe_cookie(x->k, s);
	err = r->request(x->k, r);
	if (err < 0 && !set_line) {
		at_line(lineno);
		kernel_error(r, err, x->k);
		line_failed(x);
	}
	return err < 0 ? err : s->err;
}

static void run_line(struct run *x, struct req *r, unsigned long lineno)
{
	if (x->stop)
		return;
	if (r->request) {
		send_req(x, r, lineno, 0);
		return;
	}
	/* Show, help: after the answers to every line before. */
	if (x->k)
		kvip_pipe_flush(x->k);
	if (x->stop)
		return;
	at_line(lineno);
	if (execute(&x->k, r) != EXIT_OK)
		line_failed(x);
}

/* Window 1: the answer has come when send_req() returns. */
static void run_merged(struct run *x, struct req *add, unsigned long add_line,
		       struct req *set, unsigned long lineno)
{
	struct kvip_service *svc = &add->svc;
	struct kvip_endpoint *own = svc->endpoints;
	size_t own_cap = svc->cap_endpoints;
	int err;

	svc->endpoints = set->svc.endpoints;
	svc->n_endpoints = set->svc.n_endpoints;
	svc->cap_endpoints = set->svc.cap_endpoints;
	svc->has_endpoints = true;
	err = send_req(x, add, add_line, lineno);
	svc->endpoints = own;
	svc->n_endpoints = 0;
	svc->cap_endpoints = own_cap;
	svc->has_endpoints = false;
	if (err < 0) {
		run_line(x, add, add_line);
		run_line(x, set, lineno);
	}
}

static bool can_merge(const struct run *x, const struct req *add,
		      const struct req *set)
{
	return set->kind == REQ_ENDPOINTS_SET &&
	       !strcmp(add->name, set->name) &&
	       kvip_endpoints_fit(x->k, set->name, set->svc.endpoints,
				  set->svc.n_endpoints);
}

static int exec_line(struct batch *b, unsigned long lineno, int argc,
		     void *arg)
{
	struct run *x = arg;
	struct req *r = x->cur;

	/* Invalid lines were reported by pass 1 (and -force skips them). */
	if (argc < 0 || parse_command(argc, b->argv, r) < 0)
		return 0;
	if (x->held_line) {
		unsigned long held_line = x->held_line;

		x->held_line = 0;
		if (can_merge(x, x->held, r)) {
			run_merged(x, x->held, held_line, r, lineno);
			return x->stop;
		}
		run_line(x, x->held, held_line);
	}
	if (x->merge && r->kind == REQ_SERVICE_ADD && !x->stop) {
		x->cur = x->held;
		x->held = r;
		x->held_line = lineno;
		return 0;
	}
	run_line(x, r, lineno);
	return x->stop;
}

static void req_free(struct req *r)
{
	kvip_service_free(&r->svc);
	kvip_config_free(&r->cfg);
}

static int run_batch(const char *path, bool force)
{
	struct batch b = { 0 };
	struct req r[2];
	struct check c = { .r = &r[0] };
	struct run x = { .force = force, .merge = !force, .cur = &r[0],
			 .held = &r[1] };
	int status;

	memset(r, 0, sizeof(r));
	if (read_all(path, &b) < 0) {
		free(b.data);
		return usage_error();
	}
	b.scratch = malloc(b.len + 1);
	if (!b.scratch) {
		free(b.data);
		parse_fail("out of memory");
		return usage_error();
	}

	batch_lines(&b, check_line, &c);
	status = c.status;
	if ((status != EXIT_OK && !force) || opt_check)
		goto out;
	if (c.needs_kernel) {
		if (open_session(&x.k) < 0 ||
		    kvip_pipe_start(x.k, force ? KVIP_PIPE_MAX : 1,
				    batch_answer, &x) < 0) {
			if (x.k)
				fprintf(stderr, PROG_NAME ": %s\n",
					kvip_errmsg(x.k));
			status = EXIT_FAIL;
			goto out;
		}
	}
	batch_lines(&b, exec_line, &x);
	if (x.held_line)
		run_line(&x, x.held, x.held_line);
	if (x.k)
		kvip_pipe_stop(x.k);
	line_prefix[0] = '\0';
	if (x.status != EXIT_OK || status != EXIT_OK)
		status = EXIT_FAIL;
out:
	kvip_close(x.k);
	req_free(&r[0]);
	req_free(&r[1]);
	free(b.argv);
	free(b.scratch);
	free(b.data);
	return status;
}

/* ------------------------------------------------------------------ */

static bool opt_is(const char *a, const char *o1, const char *o2,
		   const char *o3)
{
	return !strcmp(a, o1) || !strcmp(a, o2) || (o3 && !strcmp(a, o3));
}

bool kvipctl_is_netns_opt(const char *a)
{
	return opt_is(a, "-n", "-netns", "--netns");
}

/*
 * Entered by kvipctl itself, before its netlink socket exists: one exec
 * fewer than `ip netns exec NS kvipctl`, and no mount namespace with a
 * fresh /sys, which the kernel tables do not need.
 */
int kvipctl_enter_netns(const char *ns)
{
	char path[PATH_MAX];
	int fd, n, err = 0;

	if (strchr(ns, '/'))
		n = snprintf(path, sizeof(path), "%s", ns);
	else
		n = snprintf(path, sizeof(path), "/run/netns/%s", ns);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		err = ENAMETOOLONG;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err = errno;
		} else {
			if (setns(fd, CLONE_NEWNET) < 0)
				err = errno;
			close(fd);
		}
	}
	if (err) {
		fprintf(stderr, PROG_NAME ": cannot enter network namespace "
			"'%s': %s\n", q(ns), strerror(err));
		return -1;
	}
	return 0;
}

int kvipctl_main(int argc, char **argv)
{
	const char *batch = NULL, *netns = NULL;
	bool force = false;
	struct kvip *k = NULL;
	struct req r;
	int i, status;

	opt_json = false;
	opt_check = false;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (opt_is(a, "-j", "-json", "--json")) {
			opt_json = true;
		} else if (opt_is(a, "-b", "-batch", "--batch")) {
			if (++i == argc) {
				parse_fail("option '%s' needs a FILE", a);
				return usage_error();
			}
			batch = argv[i];
		} else if (kvipctl_is_netns_opt(a)) {
			if (++i == argc || !argv[i][0]) {
				parse_fail("option '%s' needs a network "
					   "namespace", a);
				return usage_error();
			}
			netns = argv[i];
		} else if (opt_is(a, "-force", "--force", NULL)) {
			force = true;
		} else if (opt_is(a, "-c", "-check", "--check")) {
			opt_check = true;
		} else if (opt_is(a, "-h", "-help", "--help")) {
			usage_main(stdout);
			return EXIT_OK;
		} else if (opt_is(a, "-V", "-version", "--version")) {
			printf(PROG_NAME " %s\n", KVIPCTL_VERSION);
			return EXIT_OK;
		} else {
			parse_fail("unknown option '%s' (try '" PROG_NAME
				   " --help')", q(a));
			return usage_error();
		}
	}

	/* Only now: --help and bad options need no namespace. */
	if (netns && !opt_check && kvipctl_enter_netns(netns))
		return EXIT_FAIL;
	if (batch) {
		if (i < argc) {
			parse_fail("unexpected argument '%s' after -batch "
				   "FILE", q(argv[i]));
			return usage_error();
		}
		status = run_batch(batch, force);
		goto out;
	}
	if (force) {
		parse_fail("-force only applies to -batch");
		return usage_error();
	}
	if (i == argc) {
		usage_main(stderr);
		return EXIT_USAGE;
	}

	memset(&r, 0, sizeof(r));
	if (parse_command(argc - i, argv + i, &r) < 0) {
		kvip_service_free(&r.svc);
		kvip_config_free(&r.cfg);
		return usage_error();
	}
	status = opt_check ? EXIT_OK : execute(&k, &r);
	kvip_close(k);
	kvip_service_free(&r.svc);
	kvip_config_free(&r.cfg);
out:
	if (fflush(stdout) == EOF && status == EXIT_OK) {
		fprintf(stderr, PROG_NAME ": write error: %s\n",
			strerror(errno));
		status = EXIT_FAIL;
	}
	return status;
}
