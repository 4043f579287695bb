// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * HTTP servers (libmicrohttpd, each with its own thread):
 *
 *   /healthz   200 when the kernel reflects the API (initial sync done and
 *              no change pending for longer than the health timeout),
 *              else 503; body {"lastUpdated": ..., "currentTime": ...,
 *              "nodeEligible": true} as kube-proxy's.
 *   /metrics   Prometheus text format.
 *   health-check node ports: one server per LoadBalancer service with
 *              externalTrafficPolicy Local, on its healthCheckNodePort:
 *              200 when the service has ready endpoints on this node, else
 *              503, with kube-proxy's JSON body and
 *              X-Load-Balancing-Endpoint-Weight.
 *
 * The threads only read struct sync_status, under its mutex.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sync.h"

struct sync_status g_status;
const double sync_hist_bounds[SYNC_HIST_BUCKETS] = {
	0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	0.5, 1,
};

static const char *const kind_names[K8S_NKINDS] = {
	"services", "endpointslices", "nodes",
};

void status_init(int64_t health_timeout_ms)
{
	memset(&g_status, 0, sizeof(g_status));
	pthread_mutex_init(&g_status.lock, NULL);
	map_init(&g_status.hc);
	g_status.health_timeout_ms = health_timeout_ms;
}

void status_lock(void)
{
	pthread_mutex_lock(&g_status.lock);
}

void status_unlock(void)
{
	pthread_mutex_unlock(&g_status.lock);
}

static void hc_clear(struct map *m)
{
	struct map_iter it;
	struct map_entry *e;

	map_iter_init(&it, m);
	while ((e = map_iter_next(&it)))
		free(e->val);
	map_free(m);
	map_init(m);
}

void status_free(void)
{
	hc_clear(&g_status.hc);
	pthread_mutex_destroy(&g_status.lock);
}

void status_observe_sync(double s)
{
	size_t i;

	status_lock();
	for (i = 0; i < SYNC_HIST_BUCKETS; i++)
		if (s <= sync_hist_bounds[i])
			break;
	g_status.hist[i]++;
	g_status.hist_sum += s;
	g_status.hist_count++;
	status_unlock();
}

/* ------------------------------------------------------------------ */

struct buf {
	char *p;
	size_t len, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = b->p ? vsnprintf(b->p + b->len, room, fmt, ap) : -1;
		va_end(ap);
		if (n >= 0 && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap * 2 : 4096;
			char *p = realloc(b->p, cap + (n > 0 ? (size_t)n : 0));

			if (!p)
				return;
			b->p = p;
			b->cap = cap + (n > 0 ? (size_t)n : 0);
		}
	}
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code,
			     const char *type, struct buf *b)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(b->len, b->p ? b->p : (char *)"",
					    MHD_RESPMEM_MUST_COPY);
	free(b->p);
	b->p = NULL;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static void iso_time(int64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms) {
		snprintf(out, len, "0001-01-01T00:00:00Z");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static enum MHD_Result healthz(struct MHD_Connection *c)
{
	struct buf b = { 0 };
	char last[40], cur[40];
	bool healthy;

	status_lock();
	healthy = g_status.synced &&
		  !(g_status.pending_since_ms &&
		    now_ms() - g_status.pending_since_ms >
		    g_status.health_timeout_ms);
	iso_time(g_status.last_update_ms, last, sizeof(last));
	status_unlock();
	iso_time(wall_ms(), cur, sizeof(cur));
	bprintf(&b, "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\","
		"\"nodeEligible\": true}\n", last, cur);
	return reply(c, healthy ? 200 : 503, "application/json", &b);
}

static enum MHD_Result metrics(struct MHD_Connection *c)
{
	struct buf b = { 0 };
	uint64_t cum = 0;

	status_lock();
	bprintf(&b, "# HELP kvip_sync_duration_seconds Time a sync pass took "
		"(desired state and kernel updates).\n"
		"# TYPE kvip_sync_duration_seconds histogram\n");
	for (size_t i = 0; i < SYNC_HIST_BUCKETS; i++) {
		cum += g_status.hist[i];
		bprintf(&b, "kvip_sync_duration_seconds_bucket{le=\"%g\"} %llu\n",
			sync_hist_bounds[i], (unsigned long long)cum);
	}
	cum += g_status.hist[SYNC_HIST_BUCKETS];
	bprintf(&b, "kvip_sync_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		"kvip_sync_duration_seconds_sum %.9f\n"
		"kvip_sync_duration_seconds_count %llu\n",
		(unsigned long long)cum, g_status.hist_sum,
		(unsigned long long)g_status.hist_count);

#define PER_KIND(name, help, type, field)				\
	bprintf(&b, "# HELP " name " " help "\n# TYPE " name " " type "\n"); \
	for (int k = 0; k < K8S_NKINDS; k++)				\
		bprintf(&b, name "{resource=\"%s\"} %llu\n", kind_names[k], \
			(unsigned long long)g_status.field[k]);
	PER_KIND("kvip_sync_objects_seen_total",
		 "Objects received from the API (list items and watch events).",
		 "counter", objects_seen)
	PER_KIND("kvip_sync_objects_skipped_total",
		 "Malformed objects or events skipped.", "counter",
		 skipped_objects)
	PER_KIND("kvip_sync_api_errors_total",
		 "Failed API requests and watch errors.", "counter", api_errors)
	PER_KIND("kvip_sync_watch_restarts_total",
		 "Watch streams that ended and were restarted.", "counter",
		 watch_restarts)
	PER_KIND("kvip_sync_relists_total",
		 "Relists after 410 Gone/Expired.", "counter", relists)
#undef PER_KIND
	bprintf(&b, "# HELP kvip_sync_services_programmed Kernel services "
		"owned by sync.\n# TYPE kvip_sync_services_programmed gauge\n"
		"kvip_sync_services_programmed %llu\n"
		"# HELP kvip_sync_endpoints_programmed Endpoints of those "
		"services.\n# TYPE kvip_sync_endpoints_programmed gauge\n"
		"kvip_sync_endpoints_programmed %llu\n"
		"# HELP kvip_sync_kernel_operations_total Netlink requests "
		"made (or, in a dry run, that would be made).\n"
		"# TYPE kvip_sync_kernel_operations_total counter\n"
		"kvip_sync_kernel_operations_total %llu\n"
		"# HELP kvip_sync_kernel_errors_total Netlink requests that "
		"failed.\n# TYPE kvip_sync_kernel_errors_total counter\n"
		"kvip_sync_kernel_errors_total %llu\n"
		"# HELP kvip_sync_last_sync_timestamp_seconds When the kernel "
		"last matched the API.\n"
		"# TYPE kvip_sync_last_sync_timestamp_seconds gauge\n"
		"kvip_sync_last_sync_timestamp_seconds %.3f\n",
		(unsigned long long)g_status.services_programmed,
		(unsigned long long)g_status.endpoints_programmed,
		(unsigned long long)g_status.kernel_ops,
		(unsigned long long)g_status.kernel_errors,
		(double)g_status.last_update_ms / 1000);
	status_unlock();
	return reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static enum MHD_Result main_handler(void *cls, struct MHD_Connection *c,
				    const char *url, const char *method,
				    const char *version, const char *upload,
				    size_t *upload_size, void **con_cls)
{
	struct buf b = { 0 };

	(void)cls;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		bprintf(&b, "method not allowed\n");
		return reply(c, 405, "text/plain", &b);
	}
	if (!strcmp(url, "/healthz") || !strcmp(url, "/livez"))
		return healthz(c);
	if (!strcmp(url, "/metrics"))
		return metrics(c);
	bprintf(&b, "404 page not found\n");
	return reply(c, 404, "text/plain", &b);
}

/* "HOST:PORT", "[V6]:PORT", ":PORT". */
static struct MHD_Daemon *start_daemon(const char *addr, uint16_t port,
				       MHD_AccessHandlerCallback h, void *cls)
{
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;
	char host[256] = "";

	memset(&ss, 0, sizeof(ss));
	if (addr) {
		const char *colon = strrchr(addr, ':');
		char *end;
		unsigned long p;

		if (!colon)
			return NULL;
		p = strtoul(colon + 1, &end, 10);
		if (*end || !colon[1] || p > 65535)
			return NULL;
		port = (uint16_t)p;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
	}
	if (host[0]) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
			in->sin_family = AF_INET;
			in->sin_port = htons(port);
		} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(port);
			flags |= MHD_USE_IPv6;
		} else {
			return NULL;
		}
		return MHD_start_daemon(flags, port, NULL, NULL, h, cls,
					MHD_OPTION_SOCK_ADDR, &ss,
					MHD_OPTION_CONNECTION_TIMEOUT, 10u,
					MHD_OPTION_CONNECTION_LIMIT, 64u,
					MHD_OPTION_END);
	}
	d = MHD_start_daemon(flags | MHD_USE_DUAL_STACK, port, NULL, NULL, h,
			     cls, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
			     MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
	if (!d)		/* no IPv6 */
		d = MHD_start_daemon(flags, port, NULL, NULL, h, cls,
				     MHD_OPTION_CONNECTION_TIMEOUT, 10u,
				     MHD_OPTION_CONNECTION_LIMIT, 64u,
				     MHD_OPTION_END);
	return d;
}

static struct MHD_Daemon *d_health, *d_metrics;

int server_start(const char *healthz_addr, const char *metrics_addr)
{
	if (healthz_addr && *healthz_addr) {
		d_health = start_daemon(healthz_addr, 0, main_handler, NULL);
		if (!d_health) {
			slog(LOG_ERROR, "cannot start the health server",
			     "address=%s", lq(healthz_addr));
			return -1;
		}
		slog(LOG_INFO, "serving /healthz and /metrics", "address=%s",
		     lq(healthz_addr));
	}
	/* Default: /metrics is served with /healthz. */
	if (metrics_addr && *metrics_addr &&
	    !(healthz_addr && !strcmp(healthz_addr, metrics_addr))) {
		d_metrics = start_daemon(metrics_addr, 0, main_handler, NULL);
		if (!d_metrics) {
			slog(LOG_ERROR, "cannot start the metrics server",
			     "address=%s", lq(metrics_addr));
			return -1;
		}
		slog(LOG_INFO, "serving /metrics and /healthz", "address=%s",
		     lq(metrics_addr));
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Health-check node ports                                            */

struct hc_server {
	char *key;
	uint16_t port;
	struct MHD_Daemon *d;
};

static struct map hc_servers;	/* key -> struct hc_server (main thread) */

static enum MHD_Result hc_handler(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	const char *key = cls, *slash = strchr(key, '/');
	struct MHD_Response *r;
	struct hc_entry *e;
	struct buf b = { 0 };
	unsigned count = 0;
	char weight[16];
	enum MHD_Result ret;
	bool healthy;

	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	status_lock();
	e = map_get(&g_status.hc, key);
	if (e)
		count = e->local_ready;
	healthy = g_status.synced;
	status_unlock();
	bprintf(&b, "{\n\t\"service\": {\n\t\t\"namespace\": \"%.*s\",\n"
		"\t\t\"name\": \"%s\"\n\t},\n\t\"localEndpoints\": %u,\n"
		"\t\"serviceProxyHealthy\": %s\n}",
		(int)(slash - key), key, slash + 1, count,
		healthy ? "true" : "false");
	r = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_COPY);
	free(b.p);
	if (!r)
		return MHD_NO;
	snprintf(weight, sizeof(weight), "%u", count);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Load-Balancing-Endpoint-Weight", weight);
	ret = MHD_queue_response(c, count && healthy ? 200 : 503, r);
	MHD_destroy_response(r);
	return ret;
}

static void hc_stop(struct hc_server *s)
{
	if (s->d)
		MHD_stop_daemon(s->d);
	slog(LOG_INFO, "stopped health-check node port", "service=%s port=%u",
	     lq(s->key), s->port);
	free(s->key);
	free(s);
}

void server_hc_update(struct map *wanted)
{
	struct map_iter it;
	struct map_entry *e;

	/* What the handlers read. */
	status_lock();
	hc_clear(&g_status.hc);
	map_iter_init(&it, wanted);
	while ((e = map_iter_next(&it))) {
		struct hc_entry *c = malloc(sizeof(*c));

		if (!c)
			continue;
		*c = *(struct hc_entry *)e->val;
		if (map_put(&g_status.hc, e->key, c, NULL) < 0)
			free(c);
	}
	status_unlock();

	/* Stop servers no longer wanted (or moved). */
	map_iter_init(&it, &hc_servers);
	while ((e = map_iter_next(&it))) {
		struct hc_server *s = e->val;
		struct hc_entry *w = map_get(wanted, e->key);

		if (w && w->port == s->port)
			continue;
		map_del(&hc_servers, s->key, NULL);
		hc_stop(s);
	}
	map_iter_init(&it, wanted);
	while ((e = map_iter_next(&it))) {
		struct hc_entry *w = e->val;
		struct hc_server *s;

		if (map_has(&hc_servers, e->key))
			continue;
		s = calloc(1, sizeof(*s));
		if (!s)
			continue;
		s->key = strdup(e->key);
		s->port = w->port;
		s->d = s->key ? start_daemon(NULL, w->port, hc_handler, s->key) :
				NULL;
		if (!s->d) {
			slog(LOG_ERROR, "cannot serve a health-check node port",
			     "service=%s port=%u", lq(e->key), w->port);
		} else {
			slog(LOG_INFO, "serving health-check node port",
			     "service=%s port=%u", lq(e->key), w->port);
		}
		if (map_put(&hc_servers, e->key, s, NULL) < 0)
			hc_stop(s);
	}
}

void server_stop(void)
{
	struct map_iter it;
	struct map_entry *e;

	map_iter_init(&it, &hc_servers);
	while ((e = map_iter_next(&it)))
		hc_stop(e->val);
	map_free(&hc_servers);
	if (d_health)
		MHD_stop_daemon(d_health);
	if (d_metrics)
		MHD_stop_daemon(d_metrics);
	d_health = d_metrics = NULL;
}
