// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl sync's Kubernetes object parsing and mapping (tools/sync/model.c).
 *
 * The input is a watch stream: newline-separated events
 * {"type": ..., "object": ...}. Each line goes through k8s_event_parse();
 * the object of an event is parsed as a Service, an EndpointSlice and a
 * Node (whichever it is, the other parsers must refuse it cleanly); what
 * parses goes into a store, DELETED events delete. Then the desired kernel
 * services of every service key are computed, and checked:
 *   - names are at most KVIP_NAME_MAX bytes and map back to their key;
 *   - flags are known bits and include KVIP_SERVICE_F_MANAGED;
 *   - frontends are at most KVIP_FRONTENDS_MAX, valid types and ports,
 *     sorted, without duplicates;
 *   - endpoints are sorted by (family, address, port) without duplicates,
 *     have port > 0, weight 1, known flags, and are ready or
 *     serving+terminating;
 *   - the health-check count never exceeds the endpoints seen.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_util.h"
#include "sync.h"

static void check_service(const char *key, const struct kvip_service *s)
{
	char k[KVIP_NAME_MAX + 1];

	FUZZ_CHECK(strlen(s->name) <= KVIP_NAME_MAX, "name %s", s->name);
	FUZZ_CHECK(model_key_of(s->name, k, sizeof(k)) == 0 && !strcmp(k, key),
		   "name %s key %s", s->name, key);
	FUZZ_CHECK(!(s->flags & ~__KVIP_SERVICE_F_ALL) &&
		   (s->flags & KVIP_SERVICE_F_MANAGED), "flags %x", s->flags);
	FUZZ_CHECK(s->n_frontends >= 1 && s->n_frontends <= KVIP_FRONTENDS_MAX,
		   "%zu frontends", s->n_frontends);
	for (size_t i = 0; i < s->n_frontends; i++) {
		const struct kvip_frontend *f = &s->frontends[i];

		FUZZ_CHECK(f->type >= KVIP_FRONTEND_CLUSTERIP &&
			   f->type <= KVIP_FRONTEND_NODEPORT && f->port,
			   "frontend %zu", i);
		FUZZ_CHECK((f->type == KVIP_FRONTEND_NODEPORT) ==
			   (f->family == 0), "frontend family %zu", i);
		if (i)
			FUZZ_CHECK(memcmp(&s->frontends[i - 1], f, sizeof(*f)),
				   "duplicate frontend %zu", i);
	}
	for (size_t i = 0; i < s->n_endpoints; i++) {
		const struct kvip_endpoint *e = &s->endpoints[i];
		bool usable = (e->flags & KVIP_ENDPOINT_F_READY) ||
			      ((e->flags & KVIP_ENDPOINT_F_SERVING) &&
			       (e->flags & KVIP_ENDPOINT_F_TERMINATING));

		FUZZ_CHECK(e->port && e->weight == 1 &&
			   !(e->flags & ~__KVIP_ENDPOINT_F_ALL) && usable,
			   "endpoint %zu", i);
		FUZZ_CHECK(e->family == AF_INET || e->family == AF_INET6,
			   "endpoint family");
		if (i) {
			const struct kvip_endpoint *p = &s->endpoints[i - 1];
			int c = p->family != e->family ? p->family - e->family :
				memcmp(&p->addr, &e->addr, sizeof(e->addr));

			FUZZ_CHECK(c < 0 || (c == 0 && p->port < e->port),
				   "endpoints not sorted/unique at %zu", i);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct store st;
	struct map_iter it;
	struct map_entry *e;
	struct strlist keys = { 0 };
	size_t total_eps = 0;

	log_level = -1;		/* quiet */
	store_init(&st, "node-a");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct k8s_event ev;
		char err[256];

		if (k8s_event_parse(p, len, &ev, err, sizeof(err)) == 0) {
			void *s = k8s_service_parse(ev.object, err, sizeof(err));
			void *sl = k8s_slice_parse(ev.object, err, sizeof(err));
			struct k8s_node *n = k8s_node_parse(ev.object, err,
							    sizeof(err));
			char *key = k8s_object_key(ev.object);

			FUZZ_CHECK(!s || key, "parsed without a key");
			if (ev.type == EV_DELETED && key) {
				store_del(&st, K8S_SERVICE, key);
				store_del(&st, K8S_SLICE, key);
			}
			if (s && ev.type != EV_DELETED)
				store_put(&st, K8S_SERVICE, s);
			else
				k8s_service_free(s);
			if (sl && ev.type != EV_DELETED) {
				total_eps += ((struct k8s_slice *)sl)->n_eps;
				store_put(&st, K8S_SLICE, sl);
			} else {
				k8s_slice_free(sl);
			}
			if (n && n->zone && ev.type == EV_MODIFIED) {
				free(st.zone);
				st.zone = strdup(n->zone);
			}
			k8s_node_free(n);
			free(key);
			k8s_event_free(&ev);
		} else {
			FUZZ_CHECK(err[0], "failure without a reason");
		}
		p = nl ? nl + 1 : end;
	}

	map_iter_init(&it, &st.services);
	while ((e = map_iter_next(&it)))
		strlist_add(&keys, e->key);
	for (size_t i = 0; i < keys.n; i++) {
		struct kvip_service_list out = { 0 };
		unsigned local = 0;
		int n = model_desired(&st, keys.v[i], &out);

		FUZZ_CHECK(n >= 0 && (size_t)n == out.n, "model_desired %d", n);
		for (size_t j = 0; j < out.n; j++)
			check_service(keys.v[i], &out.v[j]);
		model_health_check(&st, keys.v[i], &local);
		FUZZ_CHECK(local <= total_eps, "local %u > %zu", local,
			   total_eps);
		svc_list_release(&out);
	}
	strlist_free(&keys);
	store_free(&st);
	return 0;
}
