// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl sync [OPTION...]: options and the main loop.
 *
 * One thread: libcurl transfers (api.c) feed the store (model.c); once
 * every resource has completed its first list, dirty Kubernetes services
 * are synced to the kernel (reconcile.c) in passes, each pass taken
 * --sync-delay ms after the first change it contains so that bursts are
 * coalesced. SIGTERM/SIGINT stop the loop and leave the kernel as it is.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sync.h"

#define PROG "kvipctl sync"
#define ONCE_TIMEOUT_MS 30000

static volatile sig_atomic_t stop_signal;

static const char usage_text[] =
"Usage: kvipctl sync [--kubeconfig FILE [--context NAME] | --server URL\n"
"                    [--token-file FILE] [--ca-file FILE]]\n"
"                    [--insecure-skip-tls-verify] [--node-name NAME]\n"
"                    [--once] [--dry-run [-j]] [--healthz-bind-address ADDR]\n"
"                    [--metrics-bind-address ADDR] [--health-timeout SECONDS]\n"
"                    [--sync-delay MS] [--resync-period S] [--conn-stats]\n"
"                    [--endpoint-stats] [-v]... [-q]\n"
"\n"
"Watch Services and EndpointSlices in the Kubernetes API and keep kvip's\n"
"table equal to them, like kube-proxy, changing only what changed. Kernel\n"
"services are named NAMESPACE/NAME:PORT/PROTO (NAMESPACE/NAME/PROTO for an\n"
"unnamed port) and flagged managed; services without the flag are never\n"
"touched. Nothing is programmed before the first complete list, nothing is\n"
"removed because the API is unreachable, and SIGTERM leaves the kernel as\n"
"it is.\n"
"\n"
"Options:\n"
"  --kubeconfig FILE      kubeconfig to use (default: $KUBECONFIG, then the\n"
"                         in-cluster service account, then ~/.kube/config)\n"
"  --context NAME         kubeconfig context (default: current-context)\n"
"  --server URL           the API server's real address (not the\n"
"                         kubernetes Service's cluster IP, which kvip itself\n"
"                         implements); overrides the kubeconfig's\n"
"  --token-file FILE      bearer token, re-read when it changes and on 401\n"
"                         (default with --server: the service account's)\n"
"  --ca-file FILE         CA bundle for the API server's certificate\n"
"  --insecure-skip-tls-verify\n"
"                         do not check the API server's certificate\n"
"  --node-name NAME       this node (default: $NODE_NAME): marks local\n"
"                         endpoints, and its topology.kubernetes.io/zone\n"
"                         label enables zone hints\n"
"  --once                 list, sync the kernel once, exit\n"
"  --dry-run              change nothing in the kernel (which is not read)\n"
"  -j, --json             with --dry-run: print the desired kernel state\n"
"                         as `kvipctl service show -j` would, one line after\n"
"                         each pass that changes it\n"
"  --healthz-bind-address ADDR\n"
"                         /healthz (and /metrics), default :10256; \"\" off\n"
"  --metrics-bind-address ADDR\n"
"                         /metrics (and /healthz) on another address\n"
"                         (default: with /healthz); \"\" off\n"
"  --health-timeout S     /healthz fails when a change has been pending for\n"
"                         longer than S seconds (default 60)\n"
"  --sync-delay MS        coalesce changes for MS ms (default 10)\n"
"  --resync-period S      compare the kernel's table with what sync programmed\n"
"                         every S seconds and repair what was changed by hand\n"
"                         (default 300; 0: never)\n"
"  --conn-stats           count each service's new connections (the service\n"
"                         option conn-stats; off by default: kube-proxy\n"
"                         keeps no such counter, and it costs a memory\n"
"                         write per new connection)\n"
"  --endpoint-stats       count new connections per endpoint (the service\n"
"                         option endpoint-stats: per-CPU memory for every\n"
"                         endpoint)\n"
"  -v, --verbose          more logs (repeat: debug, trace)\n"
"  -q, --quiet            only warnings and errors\n"
"  -h, --help             this help\n"
"\n"
"ADDR is HOST:PORT, [IPV6]:PORT or :PORT (every address). Logs are logfmt\n"
"lines on stderr. Exit status: 0 stopped by a signal or --once done, 1 a\n"
"runtime error, 2 a usage error.\n";

void sync_usage(FILE *f);
void sync_usage(FILE *f)
{
	fputs(usage_text, f);
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* ------------------------------------------------------------------ */
/* API handlers                                                       */

struct ctx {
	struct store st;
	struct map listing[K8S_NKINDS];	/* a list in progress: key -> obj */
	struct map keep[K8S_NKINDS];	/* malformed in that list: keep old */
};

static const char *const kind_names[K8S_NKINDS] = {
	"services", "endpointslices", "nodes",
};

static void obj_free(enum k8s_kind kind, void *o)
{
	if (kind == K8S_SERVICE)
		k8s_service_free(o);
	else if (kind == K8S_SLICE)
		k8s_slice_free(o);
	else
		k8s_node_free(o);
}

static const char *obj_rv(enum k8s_kind kind, const void *o)
{
	return kind == K8S_SERVICE ? ((const struct k8s_service *)o)->rv :
	       kind == K8S_SLICE ? ((const struct k8s_slice *)o)->rv :
	       ((const struct k8s_node *)o)->rv;
}

static const char *obj_key(enum k8s_kind kind, const void *o)
{
	return kind == K8S_SERVICE ? ((const struct k8s_service *)o)->key :
	       kind == K8S_SLICE ? ((const struct k8s_slice *)o)->key :
	       ((const struct k8s_node *)o)->key;
}

static void *obj_parse(enum k8s_kind kind, json_object *o, char *err,
		       size_t len)
{
	if (kind == K8S_SERVICE)
		return k8s_service_parse(o, err, len);
	if (kind == K8S_SLICE)
		return k8s_slice_parse(o, err, len);
	return k8s_node_parse(o, err, len);
}

static void clear_listing(struct ctx *x, enum k8s_kind kind)
{
	struct map_iter it;
	struct map_entry *e;

	map_iter_init(&it, &x->listing[kind]);
	while ((e = map_iter_next(&it)))
		obj_free(kind, e->val);
	map_free(&x->listing[kind]);
	map_free(&x->keep[kind]);
}

static void *parse_logged(enum k8s_kind kind, json_object *o)
{
	char err[256];
	void *obj;

	status_lock();
	g_status.objects_seen[kind]++;
	status_unlock();
	obj = obj_parse(kind, o, err, sizeof(err));
	if (!obj) {
		char *key = k8s_object_key(o);

		slog(LOG_WARN, "skipping malformed object", "resource=%s "
		     "object=%s rv=%s reason=%s", kind_names[kind], lq(key),
		     lq(k8s_object_rv(o)), lq(err));
		free(key);
		status_lock();
		g_status.skipped_objects[kind]++;
		status_unlock();
	}
	return obj;
}

static void h_list_begin(void *arg, enum k8s_kind kind)
{
	struct ctx *x = arg;

	clear_listing(x, kind);
}

static void h_list_item(void *arg, enum k8s_kind kind, json_object *item)
{
	struct ctx *x = arg;
	void *obj = parse_logged(kind, item), *old = NULL;

	if (!obj) {
		char *key = k8s_object_key(item);

		if (key)
			map_put(&x->keep[kind], key, NULL, NULL);
		free(key);
		return;
	}
	if (map_put(&x->listing[kind], obj_key(kind, obj), obj, &old) < 0)
		obj_free(kind, obj);
	if (old)
		obj_free(kind, old);
}

static void h_list_end(void *arg, enum k8s_kind kind)
{
	struct ctx *x = arg;
	struct map *cur = store_map(&x->st, kind);
	struct strlist gone = { 0 };
	struct map_iter it;
	struct map_entry *e;
	unsigned changed = 0;

	map_iter_init(&it, cur);
	while ((e = map_iter_next(&it)))
		if (!map_has(&x->listing[kind], e->key) &&
		    !map_has(&x->keep[kind], e->key))
			strlist_add(&gone, e->key);
	for (size_t i = 0; i < gone.n; i++)
		store_del(&x->st, kind, gone.v[i]);
	map_iter_init(&it, &x->listing[kind]);
	while ((e = map_iter_next(&it))) {
		void *old = map_get(cur, e->key);

		if (old && *obj_rv(kind, old) &&
		    !strcmp(obj_rv(kind, old), obj_rv(kind, e->val))) {
			obj_free(kind, e->val);
			continue;
		}
		changed++;
		store_put(&x->st, kind, e->val);
	}
	map_free(&x->listing[kind]);
	map_free(&x->keep[kind]);
	slog(LOG_INFO, "listed", "resource=%s objects=%zu changed=%u "
	     "removed=%zu", kind_names[kind], cur->n, changed, gone.n);
	strlist_free(&gone);
}

static void h_event(void *arg, enum k8s_kind kind, struct k8s_event *ev)
{
	struct ctx *x = arg;
	void *obj;

	if (ev->type == EV_DELETED) {
		char *key = k8s_object_key(ev->object);

		status_lock();
		g_status.objects_seen[kind]++;
		status_unlock();
		if (key) {
			slog(LOG_DEBUG, "deleted", "resource=%s object=%s",
			     kind_names[kind], lq(key));
			store_del(&x->st, kind, key);
		}
		free(key);
		return;
	}
	obj = parse_logged(kind, ev->object);
	if (!obj)
		return;	/* keep the previous version */
	slog(LOG_DEBUG, ev->type == EV_ADDED ? "added" : "modified",
	     "resource=%s object=%s rv=%s", kind_names[kind],
	     lq(obj_key(kind, obj)), lq(obj_rv(kind, obj)));
	store_put(&x->st, kind, obj);
}

/* ------------------------------------------------------------------ */

struct opts {
	struct creds_opts creds;
	const char *node_name;
	const char *healthz_addr, *metrics_addr;
	bool once, dry_run, json;
	uint32_t stats_flags;
	long health_timeout_s;
	long sync_delay_ms;
	long resync_s;
};

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || !*s || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int usage_err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try '" PROG " --help')\n");
	return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum {
		O_KUBECONFIG = 256, O_CONTEXT, O_SERVER, O_TOKEN_FILE,
		O_CA_FILE, O_INSECURE, O_NODE_NAME, O_ONCE, O_DRY_RUN,
		O_HEALTHZ, O_METRICS, O_HEALTH_TIMEOUT, O_SYNC_DELAY,
		O_RESYNC, O_CONN_STATS, O_ENDPOINT_STATS,
	};
	static const struct option lo[] = {
		{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
		{ "context", required_argument, NULL, O_CONTEXT },
		{ "server", required_argument, NULL, O_SERVER },
		{ "master", required_argument, NULL, O_SERVER },
		{ "token-file", required_argument, NULL, O_TOKEN_FILE },
		{ "ca-file", required_argument, NULL, O_CA_FILE },
		{ "insecure-skip-tls-verify", no_argument, NULL, O_INSECURE },
		{ "node-name", required_argument, NULL, O_NODE_NAME },
		{ "hostname-override", required_argument, NULL, O_NODE_NAME },
		{ "once", no_argument, NULL, O_ONCE },
		{ "dry-run", no_argument, NULL, O_DRY_RUN },
		{ "json", no_argument, NULL, 'j' },
		{ "healthz-bind-address", required_argument, NULL, O_HEALTHZ },
		{ "metrics-bind-address", required_argument, NULL, O_METRICS },
		{ "health-timeout", required_argument, NULL, O_HEALTH_TIMEOUT },
		{ "sync-delay", required_argument, NULL, O_SYNC_DELAY },
		{ "resync-period", required_argument, NULL, O_RESYNC },
		{ "conn-stats", no_argument, NULL, O_CONN_STATS },
		{ "endpoint-stats", no_argument, NULL, O_ENDPOINT_STATS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->healthz_addr = ":10256";
	o->metrics_addr = NULL;		/* with /healthz */
	o->health_timeout_s = 60;
	o->sync_delay_ms = 10;
	o->resync_s = 300;
	o->node_name = getenv("NODE_NAME");
	o->creds.sa_dir = getenv("KVIP_SYNC_SA_DIR");	/* tests */
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jvqh", lo, NULL)) != -1) {
		switch (c) {
		case O_KUBECONFIG: o->creds.kubeconfig = optarg; break;
		case O_CONTEXT: o->creds.context = optarg; break;
		case O_SERVER: o->creds.server = optarg; break;
		case O_TOKEN_FILE: o->creds.token_file = optarg; break;
		case O_CA_FILE: o->creds.ca_file = optarg; break;
		case O_INSECURE: o->creds.insecure = true; break;
		case O_NODE_NAME: o->node_name = optarg; break;
		case O_ONCE: o->once = true; break;
		case O_DRY_RUN: o->dry_run = true; break;
		case 'j': o->json = true; break;
		case O_CONN_STATS:
			o->stats_flags |= KVIP_SERVICE_F_CONN_STATS;
			break;
		case O_ENDPOINT_STATS:
			o->stats_flags |= KVIP_SERVICE_F_ENDPOINT_STATS;
			break;
		case O_HEALTHZ: o->healthz_addr = optarg; break;
		case O_METRICS: o->metrics_addr = optarg; break;
		case O_HEALTH_TIMEOUT:
			if (parse_long(optarg, 1, 86400, &o->health_timeout_s))
				return usage_err("invalid --health-timeout '%s'",
						 optarg);
			break;
		case O_SYNC_DELAY:
			if (parse_long(optarg, 0, 60000, &o->sync_delay_ms))
				return usage_err("invalid --sync-delay '%s'",
						 optarg);
			break;
		case O_RESYNC:
			if (parse_long(optarg, 0, 86400, &o->resync_s))
				return usage_err("invalid --resync-period '%s'",
						 optarg);
			break;
		case 'v': log_level++; break;
		case 'q': log_level = LOG_WARN; break;
		case 'h': sync_usage(stdout); return 1;
		case ':':
			return usage_err("option '%s' needs an argument",
					 argv[optind - 1]);
		default:
			return usage_err("unknown option '%s'",
					 argv[optind - 1]);
		}
	}
	if (log_level > LOG_TRACE)
		log_level = LOG_TRACE;
	if (optind < argc)
		return usage_err("unexpected argument '%s'", argv[optind]);
	if (o->json && !o->dry_run)
		return usage_err("%s only goes with --dry-run", "-j");
	if (o->node_name && !*o->node_name)
		o->node_name = NULL;
	return 0;
}

static int run(struct opts *o)
{
	struct ctx *x = calloc(1, sizeof(*x));
	struct api_creds creds;
	struct api *api = NULL;
	struct reconciler *r = NULL;
	struct reconcile_opts ro = { .dry_run = o->dry_run, .json = o->json,
				     .out = stdout };
	struct api_handler h = { h_list_begin, h_list_item, h_list_end,
				 h_event, x };
	char err[512], *node_sel = NULL;
	bool initial = false, passed = false, servers = false;
	int64_t first_dirty = 0, start, last_verify;
	int ret = 1;

	if (!x)
		return 1;
	memset(&creds, 0, sizeof(creds));
	store_init(&x->st, o->node_name);
	x->st.stats_flags = o->stats_flags;
	status_init(o->health_timeout_s * 1000);
	if (creds_load(&o->creds, &creds, err, sizeof(err)) < 0) {
		slog(LOG_ERROR, "no API credentials", "error=%s", lq(err));
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	slog(LOG_INFO, "starting", "server=%s credentials=%s node=%s "
	     "dry_run=%s once=%s conn_stats=%s endpoint_stats=%s",
	     lq(creds.server), lq(creds.source), lq(o->node_name),
	     o->dry_run ? "true" : "false", o->once ? "true" : "false",
	     o->stats_flags & KVIP_SERVICE_F_CONN_STATS ? "true" : "false",
	     o->stats_flags & KVIP_SERVICE_F_ENDPOINT_STATS ? "true" : "false");
	if (reconciler_new(&r, &ro, err, sizeof(err)) < 0) {
		slog(LOG_ERROR, "cannot open the kernel's table", "error=%s",
		     lq(err));
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (reconciler_load_kernel(r, &x->st) < 0)
		goto out;
	if (api_new(&api, &creds, &h, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	{
		static const char sel[] = "!service.kubernetes.io/"
			"service-proxy-name,!service.kubernetes.io/headless";
		struct api_resource_desc svc = {
			.kind = K8S_SERVICE, .name = "services",
			.path = "/api/v1/services", .label_selector = sel,
		};
		struct api_resource_desc eps = {
			.kind = K8S_SLICE, .name = "endpointslices",
			.path = "/apis/discovery.k8s.io/v1/endpointslices",
			.label_selector = sel,
		};

		api_add_resource(api, &svc);
		api_add_resource(api, &eps);
		if (o->node_name) {
			struct api_resource_desc node = {
				.kind = K8S_NODE, .name = "nodes",
				.path = "/api/v1/nodes", .optional = true,
			};

			if (asprintf(&node_sel, "metadata.name=%s",
				     o->node_name) < 0)
				goto out;
			node.field_selector = node_sel;
			api_add_resource(api, &node);
		}
	}
	if (!o->once) {
		if (server_start(o->healthz_addr, o->metrics_addr) < 0)
			goto out;
		servers = true;
	}

	start = last_verify = now_ms();
	while (!stop_signal) {
		int timeout = 1000;
		int64_t now = now_ms(), retry;

		if (o->once && !initial && now - start > ONCE_TIMEOUT_MS) {
			slog(LOG_ERROR, "no complete list from the API in time; "
			     "the kernel is unchanged", "timeout_s=%d",
			     ONCE_TIMEOUT_MS / 1000);
			fprintf(stderr, PROG ": --once: no complete list from "
				"the API within %d s\n", ONCE_TIMEOUT_MS / 1000);
			goto out;
		}

		if (initial && x->st.dirty.n) {
			int64_t due;

			if (!first_dirty)
				first_dirty = now;
			due = first_dirty + o->sync_delay_ms - now;
			timeout = due < 0 ? 0 : (int)due;
		}
		retry = r ? reconciler_next_retry(r) : -1;
		if (retry >= 0 && retry < timeout)
			timeout = (int)retry;
		api_poll(api, timeout);
		now = now_ms();
		if (!initial && api_initial_sync_done(api)) {
			initial = true;
			first_dirty = 0;
			slog(LOG_INFO, "initial lists complete", "services=%zu "
			     "endpointslices=%zu", x->st.services.n,
			     x->st.slices.n);
		}
		if (!initial)
			continue;
		if (x->st.dirty.n && !first_dirty) {
			first_dirty = now;
			reconciler_note_change(r, now);
			status_lock();
			if (!g_status.pending_since_ms)
				g_status.pending_since_ms = now;
			status_unlock();
		}
		if (passed && o->resync_s && !o->once &&
		    now - last_verify >= o->resync_s * 1000) {
			last_verify = now;
			reconciler_verify(r, &x->st);
		}
		retry = reconciler_next_retry(r);
		if (!passed || retry == 0 || (x->st.dirty.n &&
		    now - first_dirty >= o->sync_delay_ms)) {
			int n = reconciler_pass(r, &x->st);

			passed = true;
			first_dirty = 0;
			if (o->once) {
				ret = n < 0 ? 1 : 0;
				goto out;
			}
		}
	}
	slog(LOG_INFO, "stopping; the kernel's table is left as it is",
	     "signal=%d", (int)stop_signal);
	ret = 0;
out:
	if (servers)
		server_stop();
	api_free(api);
	reconciler_free(r);
	for (int k = 0; k < K8S_NKINDS; k++)
		clear_listing(x, (enum k8s_kind)k);
	store_free(&x->st);
	creds_free(&creds);
	status_free();
	free(node_sel);
	free(x);
	fflush(stdout);
	return ret;
}

int sync_main(int argc, char **argv);
int sync_main(int argc, char **argv)
{
	struct sigaction sa;
	struct opts o;
	int ret;

	ret = parse_opts(argc, argv, &o);
	if (ret)
		return ret == 1 ? 0 : ret;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	srandom((unsigned)(time(NULL) ^ getpid()));
	/* Line-buffered JSON output for whoever reads it. */
	return run(&o);
}
