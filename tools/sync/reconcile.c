// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Keep the kernel's table equal to the desired state, touching only what
 * differs.
 *
 * The reconciler remembers what it believes is in the kernel for every
 * service it owns (read from the kernel at start: the services flagged
 * KVIP_SERVICE_F_MANAGED; services without the flag are never changed or
 * deleted). A pass takes the Kubernetes services marked dirty, computes
 * their kernel services, and per name: creates it (NEW with its
 * endpoints), replaces protocol/flags/options/frontends (REPLACE, with the
 * endpoints only if they changed too), replaces only the endpoint set
 * (SET_ENDPOINTS), or deletes it. All deletions of a pass go first, so
 * that a frontend moving between services is free when it is added.
 * Unchanged services are not touched at all, so a restart changes nothing.
 * A failed operation leaves the kernel as it was; its key is retried with
 * backoff.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvipctl.h"
#include "sync.h"

#define RETRY_INITIAL_MS	1000
#define RETRY_MAX_MS		30000
#define OPTION_FLAGS (KVIP_SERVICE_F_EXTERNAL_LOCAL | \
		      KVIP_SERVICE_F_INTERNAL_LOCAL | KVIP_SERVICE_F_AFFINITY)
#define STATS_FLAGS (KVIP_SERVICE_F_CONN_STATS | KVIP_SERVICE_F_ENDPOINT_STATS)

struct reconciler {
	struct reconcile_opts o;
	struct kvip *k;
	struct map applied;	/* name -> struct kvip_service */
	struct map by_key;	/* svc_key -> struct strlist of names */
	struct map unmanaged;	/* name -> NULL */
	struct map retry;	/* svc_key -> NULL */
	int64_t retry_at;
	int retry_ms;
	uint32_t flag_mask;	/* flags the kernel accepts */
	uint64_t n_endpoints;
	struct map hc;		/* svc_key -> struct hc_entry */
	struct map json;	/* name -> its `service show -j` object */
	bool printed;
	int64_t change_ms;	/* first change of the coming pass, or 0 */
};

struct pass_stats {
	unsigned created, replaced, endpoints, deleted, failed;
};

int reconciler_new(struct reconciler **rp, const struct reconcile_opts *o,
		   char *err, size_t errlen)
{
	struct reconciler *r = calloc(1, sizeof(*r));
	int ret;

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->o = *o;
	r->flag_mask = __KVIP_SERVICE_F_ALL;
	map_init(&r->applied);
	map_init(&r->by_key);
	map_init(&r->unmanaged);
	map_init(&r->retry);
	map_init(&r->hc);
	map_init(&r->json);
	if (!o->dry_run) {
		ret = kvip_open(&r->k, err, errlen);
		if (ret < 0) {
			reconciler_free(r);
			return -1;
		}
	}
	*rp = r;
	return 0;
}

static void svc_free_ptr(struct kvip_service *s)
{
	if (!s)
		return;
	svc_release(s);
	free(s);
}

void reconciler_free(struct reconciler *r)
{
	struct map_iter it;
	struct map_entry *e;

	if (!r)
		return;
	map_iter_init(&it, &r->applied);
	while ((e = map_iter_next(&it)))
		svc_free_ptr(e->val);
	map_iter_init(&it, &r->by_key);
	while ((e = map_iter_next(&it))) {
		strlist_free(e->val);
		free(e->val);
	}
	map_iter_init(&it, &r->hc);
	while ((e = map_iter_next(&it)))
		free(e->val);
	map_iter_init(&it, &r->json);
	while ((e = map_iter_next(&it)))
		free(e->val);
	map_free(&r->json);
	map_free(&r->applied);
	map_free(&r->by_key);
	map_free(&r->unmanaged);
	map_free(&r->retry);
	map_free(&r->hc);
	kvip_close(r->k);
	free(r);
}

/* ------------------------------------------------------------------ */
/* The applied state                                                  */

static void key_of(const char *name, char *key, size_t len)
{
	/* Not our format (only possible for services found flagged):
	 * the empty key, which never has a desired state. */
	if (model_key_of(name, key, len) < 0)
		key[0] = '\0';
}

/*
 * With -j, each service's JSON is rendered once when it changes (by
 * show_services(), into memory), so that printing 10,000 services after a
 * one-service change is a concatenation.
 */
static void json_update(struct reconciler *r, const struct kvip_service *s)
{
	struct kvip_service_list one = { (struct kvip_service *)s, 1, 1 };
	FILE *saved = stdout, *mem;
	char *buf = NULL, *obj = NULL;
	size_t len = 0;

	if (!r->o.json)
		return;
	free(map_del(&r->json, s->name, NULL));
	if (!(mem = open_memstream(&buf, &len)))
		return;
	stdout = mem;
	show_services(&one, true, false);
	stdout = saved;
	fclose(mem);
	/* "[{...}]\n" -> "{...}" */
	if (buf && len > 3 && buf[0] == '[')
		obj = strndup(buf + 1, len - 3);
	free(buf);
	if (obj && map_put(&r->json, s->name, obj, NULL) < 0)
		free(obj);
}

static void applied_del(struct reconciler *r, const char *name)
{
	struct kvip_service *s = map_del(&r->applied, name, NULL);
	char key[KVIP_NAME_MAX + 1];
	struct strlist *l;

	if (!s)
		return;
	free(map_del(&r->json, name, NULL));
	r->n_endpoints -= s->n_endpoints;
	svc_free_ptr(s);
	key_of(name, key, sizeof(key));
	l = map_get(&r->by_key, key);
	for (size_t i = 0; l && i < l->n; i++) {
		if (!strcmp(l->v[i], name)) {
			free(l->v[i]);
			l->v[i] = l->v[--l->n];
			break;
		}
	}
	if (l && !l->n) {
		map_del(&r->by_key, key, NULL);
		strlist_free(l);
		free(l);
	}
}

/* Remember s (copied) as the kernel's state of its name. */
static int applied_set(struct reconciler *r, const struct kvip_service *s)
{
	struct kvip_service *c = malloc(sizeof(*c)), *old;
	char key[KVIP_NAME_MAX + 1];
	struct strlist *l;

	if (!c || svc_copy(c, s) < 0) {
		free(c);
		return -ENOMEM;
	}
	c->has_endpoints = false;
	json_update(r, c);
	old = map_get(&r->applied, s->name);
	if (old) {
		r->n_endpoints -= old->n_endpoints;
		svc_free_ptr(old);
		map_put(&r->applied, s->name, c, NULL);
		r->n_endpoints += c->n_endpoints;
		return 0;
	}
	if (map_put(&r->applied, s->name, c, NULL) < 0) {
		svc_free_ptr(c);
		return -ENOMEM;
	}
	r->n_endpoints += c->n_endpoints;
	key_of(s->name, key, sizeof(key));
	l = map_get(&r->by_key, key);
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l || map_put(&r->by_key, key, l, NULL) < 0) {
			free(l);
			return -ENOMEM;
		}
	}
	return strlist_add(l, s->name);
}

int reconciler_load_kernel(struct reconciler *r, struct store *st)
{
	struct kvip_service_list list;
	unsigned ours = 0, others = 0;
	int err;

	if (!r->k)
		return 0;
	err = kvip_service_list(r->k, NULL, &list);
	if (err < 0) {
		slog(LOG_ERROR, "cannot read the kernel's services",
		     "error=%s detail=%s", lq(strerror(-err)),
		     lq(kvip_errmsg(r->k)));
		return err;
	}
	for (size_t i = 0; i < list.n; i++) {
		struct kvip_service *s = &list.v[i];
		char key[KVIP_NAME_MAX + 1];

		if (!(s->flags & KVIP_SERVICE_F_MANAGED)) {
			map_put(&r->unmanaged, s->name, NULL, NULL);
			others++;
			continue;
		}
		svc_canonicalize(s);
		if (applied_set(r, s) < 0) {
			svc_list_release(&list);
			return -ENOMEM;
		}
		key_of(s->name, key, sizeof(key));
		store_mark(st, key);
		ours++;
	}
	svc_list_release(&list);
	slog(LOG_INFO, "read the kernel's services", "managed=%u others=%u",
	     ours, others);
	return 0;
}

int reconciler_verify(struct reconciler *r, struct store *st)
{
	struct kvip_service_list list;
	struct map seen;
	struct map_iter it;
	struct map_entry *e;
	struct strlist gone = { 0 };
	unsigned drift = 0;
	int err;

	if (!r->k)
		return 0;
	err = kvip_service_list(r->k, NULL, &list);
	if (err < 0) {
		slog(LOG_WARN, "cannot read the kernel's services",
		     "error=%s", lq(strerror(-err)));
		return err;
	}
	map_init(&seen);
	for (size_t i = 0; i < list.n; i++) {
		struct kvip_service *s = &list.v[i];
		struct kvip_service *cur;
		char key[KVIP_NAME_MAX + 1];

		if (!(s->flags & KVIP_SERVICE_F_MANAGED) &&
		    (r->flag_mask & KVIP_SERVICE_F_MANAGED)) {
			if (!map_has(&r->applied, s->name))
				map_put(&r->unmanaged, s->name, NULL, NULL);
			continue;
		}
		map_put(&seen, s->name, NULL, NULL);
		svc_canonicalize(s);
		cur = map_get(&r->applied, s->name);
		if (cur && svc_same_header(cur, s, r->flag_mask) &&
		    svc_same_endpoints(cur, s))
			continue;
		/* Believe the kernel; the next pass corrects it. */
		slog(LOG_WARN, "the kernel's service differs from what sync "
		     "programmed", "name=%s", lq(s->name));
		applied_set(r, s);
		key_of(s->name, key, sizeof(key));
		store_mark(st, key);
		drift++;
	}
	map_iter_init(&it, &r->applied);
	while ((e = map_iter_next(&it)))
		if (!map_has(&seen, e->key))
			strlist_add(&gone, e->key);
	for (size_t i = 0; i < gone.n; i++) {
		char key[KVIP_NAME_MAX + 1];

		slog(LOG_WARN, "a service sync programmed is gone from the "
		     "kernel", "name=%s", lq(gone.v[i]));
		key_of(gone.v[i], key, sizeof(key));
		applied_del(r, gone.v[i]);
		store_mark(st, key);
		drift++;
	}
	strlist_free(&gone);
	map_free(&seen);
	svc_list_release(&list);
	slog(drift ? LOG_INFO : LOG_DEBUG, "checked the kernel's table",
	     "services=%zu drifted=%u", r->applied.n, drift);
	return (int)drift;
}

/* ------------------------------------------------------------------ */
/* Kernel operations                                                  */

enum op { OP_NEW, OP_REPLACE, OP_REPLACE_EPS, OP_SET_EPS, OP_DEL };

static const char *const op_names[] = {
	[OP_NEW] = "create", [OP_REPLACE] = "replace",
	[OP_REPLACE_EPS] = "replace+endpoints", [OP_SET_EPS] = "set-endpoints",
	[OP_DEL] = "delete",
};

/*
 * What to drop, in this order, while the kernel refuses a service's flags:
 * the counters first (losing them changes no packet's fate), the managed
 * flag last.
 */
static const struct {
	uint32_t flags;
	const char *msg;
} degrade_steps[] = {
	{ STATS_FLAGS, "the kernel refuses the statistics options; "
		       "programming services without them" },
	{ OPTION_FLAGS, "the kernel refuses service options (traffic policies, "
			"affinity); programming services without them" },
	{ KVIP_SERVICE_F_MANAGED, "the kernel refuses the managed flag; "
				  "services named like ours will be taken over" },
};
#define N_DEGRADE_STEPS (sizeof(degrade_steps) / sizeof(degrade_steps[0]))

/* Drop flags the kernel refuses; false when nothing is left to drop. */
static bool degrade_flags(struct reconciler *r)
{
	for (size_t i = 0; i < N_DEGRADE_STEPS; i++) {
		if (!(r->flag_mask & degrade_steps[i].flags))
			continue;
		r->flag_mask &= ~degrade_steps[i].flags;
		slog(LOG_WARN, degrade_steps[i].msg, "detail=%s",
		     lq(kvip_errmsg(r->k)));
		return true;
	}
	return false;
}

/* Does the kernel have a service of this name (and is it flagged)? */
static bool kernel_has(struct reconciler *r, const char *name, bool *managed)
{
	struct kvip_service_list l;
	bool found;

	*managed = false;
	if (kvip_service_list(r->k, name, &l) < 0)
		return false;
	found = l.n > 0;
	if (found)
		*managed = l.v[0].flags & KVIP_SERVICE_F_MANAGED;
	svc_list_release(&l);
	return found;
}

static int do_op(struct reconciler *r, enum op op, struct kvip_service *d)
{
	int err = 0, tries = 0;

	status_lock();
	g_status.kernel_ops++;
	status_unlock();
	if (!r->k)
		return 0;
again:
	d->flags &= r->flag_mask;
	switch (op) {
	case OP_NEW:
		d->has_endpoints = true;
		err = kvip_service_add(r->k, d);
		if (err == -EMSGSIZE) {
			d->has_endpoints = false;
			err = kvip_service_add(r->k, d);
			if (!err)
				err = kvip_set_endpoints(r->k, d->name,
							 d->endpoints,
							 d->n_endpoints);
		}
		break;
	case OP_REPLACE:
	case OP_REPLACE_EPS:
		d->has_endpoints = op == OP_REPLACE_EPS;
		err = kvip_service_replace(r->k, d);
		if (err == -EMSGSIZE && d->has_endpoints) {
			d->has_endpoints = false;
			err = kvip_service_replace(r->k, d);
			if (!err)
				err = kvip_set_endpoints(r->k, d->name,
							 d->endpoints,
							 d->n_endpoints);
		}
		break;
	case OP_SET_EPS:
		err = kvip_set_endpoints(r->k, d->name, d->endpoints,
					 d->n_endpoints);
		break;
	case OP_DEL:
		err = kvip_service_del(r->k, d->name);
		if (err == -ENOENT)
			err = 0;
		break;
	}
	if (err == -EOPNOTSUPP && op != OP_DEL && op != OP_SET_EPS &&
	    tries++ < (int)N_DEGRADE_STEPS && degrade_flags(r))
		goto again;
	if (err == -EEXIST && op == OP_NEW) {
		bool managed;

		if (kernel_has(r, d->name, &managed)) {
			if (!managed && (r->flag_mask & KVIP_SERVICE_F_MANAGED)) {
				slog(LOG_WARN, "a service of this name was "
				     "created by hand; leaving it alone",
				     "name=%s", lq(d->name));
				map_put(&r->unmanaged, d->name, NULL, NULL);
				return -EEXIST;
			}
			/* Ours (or unflaggable): take it over. */
			op = OP_REPLACE_EPS;
			goto again;
		}
	}
	if (err == -ENOENT && (op == OP_SET_EPS)) {
		/* Deleted behind our back: create it again. */
		op = OP_NEW;
		goto again;
	}
	if (err < 0) {
		status_lock();
		g_status.kernel_errors++;
		status_unlock();
		slog(LOG_ERROR, "kernel update failed", "op=%s name=%s "
		     "error=%s detail=%s", op_names[op], lq(d->name),
		     lq(strerror(-err)), lq(kvip_errmsg(r->k)));
	}
	return err;
}

/* ------------------------------------------------------------------ */
/* A pass                                                             */

struct plan {
	char *key;
	struct kvip_service_list want;
	bool bad_model;		/* no desired state: retry later */
	bool failed;
};

static bool in_list(const struct kvip_service_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return true;
	return false;
}

static void sync_key(struct reconciler *r, struct plan *p,
		     struct pass_stats *ps)
{
	for (size_t i = 0; i < p->want.n; i++) {
		struct kvip_service *d = &p->want.v[i];
		struct kvip_service *cur = map_get(&r->applied, d->name);
		enum op op;
		int err;

		d->flags &= r->flag_mask;
		if (!cur && map_has(&r->unmanaged, d->name) &&
		    (r->flag_mask & KVIP_SERVICE_F_MANAGED)) {
			slog(LOG_WARN, "not touching a service created by hand",
			     "name=%s", lq(d->name));
			continue;
		}
		if (!cur)
			op = OP_NEW;
		else if (!svc_same_header(cur, d, r->flag_mask))
			op = svc_same_endpoints(cur, d) ? OP_REPLACE :
							  OP_REPLACE_EPS;
		else if (!svc_same_endpoints(cur, d))
			op = OP_SET_EPS;
		else
			continue;
		err = do_op(r, op, d);
		if (err < 0) {
			p->failed = true;
			ps->failed++;
			continue;
		}
		slog(LOG_DEBUG, r->o.dry_run ? "would update service" :
		     "updated service", "op=%s name=%s frontends=%zu "
		     "endpoints=%zu", op_names[op], lq(d->name),
		     d->n_frontends, d->n_endpoints);
		d->flags &= r->flag_mask;
		if (applied_set(r, d) < 0)
			p->failed = true;
		if (op == OP_NEW)
			ps->created++;
		else if (op == OP_SET_EPS)
			ps->endpoints++;
		else
			ps->replaced++;
	}
}

static void delete_stale(struct reconciler *r, struct plan *p,
			 struct pass_stats *ps)
{
	struct strlist *l = map_get(&r->by_key, p->key);
	struct strlist stale = { 0 };

	for (size_t i = 0; l && i < l->n; i++)
		if (!in_list(&p->want, l->v[i]))
			strlist_add(&stale, l->v[i]);
	for (size_t i = 0; i < stale.n; i++) {
		struct kvip_service d;

		kvip_service_init(&d);
		snprintf(d.name, sizeof(d.name), "%s", stale.v[i]);
		if (do_op(r, OP_DEL, &d) < 0) {
			p->failed = true;
			ps->failed++;
			continue;
		}
		slog(LOG_DEBUG, r->o.dry_run ? "would delete service" :
		     "deleted service", "name=%s", lq(stale.v[i]));
		applied_del(r, stale.v[i]);
		ps->deleted++;
	}
	strlist_free(&stale);
}

static void update_hc(struct reconciler *r, struct store *st, const char *key)
{
	unsigned local;
	uint16_t port = model_health_check(st, key, &local);
	struct hc_entry *e = map_get(&r->hc, key);

	if (!port) {
		free(map_del(&r->hc, key, NULL));
		return;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || map_put(&r->hc, key, e, NULL) < 0) {
			free(e);
			return;
		}
	}
	e->port = port;
	e->local_ready = local;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_state(struct reconciler *r)
{
	const char **names = calloc(r->json.n ? r->json.n : 1, sizeof(*names));
	struct map_iter it;
	struct map_entry *e;
	size_t n = 0;

	if (!names)
		return;
	map_iter_init(&it, &r->json);
	while ((e = map_iter_next(&it)))
		names[n++] = e->key;
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_strp);
	putchar('[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			putchar(',');
		fputs(map_get(&r->json, names[i]), stdout);
	}
	fputs("]\n", stdout);
	fflush(stdout);
	free(names);
}

/* The kernel matches the API (but for keys waiting for a retry). */
static void mark_synced(struct reconciler *r)
{
	status_lock();
	g_status.synced = true;
	if (!r->retry.n) {
		g_status.last_update_ms = wall_ms();
		g_status.pending_since_ms = 0;
	}
	status_unlock();
}

static int cmp_plan(const void *a, const void *b)
{
	return strcmp(((const struct plan *)a)->key,
		      ((const struct plan *)b)->key);
}

int reconciler_pass(struct reconciler *r, struct store *st)
{
	struct pass_stats ps = { 0 };
	struct plan *plans;
	size_t n = 0, nkeys;
	struct map_iter it;
	struct map_entry *e;
	double t0 = now_s(), dt;
	bool hc_changed = false;
	int64_t now = now_ms();

	/* Due retries join the dirty keys. */
	if (r->retry.n && now >= r->retry_at) {
		map_iter_init(&it, &r->retry);
		while ((e = map_iter_next(&it)))
			store_mark(st, e->key);
		map_free(&r->retry);
		map_init(&r->retry);
	}
	nkeys = st->dirty.n;
	if (!nkeys) {
		mark_synced(r);
		if (r->o.json && !r->printed) {
			print_state(r);
			r->printed = true;
		}
		return 0;
	}
	plans = calloc(nkeys, sizeof(*plans));
	if (!plans)
		return -1;
	map_iter_init(&it, &st->dirty);
	while ((e = map_iter_next(&it))) {
		struct plan *p = &plans[n];

		p->key = strdup(e->key);
		if (!p->key)
			continue;
		if (model_desired(st, p->key, &p->want) < 0) {
			slog(LOG_ERROR, "cannot compute the desired state",
			     "service=%s", lq(p->key));
			p->bad_model = p->failed = true;
		}
		n++;
	}
	map_free(&st->dirty);
	map_init(&st->dirty);
	qsort(plans, n, sizeof(*plans), cmp_plan);

	for (size_t i = 0; i < n; i++)
		if (!plans[i].bad_model)
			delete_stale(r, &plans[i], &ps);
	for (size_t i = 0; i < n; i++)
		if (!plans[i].bad_model)
			sync_key(r, &plans[i], &ps);
	for (size_t i = 0; i < n; i++) {
		struct hc_entry *old = map_get(&r->hc, plans[i].key);
		struct hc_entry before = old ? *old : (struct hc_entry){ 0 };
		struct hc_entry *now_e;

		update_hc(r, st, plans[i].key);
		now_e = map_get(&r->hc, plans[i].key);
		if ((!old) != (!now_e) || (now_e && (now_e->port != before.port ||
		    now_e->local_ready != before.local_ready)))
			hc_changed = true;
		if (plans[i].failed) {
			map_put(&r->retry, plans[i].key, NULL, NULL);
		}
		svc_list_release(&plans[i].want);
		free(plans[i].key);
	}
	free(plans);
	if (hc_changed)
		server_hc_update(&r->hc);

	if (r->retry.n) {
		r->retry_ms = r->retry_ms ? r->retry_ms * 2 : RETRY_INITIAL_MS;
		if (r->retry_ms > RETRY_MAX_MS)
			r->retry_ms = RETRY_MAX_MS;
		r->retry_at = now_ms() + r->retry_ms;
	} else {
		r->retry_ms = 0;
	}
	dt = now_s() - t0;
	status_observe_sync(dt);
	status_lock();
	g_status.services_programmed = r->applied.n;
	g_status.endpoints_programmed = r->n_endpoints;
	status_unlock();
	mark_synced(r);

	if (ps.created || ps.replaced || ps.endpoints || ps.deleted ||
	    ps.failed || slog_on(LOG_DEBUG))
		slog(LOG_INFO, r->o.dry_run ? "sync (dry run)" : "sync",
		     "keys=%zu created=%u replaced=%u endpoints=%u deleted=%u "
		     "failed=%u services=%zu duration_ms=%.3f latency_ms=%lld",
		     n, ps.created, ps.replaced, ps.endpoints, ps.deleted,
		     ps.failed, r->applied.n, dt * 1000,
		     r->change_ms ? (long long)(now_ms() - r->change_ms) : 0LL);
	r->change_ms = 0;
	if (r->o.json && (!r->printed || ps.created || ps.replaced ||
			  ps.endpoints || ps.deleted)) {
		double t1 = now_s();

		print_state(r);
		r->printed = true;
		slog(LOG_DEBUG, "printed the desired state", "services=%zu "
		     "duration_ms=%.3f", r->applied.n, (now_s() - t1) * 1000);
	}
	return ps.failed ? -1 : (int)(ps.created + ps.replaced +
				      ps.endpoints + ps.deleted);
}

int64_t reconciler_next_retry(struct reconciler *r)
{
	int64_t d;

	if (!r->retry.n)
		return -1;
	d = r->retry_at - now_ms();
	return d < 0 ? 0 : d;
}

void reconciler_note_change(struct reconciler *r, int64_t ms)
{
	if (!r->change_ms)
		r->change_ms = ms;
}
