// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The API client: for each resource, a list (paged with limit/continue)
 * and then a watch from the list's resourceVersion, all driven by one
 * libcurl multi handle on the main thread (HTTP/2 multiplexed over TLS
 * where the server offers it).
 *
 * As client-go's reflector does: the first list asks for
 * resourceVersion=0, a relist for the last resourceVersion seen, and ""
 * after a list failed with 410 (expired continue token). Pages after the
 * first carry only continue. Watches use allowWatchBookmarks=true and a
 * timeoutSeconds drawn from [300, 600); every event's resourceVersion,
 * bookmarks included, is remembered as an opaque string. A normal end of
 * the stream re-watches at once; 410, as an HTTP status or as an ERROR
 * event with code 410, relists; anything else backs off exponentially
 * (0.8 s doubling to 30 s, plus up to 100 % jitter) and re-watches from
 * the last resourceVersion. 401 re-reads the token file.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sync.h"

#define LIST_LIMIT		500
#define BODY_MAX		(512u << 20)
#define LINE_MAX_BYTES		(64u << 20)
#define BACKOFF_INITIAL_MS	800
#define BACKOFF_MAX_MS		30000
#define TOKEN_REREAD_MS		60000

char *creds_read_token(const char *path, char *err, size_t errlen);

enum res_state { R_IDLE, R_LIST, R_WATCH };

struct api_res {
	struct api *api;
	struct api_resource_desc d;
	enum res_state state;	/* the transfer in flight */
	CURL *easy;
	struct curl_slist *hdrs;
	char *buf;
	size_t len, cap;
	char *rv;		/* last resourceVersion seen */
	bool rv_unavailable;	/* relist with "" */
	bool listed;		/* first list complete */
	bool need_list;
	bool in_list;		/* list_begin called, list_end not yet */
	char *cont;		/* continue token of the next page */
	char *list_rv;
	bool relist_410;	/* the watch saw ERROR 410 */
	bool watch_error;	/* the watch saw another ERROR */
	bool auth_failed;
	int64_t next_at;	/* monotonic ms: earliest next request */
	int backoff_ms;
	int64_t started_ms;
	unsigned events;
};

struct api {
	CURLM *multi;
	struct api_creds c;
	char *token;
	int64_t token_read_ms;
	struct api_handler h;
	struct api_res res[K8S_NKINDS];
	size_t nres;
};

static bool curl_ready;

static void stat_inc(uint64_t *counter)
{
	status_lock();
	(*counter)++;
	status_unlock();
}

static void token_refresh(struct api *a, bool force)
{
	char err[256];
	char *t;

	if (!a->c.token_file)
		return;
	if (!force && a->token && now_ms() - a->token_read_ms < TOKEN_REREAD_MS)
		return;
	a->token_read_ms = now_ms();
	t = creds_read_token(a->c.token_file, err, sizeof(err));
	if (!t) {
		slog(LOG_WARN, "cannot re-read the token", "error=%s", lq(err));
		return;
	}
	if (a->token && strcmp(a->token, t))
		slog(LOG_INFO, "token reloaded", "file=%s",
		     lq(a->c.token_file));
	free(a->token);
	a->token = t;
}

int api_new(struct api **ap, const struct api_creds *c,
	    const struct api_handler *h, char *err, size_t errlen)
{
	struct api *a;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
			snprintf(err, errlen, "cannot initialize libcurl");
			return -1;
		}
		curl_ready = true;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->multi = curl_multi_init();
	if (!a->multi) {
		free(a);
		snprintf(err, errlen, "cannot initialize libcurl");
		return -1;
	}
	curl_multi_setopt(a->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	/* Shallow copy: the caller keeps c alive. */
	a->c = *c;
	a->h = *h;
	if (c->token)
		a->token = strdup(c->token);
	if (c->token_file)
		token_refresh(a, true);
	if (c->tls_server_name)
		slog(LOG_WARN, "tls-server-name is not supported; the server's "
		     "certificate is checked against the URL's host name",
		     "tls_server_name=%s", lq(c->tls_server_name));
	*ap = a;
	return 0;
}

static void res_end_transfer(struct api_res *r)
{
	if (r->easy) {
		curl_multi_remove_handle(r->api->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	r->len = 0;
	r->state = R_IDLE;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nres; i++) {
		struct api_res *r = &a->res[i];

		res_end_transfer(r);
		free(r->buf);
		free(r->rv);
		free(r->cont);
		free(r->list_rv);
	}
	curl_multi_cleanup(a->multi);
	free(a->token);
	free(a);
}

int api_add_resource(struct api *a, const struct api_resource_desc *d)
{
	struct api_res *r;

	if (a->nres == K8S_NKINDS)
		return -ENOSPC;
	r = &a->res[a->nres++];
	memset(r, 0, sizeof(*r));
	r->api = a;
	r->d = *d;
	r->need_list = true;
	return 0;
}

bool api_initial_sync_done(struct api *a)
{
	for (size_t i = 0; i < a->nres; i++)
		if (!a->res[i].listed)
			return false;
	return true;
}

static void backoff(struct api_res *r, const char *why)
{
	int ms;

	if (!r->backoff_ms)
		r->backoff_ms = BACKOFF_INITIAL_MS;
	else if (r->backoff_ms < BACKOFF_MAX_MS)
		r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ?
				BACKOFF_MAX_MS : r->backoff_ms * 2;
	ms = r->backoff_ms + (int)(random() % (r->backoff_ms + 1));
	r->next_at = now_ms() + ms;
	slog(LOG_INFO, "backing off", "resource=%s delay_ms=%d reason=%s",
	     r->d.name, ms, lq(why));
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

static int buf_append(struct api_res *r, const char *p, size_t n, size_t max)
{
	if (r->len + n + 1 > max)
		return -1;
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 65536;
		char *b;

		while (cap < r->len + n + 1)
			cap *= 2;
		b = realloc(r->buf, cap);
		if (!b)
			return -1;
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return 0;
}

static long http_code(struct api_res *r)
{
	long code = 0;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

static void handle_event_line(struct api_res *r, const char *line, size_t n)
{
	struct k8s_event ev;
	char err[256];

	if (!n || (n == 1 && line[0] == '\r'))
		return;
	if (k8s_event_parse(line, n, &ev, err, sizeof(err)) < 0) {
		slog(LOG_WARN, "skipping malformed watch event",
		     "resource=%s reason=%s event=%.*s", r->d.name, lq(err),
		     n > 200 ? 200 : (int)n, line);
		stat_inc(&g_status.skipped_objects[r->d.kind]);
		return;
	}
	r->events++;
	if (ev.type == EV_ERROR) {
		if (ev.code == 410) {
			slog(LOG_INFO, "watch expired, relisting",
			     "resource=%s code=410 message=%s", r->d.name,
			     lq(ev.message));
			r->relist_410 = true;
		} else {
			slog(LOG_WARN, "watch error", "resource=%s code=%d "
			     "message=%s", r->d.name, ev.code, lq(ev.message));
			r->watch_error = true;
			stat_inc(&g_status.api_errors[r->d.kind]);
		}
		k8s_event_free(&ev);
		return;
	}
	if (ev.rv && *ev.rv) {
		char *rv = strdup(ev.rv);

		if (rv) {
			free(r->rv);
			r->rv = rv;
		}
	}
	if (ev.type != EV_BOOKMARK)
		r->api->h.event(r->api->h.arg, r->d.kind, &ev);
	else
		slog(LOG_TRACE, "bookmark", "resource=%s rv=%s", r->d.name,
		     lq(ev.rv));
	k8s_event_free(&ev);
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct api_res *r = arg;
	size_t n = size * nmemb, start = 0;

	if (r->state == R_LIST || http_code(r) != 200)
		return buf_append(r, p, n, BODY_MAX) < 0 ? 0 : n;

	/* A watch: newline-delimited JSON events. */
	if (r->relist_410 || r->watch_error)
		return 0;	/* stop: the stream is done */
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (r->len) {
			if (buf_append(r, p + start, i - start,
				       LINE_MAX_BYTES) < 0)
				return 0;
			handle_event_line(r, r->buf, r->len);
			r->len = 0;
		} else {
			handle_event_line(r, p + start, i - start);
		}
		start = i + 1;
		if (r->relist_410 || r->watch_error)
			return 0;
	}
	if (start < n && buf_append(r, p + start, n - start,
				    LINE_MAX_BYTES) < 0)
		return 0;
	return n;
}

static char *escape(CURL *e, const char *s)
{
	return curl_easy_escape(e, s, 0);
}

static int start_request(struct api_res *r)
{
	struct api *a = r->api;
	const struct api_creds *c = &a->c;
	char *url = NULL, *sel = NULL, *fsel = NULL, *rv = NULL, *cont = NULL;
	char auth[8192];
	bool list = r->need_list;
	long timeout;
	int ret = -1;

	r->easy = curl_easy_init();
	if (!r->easy)
		return -1;
	token_refresh(a, r->auth_failed);
	r->auth_failed = false;
	if (r->d.label_selector)
		sel = escape(r->easy, r->d.label_selector);
	if (r->d.field_selector)
		fsel = escape(r->easy, r->d.field_selector);
	if (list) {
		const char *lrv = r->rv_unavailable ? "" :
				  (r->rv && *r->rv) ? r->rv : "0";

		if (!r->in_list) {
			r->in_list = true;
			free(r->list_rv);
			r->list_rv = NULL;
			a->h.list_begin(a->h.arg, r->d.kind);
		}
		rv = escape(r->easy, lrv);
		if (r->cont)
			cont = escape(r->easy, r->cont);
		if (asprintf(&url, "%s%s?limit=%d%s%s%s%s%s%s%s%s", c->server,
			     r->d.path, LIST_LIMIT,
			     cont ? "&continue=" : "", cont ? cont : "",
			     (!cont && *lrv) ? "&resourceVersion=" : "",
			     (!cont && *lrv) ? rv : "",
			     sel ? "&labelSelector=" : "", sel ? sel : "",
			     fsel ? "&fieldSelector=" : "",
			     fsel ? fsel : "") < 0)
			url = NULL;
		timeout = 120;
	} else {
		long t = 300 + random() % 300;

		rv = escape(r->easy, r->rv ? r->rv : "");
		if (asprintf(&url, "%s%s?watch=1&resourceVersion=%s"
			     "&allowWatchBookmarks=true&timeoutSeconds=%ld"
			     "%s%s%s%s", c->server, r->d.path, rv ? rv : "", t,
			     sel ? "&labelSelector=" : "", sel ? sel : "",
			     fsel ? "&fieldSelector=" : "",
			     fsel ? fsel : "") < 0)
			url = NULL;
		timeout = t + 60;
		r->relist_410 = r->watch_error = false;
		r->events = 0;
	}
	if (!url)
		goto out;

	r->hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (a->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			 a->token);
		r->hdrs = curl_slist_append(r->hdrs, auth);
		explicit_bzero(auth, sizeof(auth));
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "kvipctl-sync");
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION,
			 (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(r->easy, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "");
	if (c->insecure) {
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca_file)
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, c->ca_file);
	if (c->ca_data) {
		struct curl_blob b = { c->ca_data, c->ca_data_len,
				       CURL_BLOB_COPY };

		curl_easy_setopt(r->easy, CURLOPT_CAINFO_BLOB, &b);
	}
	if (c->cert_file)
		curl_easy_setopt(r->easy, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		curl_easy_setopt(r->easy, CURLOPT_SSLKEY, c->key_file);
	if (c->cert_data) {
		struct curl_blob b = { c->cert_data, c->cert_data_len,
				       CURL_BLOB_COPY };

		curl_easy_setopt(r->easy, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(r->easy, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (c->key_data) {
		struct curl_blob b = { c->key_data, c->key_data_len,
				       CURL_BLOB_COPY };

		curl_easy_setopt(r->easy, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(r->easy, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (curl_multi_add_handle(a->multi, r->easy) != CURLM_OK)
		goto out;
	r->state = list ? R_LIST : R_WATCH;
	r->len = 0;
	r->started_ms = now_ms();
	slog(LOG_DEBUG, list ? "list" : "watch", "resource=%s url=%s",
	     r->d.name, lq(url));
	ret = 0;
out:
	if (ret < 0) {
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
		curl_slist_free_all(r->hdrs);
		r->hdrs = NULL;
	}
	curl_free(sel);
	curl_free(fsel);
	curl_free(rv);
	curl_free(cont);
	free(url);
	return ret;
}

/* The Status of an error body, for messages. */
static void status_message(const char *body, char *out, size_t len)
{
	json_object *o = body ? json_tokener_parse(body) : NULL, *m;

	snprintf(out, len, "%s", "");
	if (o && json_object_object_get_ex(o, "message", &m) &&
	    json_object_is_type(m, json_type_string))
		snprintf(out, len, "%s", json_object_get_string(m));
	else if (body)
		snprintf(out, len, "%.200s", body);
	if (o)
		json_object_put(o);
}

/* A list page arrived. */
static void list_done(struct api_res *r, CURLcode cc, long code)
{
	struct api *a = r->api;
	json_object *o = NULL, *md, *items, *v;
	char msg[512];
	const char *cont = NULL;
	size_t n;

	if (cc != CURLE_OK || code != 200) {
		if (cc != CURLE_OK)
			snprintf(msg, sizeof(msg), "%s", curl_easy_strerror(cc));
		else
			status_message(r->buf, msg, sizeof(msg));
		slog(LOG_WARN, "list failed", "resource=%s http=%ld error=%s",
		     r->d.name, code, lq(msg));
		stat_inc(&g_status.api_errors[r->d.kind]);
		free(r->cont);
		r->cont = NULL;
		/* The next attempt starts a new list (list_begin again). */
		r->in_list = false;
		if (r->d.optional && !r->listed) {
			slog(LOG_WARN, "continuing without this resource for now",
			     "resource=%s", r->d.name);
			r->listed = true;
		}
		if (code == 410) {
			/* Expired continue token, or too old: from scratch. */
			r->rv_unavailable = true;
			r->next_at = now_ms();
			return;
		}
		if (code == 401)
			r->auth_failed = true;
		backoff(r, msg);
		return;
	}
	o = json_tokener_parse(r->buf ? r->buf : "");
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "metadata", &md) ||
	    !json_object_object_get_ex(o, "items", &items) ||
	    (items && !json_object_is_type(items, json_type_array))) {
		slog(LOG_WARN, "list failed", "resource=%s error=\"invalid "
		     "list response\"", r->d.name);
		stat_inc(&g_status.api_errors[r->d.kind]);
		free(r->cont);
		r->cont = NULL;
		r->in_list = false;
		if (o)
			json_object_put(o);
		backoff(r, "invalid list response");
		return;
	}
	if (!r->list_rv && json_object_object_get_ex(md, "resourceVersion", &v) &&
	    json_object_is_type(v, json_type_string))
		r->list_rv = strdup(json_object_get_string(v));
	if (json_object_object_get_ex(md, "continue", &v) &&
	    json_object_is_type(v, json_type_string))
		cont = json_object_get_string(v);
	n = items ? json_object_array_length(items) : 0;
	for (size_t i = 0; i < n; i++)
		a->h.list_item(a->h.arg, r->d.kind,
			       json_object_array_get_idx(items, i));
	free(r->cont);
	r->cont = (cont && *cont) ? strdup(cont) : NULL;
	json_object_put(o);
	if (r->cont) {
		r->next_at = now_ms();
		return;		/* next page */
	}
	/* The list is complete. */
	r->in_list = false;
	r->need_list = false;
	r->rv_unavailable = false;
	free(r->rv);
	r->rv = r->list_rv ? r->list_rv : strdup("");
	r->list_rv = NULL;
	r->listed = true;
	r->backoff_ms = 0;
	r->next_at = now_ms();
	a->h.list_end(a->h.arg, r->d.kind);
	slog(LOG_DEBUG, "list complete", "resource=%s rv=%s", r->d.name,
	     lq(r->rv));
}

static void watch_done(struct api_res *r, CURLcode cc, long code)
{
	char msg[512];
	int64_t lasted = now_ms() - r->started_ms;

	stat_inc(&g_status.watch_restarts[r->d.kind]);
	if (r->relist_410 || code == 410) {
		if (code == 410)
			slog(LOG_INFO, "watch expired, relisting",
			     "resource=%s http=410", r->d.name);
		stat_inc(&g_status.relists[r->d.kind]);
		r->need_list = true;
		r->next_at = now_ms();
		return;
	}
	if (r->watch_error) {
		backoff(r, "watch ERROR event");
		return;
	}
	if (code && code != 200) {
		status_message(r->buf, msg, sizeof(msg));
		slog(LOG_WARN, "watch failed", "resource=%s http=%ld error=%s",
		     r->d.name, code, lq(msg));
		stat_inc(&g_status.api_errors[r->d.kind]);
		if (code == 401)
			r->auth_failed = true;
		backoff(r, msg);
		return;
	}
	if (cc != CURLE_OK) {
		slog(LOG_WARN, "watch interrupted", "resource=%s error=%s "
		     "events=%u", r->d.name, lq(curl_easy_strerror(cc)),
		     r->events);
		stat_inc(&g_status.api_errors[r->d.kind]);
		if (r->events)
			r->backoff_ms = 0;
		backoff(r, curl_easy_strerror(cc));
		return;
	}
	slog(LOG_DEBUG, "watch closed", "resource=%s events=%u lasted_ms=%lld",
	     r->d.name, r->events, (long long)lasted);
	if (!r->events && lasted < 1000) {
		backoff(r, "watch closed at once");
		return;
	}
	r->backoff_ms = 0;
	r->next_at = now_ms();
}

static void process_done(struct api *a)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(a->multi, &left))) {
		struct api_res *r = NULL;
		enum res_state was;
		long code;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (!r)
			continue;
		code = http_code(r);
		was = r->state;
		if (was == R_LIST)
			list_done(r, m->data.result, code);
		else
			watch_done(r, m->data.result, code);
		res_end_transfer(r);
	}
}

int api_next_timeout(struct api *a)
{
	int64_t now = now_ms(), best = -1;

	for (size_t i = 0; i < a->nres; i++) {
		struct api_res *r = &a->res[i];
		int64_t d;

		if (r->state != R_IDLE)
			continue;
		d = r->next_at - now;
		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	return best > INT32_MAX ? INT32_MAX : (int)best;
}

int api_poll(struct api *a, int timeout_ms)
{
	int running, t;
	int64_t now = now_ms();

	for (size_t i = 0; i < a->nres; i++) {
		struct api_res *r = &a->res[i];

		if (r->state == R_IDLE && r->next_at <= now &&
		    start_request(r) < 0)
			backoff(r, "cannot start a request");
	}
	curl_multi_perform(a->multi, &running);
	process_done(a);
	t = api_next_timeout(a);
	if (t >= 0 && t < timeout_ms)
		timeout_ms = t;
	curl_multi_poll(a->multi, NULL, 0, timeout_ms, NULL);
	curl_multi_perform(a->multi, &running);
	process_done(a);
	return 0;
}
