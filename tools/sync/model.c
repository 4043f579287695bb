// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Kubernetes objects and kube-proxy's mapping rules.
 *
 * JSON (json-c) -> struct k8s_service / k8s_slice / k8s_node, validated
 * strictly: an object with a field of the wrong type or an unparsable
 * address is refused as a whole (the caller keeps the previous version and
 * logs the reason). Then, per Service port, the kernel service kvip should
 * have (model_desired), following pkg/proxy:
 *
 *   - headless (clusterIP None/""), ExternalName, and services labelled
 *     service.kubernetes.io/service-proxy-name or .../headless: nothing;
 *   - one kernel service per (namespace, name, port name, protocol), named
 *     NAMESPACE/NAME:PORTNAME/PROTO, or NAMESPACE/NAME/PROTO for an unnamed
 *     port (PROTO is tcp, udp or sctp);
 *   - frontends: every clusterIPs[] entry, nodePort, externalIPs[], and
 *     status.loadBalancer.ingress[].ip whose ipMode is unset or VIP;
 *   - options: sessionAffinity ClientIP (+ timeoutSeconds),
 *     external/internalTrafficPolicy Local, loadBalancerSourceRanges (type
 *     LoadBalancer only);
 *   - endpoints: the union of the slices labelled kubernetes.io/service-name,
 *     of the families the service has a cluster IP of; slice ports joined by
 *     name and protocol (targetPort is never read); addresses[0];
 *     conditions ready/serving default true, terminating false; dedup by
 *     address and port, the copy on this node preferred; nodeName ==
 *     --node-name makes an endpoint local; zone hints: when every ready
 *     endpoint has zone hints and one names this node's zone, ready
 *     endpoints without it are left out; endpoints that are neither ready
 *     nor serving-and-terminating are left out (they would never be chosen,
 *     and a service with none left must reject, as kube-proxy does).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sync.h"

#define LABEL_SERVICE_NAME	"kubernetes.io/service-name"
#define LABEL_PROXY_NAME	"service.kubernetes.io/service-proxy-name"
#define LABEL_HEADLESS		"service.kubernetes.io/headless"
#define LABEL_ZONE		"topology.kubernetes.io/zone"

static int bad(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* ------------------------------------------------------------------ */
/* JSON access, strict about types. A present null counts as absent.  */

static json_object *jget(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;	/* NULL for a JSON null */
}

/* A field of @type: 0 and *out (NULL if absent), -1 if of another type. */
static int jtyped(json_object *o, const char *key, json_type type,
		  json_object **out)
{
	json_object *v = jget(o, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_object_is_type(v, type))
		return -1;
	*out = v;
	return 0;
}

static int jarr(json_object *o, const char *key, json_object **out)
{
	return jtyped(o, key, json_type_array, out);
}

static int jobj(json_object *o, const char *key, json_object **out)
{
	return jtyped(o, key, json_type_object, out);
}

/* A string field: *out is NULL if absent. */
static int jstr(json_object *o, const char *key, const char **out)
{
	json_object *v;

	*out = NULL;
	if (jtyped(o, key, json_type_string, &v) < 0)
		return -1;
	if (!v)
		return 0;
	/* Embedded NULs would truncate silently. */
	if ((size_t)json_object_get_string_len(v) !=
	    strlen(json_object_get_string(v)))
		return -1;
	*out = json_object_get_string(v);
	return 0;
}

static int jint(json_object *o, const char *key, int64_t *out, bool *present)
{
	json_object *v;

	if (jtyped(o, key, json_type_int, &v) < 0)
		return -1;
	*present = v != NULL;
	if (v)
		*out = json_object_get_int64(v);
	return 0;
}

static int jbool(json_object *o, const char *key, bool def, bool *out)
{
	json_object *v;

	*out = def;
	if (jtyped(o, key, json_type_boolean, &v) < 0)
		return -1;
	if (v)
		*out = json_object_get_boolean(v);
	return 0;
}

/* A DNS-ish name: no '/', ':', whitespace or control characters. */
static bool good_name(const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':' ||
		    c == '"' || c == '\\')
			return false;
	}
	return n <= max;
}

int sync_addr_parse(const char *s, struct k8s_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (!s)
		return -1;
	if (inet_pton(AF_INET, s, &a->addr.in) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a->addr.in6) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	return -1;
}

int sync_cidr_parse(const char *s, struct kvip_cidr *c)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	struct k8s_addr a;
	unsigned long prefix;
	unsigned max;

	memset(c, 0, sizeof(*c));
	while (*s == ' ' || *s == '\t')
		s++;
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	end = buf + strlen(buf);
	while (end > buf && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash++ = '\0';
	if (sync_addr_parse(buf, &a) < 0)
		return -EINVAL;
	max = a.family == AF_INET ? 32 : 128;
	if (*slash < '0' || *slash > '9' || strlen(slash) > 3)
		return -EINVAL;
	prefix = strtoul(slash, &end, 10);
	if (*end || prefix > max)
		return -EINVAL;
	c->family = a.family;
	c->prefix = (uint8_t)prefix;
	c->addr = a.addr;
	/* Clear the host bits (Kubernetes parses "sloppily"). */
	for (unsigned bit = (unsigned)prefix; bit < max; bit++)
		c->addr.raw[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
	return 0;
}

static int parse_proto(const char *p, uint8_t *proto)
{
	if (!p || !strcmp(p, "TCP"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(p, "UDP"))
		*proto = IPPROTO_UDP;
	else if (!strcmp(p, "SCTP"))
		*proto = IPPROTO_SCTP;
	else
		return -1;
	return 0;
}

/* metadata.namespace/name into *key; 0 or -1. */
static int meta_key(json_object *o, bool namespaced, char **key,
		    const char **rv, json_object **labels, char *err,
		    size_t len)
{
	json_object *md;
	const char *ns = NULL, *name = NULL;

	if (jobj(o, "metadata", &md) < 0 || !md)
		return bad(err, len, "no metadata");
	if (jstr(md, "name", &name) < 0 || !good_name(name, 253))
		return bad(err, len, "bad metadata.name");
	if (namespaced && (jstr(md, "namespace", &ns) < 0 ||
			   !good_name(ns, 63)))
		return bad(err, len, "bad metadata.namespace");
	if (jstr(md, "resourceVersion", rv) < 0)
		return bad(err, len, "bad metadata.resourceVersion");
	if (jobj(md, "labels", labels) < 0)
		return bad(err, len, "bad metadata.labels");
	if (namespaced ? asprintf(key, "%s/%s", ns, name) < 0 :
			 !(*key = strdup(name)))
		return bad(err, len, "out of memory");
	return 0;
}

char *k8s_object_key(json_object *o)
{
	json_object *md = jget(o, "metadata");
	const char *ns = NULL, *name = NULL;
	char *k;

	if (jstr(md, "name", &name) < 0 || !name)
		return NULL;
	if (jstr(md, "namespace", &ns) < 0)
		ns = NULL;
	if (asprintf(&k, "%s%s%s", ns ? ns : "", ns ? "/" : "", name) < 0)
		return NULL;
	return k;
}

const char *k8s_object_rv(json_object *o)
{
	const char *rv = NULL;

	if (jstr(jget(o, "metadata"), "resourceVersion", &rv) < 0)
		return NULL;
	return rv;
}

static bool has_label(json_object *labels, const char *l)
{
	return labels && json_object_object_get_ex(labels, l, NULL);
}

/* ------------------------------------------------------------------ */
/* Service                                                            */

void k8s_service_free(struct k8s_service *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_ports; i++)
		free(s->ports[i].name);
	free(s->ports);
	free(s->cluster_ips);
	free(s->external_ips);
	free(s->lb_ips);
	free(s->source_ranges);
	free(s->key);
	free(s->rv);
	free(s);
}

/* An array of address strings into *out. */
static int parse_addrs(json_object *arr, struct k8s_addr **out, size_t *n,
		       const char *what, char *err, size_t len)
{
	size_t cnt = arr ? json_object_array_length(arr) : 0;

	*out = NULL;
	*n = 0;
	if (!cnt)
		return 0;
	*out = calloc(cnt, sizeof(**out));
	if (!*out)
		return bad(err, len, "out of memory");
	for (size_t i = 0; i < cnt; i++) {
		json_object *v = json_object_array_get_idx(arr, i);

		if (!v || !json_object_is_type(v, json_type_string) ||
		    sync_addr_parse(json_object_get_string(v), &(*out)[*n]) < 0)
			return bad(err, len, "bad %s[%zu]", what, i);
		(*n)++;
	}
	return 0;
}

static int service_body(struct k8s_service *s, json_object *o,
			json_object *labels, char *err, size_t len)
{
	json_object *spec, *st, *lb, *arr, *sac, *cip;
	const char *type, *cluster_ip, *v;
	bool present, is_lb;
	int64_t n;

	if (has_label(labels, LABEL_PROXY_NAME)) {
		s->skip = "labelled " LABEL_PROXY_NAME;
		return 0;
	}
	if (has_label(labels, LABEL_HEADLESS)) {
		s->skip = "labelled " LABEL_HEADLESS;
		return 0;
	}
	if (jobj(o, "spec", &spec) < 0 || !spec)
		return bad(err, len, "no spec");
	if (jstr(spec, "type", &type) < 0)
		return bad(err, len, "bad spec.type");
	if (type && !strcmp(type, "ExternalName")) {
		s->skip = "type ExternalName";
		return 0;
	}
	is_lb = type && !strcmp(type, "LoadBalancer");
	if (jstr(spec, "clusterIP", &cluster_ip) < 0)
		return bad(err, len, "bad spec.clusterIP");
	if (!cluster_ip || !*cluster_ip || !strcmp(cluster_ip, "None")) {
		s->skip = "headless";
		return 0;
	}
	if (jarr(spec, "clusterIPs", &arr) < 0)
		return bad(err, len, "bad spec.clusterIPs");
	if (arr && json_object_array_length(arr)) {
		if (parse_addrs(arr, &s->cluster_ips, &s->n_cluster_ips,
				"spec.clusterIPs", err, len) < 0)
			return -1;
	} else {
		s->cluster_ips = calloc(1, sizeof(*s->cluster_ips));
		if (!s->cluster_ips)
			return bad(err, len, "out of memory");
		if (sync_addr_parse(cluster_ip, s->cluster_ips) < 0)
			return bad(err, len, "bad spec.clusterIP");
		s->n_cluster_ips = 1;
	}
	if (jarr(spec, "externalIPs", &arr) < 0 ||
	    parse_addrs(arr, &s->external_ips, &s->n_external_ips,
			"spec.externalIPs", err, len) < 0)
		return bad(err, len, "bad spec.externalIPs");

	/* Ports. */
	if (jarr(spec, "ports", &arr) < 0)
		return bad(err, len, "bad spec.ports");
	if (arr && json_object_array_length(arr)) {
		size_t cnt = json_object_array_length(arr);

		s->ports = calloc(cnt, sizeof(*s->ports));
		if (!s->ports)
			return bad(err, len, "out of memory");
		for (size_t i = 0; i < cnt; i++) {
			json_object *p = json_object_array_get_idx(arr, i);
			struct k8s_port *kp = &s->ports[i];
			const char *name, *proto;

			s->n_ports = i + 1;
			if (!p || !json_object_is_type(p, json_type_object))
				return bad(err, len, "bad spec.ports[%zu]", i);
			if (jstr(p, "name", &name) < 0 ||
			    (name && *name && !good_name(name, 63)))
				return bad(err, len, "bad spec.ports[%zu].name",
					   i);
			kp->name = strdup(name ? name : "");
			if (!kp->name)
				return bad(err, len, "out of memory");
			if (jstr(p, "protocol", &proto) < 0 ||
			    parse_proto(proto, &kp->proto) < 0)
				return bad(err, len, "bad spec.ports[%zu]"
					   ".protocol", i);
			if (jint(p, "port", &n, &present) < 0 || !present ||
			    n < 1 || n > 65535)
				return bad(err, len, "bad spec.ports[%zu].port",
					   i);
			kp->port = (uint16_t)n;
			if (jint(p, "nodePort", &n, &present) < 0 ||
			    (present && (n < 0 || n > 65535)))
				return bad(err, len, "bad spec.ports[%zu]"
					   ".nodePort", i);
			kp->node_port = present ? (uint16_t)n : 0;
			for (size_t j = 0; j < i; j++)
				if (!strcmp(s->ports[j].name, kp->name) &&
				    s->ports[j].proto == kp->proto)
					return bad(err, len, "duplicate port "
						   "name '%s'", kp->name);
		}
	}

	/* Options. */
	if (jstr(spec, "sessionAffinity", &v) < 0)
		return bad(err, len, "bad spec.sessionAffinity");
	if (v && !strcmp(v, "ClientIP")) {
		s->flags |= KVIP_SERVICE_F_AFFINITY;
		s->affinity_timeout = KVIP_AFFINITY_TIMEOUT_DEFAULT;
		if (jobj(spec, "sessionAffinityConfig", &sac) < 0 ||
		    jobj(sac, "clientIP", &cip) < 0 ||
		    jint(cip, "timeoutSeconds", &n, &present) < 0 ||
		    (present && (n < 1 || n > KVIP_AFFINITY_TIMEOUT_MAX)))
			return bad(err, len, "bad spec.sessionAffinityConfig");
		if (present)
			s->affinity_timeout = (uint32_t)n;
	}
	if (jstr(spec, "externalTrafficPolicy", &v) < 0)
		return bad(err, len, "bad spec.externalTrafficPolicy");
	if (v && !strcmp(v, "Local"))
		s->flags |= KVIP_SERVICE_F_EXTERNAL_LOCAL;
	if (jstr(spec, "internalTrafficPolicy", &v) < 0)
		return bad(err, len, "bad spec.internalTrafficPolicy");
	if (v && !strcmp(v, "Local"))
		s->flags |= KVIP_SERVICE_F_INTERNAL_LOCAL;
	if (jint(spec, "healthCheckNodePort", &n, &present) < 0 ||
	    (present && (n < 0 || n > 65535)))
		return bad(err, len, "bad spec.healthCheckNodePort");
	if (present && is_lb && (s->flags & KVIP_SERVICE_F_EXTERNAL_LOCAL))
		s->hc_node_port = (uint16_t)n;

	if (jarr(spec, "loadBalancerSourceRanges", &arr) < 0)
		return bad(err, len, "bad spec.loadBalancerSourceRanges");
	if (is_lb && arr && json_object_array_length(arr)) {
		size_t cnt = json_object_array_length(arr);

		if (cnt > KVIP_SOURCE_RANGES_MAX)
			return bad(err, len, "more than %d "
				   "loadBalancerSourceRanges",
				   KVIP_SOURCE_RANGES_MAX);
		s->source_ranges = calloc(cnt, sizeof(*s->source_ranges));
		if (!s->source_ranges)
			return bad(err, len, "out of memory");
		for (size_t i = 0; i < cnt; i++) {
			json_object *r = json_object_array_get_idx(arr, i);

			if (!r || !json_object_is_type(r, json_type_string) ||
			    sync_cidr_parse(json_object_get_string(r),
					    &s->source_ranges[i]) < 0)
				return bad(err, len, "bad spec."
					   "loadBalancerSourceRanges[%zu]", i);
			s->n_source_ranges++;
		}
	}

	/* Load balancer ingress IPs, VIP mode only. */
	if (jobj(o, "status", &st) < 0 || jobj(st, "loadBalancer", &lb) < 0 ||
	    jarr(lb, "ingress", &arr) < 0)
		return bad(err, len, "bad status.loadBalancer");
	if (arr && json_object_array_length(arr)) {
		size_t cnt = json_object_array_length(arr);

		s->lb_ips = calloc(cnt, sizeof(*s->lb_ips));
		if (!s->lb_ips)
			return bad(err, len, "out of memory");
		for (size_t i = 0; i < cnt; i++) {
			json_object *in = json_object_array_get_idx(arr, i);
			const char *ip, *mode;

			if (jstr(in, "ip", &ip) < 0 ||
			    jstr(in, "ipMode", &mode) < 0)
				return bad(err, len, "bad status.loadBalancer"
					   ".ingress[%zu]", i);
			if (!ip || !*ip || (mode && strcmp(mode, "VIP")))
				continue;
			if (sync_addr_parse(ip, &s->lb_ips[s->n_lb_ips]) < 0)
				return bad(err, len, "bad status.loadBalancer"
					   ".ingress[%zu].ip", i);
			s->n_lb_ips++;
		}
	}
	return 0;
}

struct k8s_service *k8s_service_parse(json_object *o, char *err, size_t len)
{
	struct k8s_service *s = calloc(1, sizeof(*s));
	json_object *labels;
	const char *rv;

	if (!s) {
		bad(err, len, "out of memory");
		return NULL;
	}
	if (!o || !json_object_is_type(o, json_type_object)) {
		bad(err, len, "not an object");
		goto fail;
	}
	if (meta_key(o, true, &s->key, &rv, &labels, err, len) < 0)
		goto fail;
	s->rv = strdup(rv ? rv : "");
	if (!s->rv || service_body(s, o, labels, err, len) < 0)
		goto fail;
	return s;
fail:
	k8s_service_free(s);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* EndpointSlice                                                      */

void k8s_slice_free(struct k8s_slice *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_ports; i++)
		free(s->ports[i].name);
	for (size_t i = 0; i < s->n_eps; i++) {
		struct k8s_endpoint *e = &s->eps[i];

		free(e->node_name);
		free(e->zone);
		for (size_t j = 0; j < e->n_hints; j++)
			free(e->hints[j]);
		free(e->hints);
	}
	free(s->ports);
	free(s->eps);
	free(s->key);
	free(s->svc_key);
	free(s->rv);
	free(s);
}

static int slice_endpoint(struct k8s_slice *s, json_object *ep, size_t i,
			  char *err, size_t len)
{
	struct k8s_endpoint *e = &s->eps[s->n_eps++];
	json_object *addrs, *cond, *hints, *zones, *a0;
	const char *v;

	/* Counted at once so that a failure below frees what it holds. */
	if (!ep || !json_object_is_type(ep, json_type_object))
		return bad(err, len, "bad endpoints[%zu]", i);
	if (jarr(ep, "addresses", &addrs) < 0)
		return bad(err, len, "bad endpoints[%zu].addresses", i);
	if (jobj(ep, "conditions", &cond) < 0 ||
	    jbool(cond, "ready", true, &e->ready) < 0 ||
	    jbool(cond, "serving", true, &e->serving) < 0 ||
	    jbool(cond, "terminating", false, &e->terminating) < 0)
		return bad(err, len, "bad endpoints[%zu].conditions", i);
	if (jstr(ep, "nodeName", &v) < 0)
		return bad(err, len, "bad endpoints[%zu].nodeName", i);
	if (v && !(e->node_name = strdup(v)))
		return bad(err, len, "out of memory");
	if (jstr(ep, "zone", &v) < 0)
		return bad(err, len, "bad endpoints[%zu].zone", i);
	if (v && !(e->zone = strdup(v)))
		return bad(err, len, "out of memory");
	if (jobj(ep, "hints", &hints) < 0 || jarr(hints, "forZones", &zones) < 0)
		return bad(err, len, "bad endpoints[%zu].hints", i);
	if (zones && json_object_array_length(zones)) {
		size_t cnt = json_object_array_length(zones);

		e->hints = calloc(cnt, sizeof(*e->hints));
		if (!e->hints)
			return bad(err, len, "out of memory");
		for (size_t j = 0; j < cnt; j++) {
			json_object *z = json_object_array_get_idx(zones, j);

			if (jstr(z, "name", &v) < 0 || !v)
				return bad(err, len, "bad endpoints[%zu].hints"
					   ".forZones[%zu]", i, j);
			e->hints[e->n_hints] = strdup(v);
			if (!e->hints[e->n_hints])
				return bad(err, len, "out of memory");
			e->n_hints++;
		}
	}
	if (!addrs || !json_object_array_length(addrs)) {
		s->n_eps--;	/* no address: ignored, as kube-proxy does */
		free(e->node_name);
		free(e->zone);
		for (size_t j = 0; j < e->n_hints; j++)
			free(e->hints[j]);
		free(e->hints);
		memset(e, 0, sizeof(*e));
		return 0;
	}
	if (!s->family)
		return 0;	/* FQDN: kept for nothing */
	a0 = json_object_array_get_idx(addrs, 0);
	if (!a0 || !json_object_is_type(a0, json_type_string) ||
	    sync_addr_parse(json_object_get_string(a0), &e->a) < 0 ||
	    e->a.family != s->family)
		return bad(err, len, "bad endpoints[%zu].addresses[0]", i);
	return 0;
}

struct k8s_slice *k8s_slice_parse(json_object *o, char *err, size_t len)
{
	struct k8s_slice *s = calloc(1, sizeof(*s));
	json_object *labels, *arr;
	const char *rv, *at, *svc;

	if (!s) {
		bad(err, len, "out of memory");
		return NULL;
	}
	if (!o || !json_object_is_type(o, json_type_object)) {
		bad(err, len, "not an object");
		goto fail;
	}
	if (meta_key(o, true, &s->key, &rv, &labels, err, len) < 0)
		goto fail;
	s->rv = strdup(rv ? rv : "");
	if (!s->rv)
		goto nomem;
	if (jstr(labels, LABEL_SERVICE_NAME, &svc) < 0) {
		bad(err, len, "bad label " LABEL_SERVICE_NAME);
		goto fail;
	}
	if (svc) {
		if (!good_name(svc, 253)) {
			bad(err, len, "bad label " LABEL_SERVICE_NAME);
			goto fail;
		}
		if (asprintf(&s->svc_key, "%.*s/%s",
			     (int)(strchr(s->key, '/') - s->key), s->key,
			     svc) < 0) {
			s->svc_key = NULL;
			goto nomem;
		}
	}
	if (jstr(o, "addressType", &at) < 0 || !at) {
		bad(err, len, "bad addressType");
		goto fail;
	}
	s->family = !strcmp(at, "IPv4") ? AF_INET :
		    !strcmp(at, "IPv6") ? AF_INET6 : 0;

	if (jarr(o, "ports", &arr) < 0) {
		bad(err, len, "bad ports");
		goto fail;
	}
	if (arr && json_object_array_length(arr)) {
		size_t cnt = json_object_array_length(arr);

		s->ports = calloc(cnt, sizeof(*s->ports));
		if (!s->ports)
			goto nomem;
		for (size_t i = 0; i < cnt; i++) {
			json_object *p = json_object_array_get_idx(arr, i);
			struct k8s_port *kp = &s->ports[s->n_ports];
			const char *name, *proto;
			bool present;
			int64_t n;

			if (!p || !json_object_is_type(p, json_type_object) ||
			    jstr(p, "name", &name) < 0 ||
			    jstr(p, "protocol", &proto) < 0 ||
			    parse_proto(proto, &kp->proto) < 0 ||
			    jint(p, "port", &n, &present) < 0 ||
			    (present && (n < 0 || n > 65535))) {
				bad(err, len, "bad ports[%zu]", i);
				goto fail;
			}
			/* nil name, nil or 0 port: ignored (kube-proxy). */
			if (!name || !present || !n)
				continue;
			kp->name = strdup(name);
			if (!kp->name)
				goto nomem;
			kp->port = (uint16_t)n;
			s->n_ports++;
		}
	}
	if (jarr(o, "endpoints", &arr) < 0) {
		bad(err, len, "bad endpoints");
		goto fail;
	}
	if (arr && json_object_array_length(arr)) {
		size_t cnt = json_object_array_length(arr);

		s->eps = calloc(cnt, sizeof(*s->eps));
		if (!s->eps)
			goto nomem;
		for (size_t i = 0; i < cnt; i++)
			if (slice_endpoint(s, json_object_array_get_idx(arr, i),
					   i, err, len) < 0)
				goto fail;
	}
	return s;
nomem:
	bad(err, len, "out of memory");
fail:
	k8s_slice_free(s);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Node                                                               */

void k8s_node_free(struct k8s_node *n)
{
	if (!n)
		return;
	free(n->key);
	free(n->rv);
	free(n->zone);
	free(n);
}

struct k8s_node *k8s_node_parse(json_object *o, char *err, size_t len)
{
	struct k8s_node *n = calloc(1, sizeof(*n));
	json_object *labels;
	const char *rv, *zone;

	if (!n) {
		bad(err, len, "out of memory");
		return NULL;
	}
	if (!o || !json_object_is_type(o, json_type_object)) {
		bad(err, len, "not an object");
		goto fail;
	}
	if (meta_key(o, false, &n->key, &rv, &labels, err, len) < 0)
		goto fail;
	if (jstr(labels, LABEL_ZONE, &zone) < 0) {
		bad(err, len, "bad label " LABEL_ZONE);
		goto fail;
	}
	n->rv = strdup(rv ? rv : "");
	if (zone && *zone)
		n->zone = strdup(zone);
	return n;
fail:
	k8s_node_free(n);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Watch events                                                       */

void k8s_event_free(struct k8s_event *ev)
{
	if (ev->root)
		json_object_put(ev->root);
	memset(ev, 0, sizeof(*ev));
}

int k8s_event_parse(const char *line, size_t len, struct k8s_event *ev,
		    char *err, size_t errlen)
{
	static const char *const types[] = {
		[EV_ADDED] = "ADDED", [EV_MODIFIED] = "MODIFIED",
		[EV_DELETED] = "DELETED", [EV_BOOKMARK] = "BOOKMARK",
		[EV_ERROR] = "ERROR",
	};
	struct json_tokener *tok;
	const char *type;
	size_t i;

	memset(ev, 0, sizeof(*ev));
	if (len > INT32_MAX)
		return bad(err, errlen, "event too large");
	tok = json_tokener_new();
	if (!tok)
		return bad(err, errlen, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	ev->root = json_tokener_parse_ex(tok, line, (int)len);
	if (!ev->root || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		/* Allow trailing whitespace only. */
		size_t end = ev->root ? json_tokener_get_parse_end(tok) : 0;
		bool ok = ev->root != NULL;

		for (i = end; ok && i < len; i++)
			if (line[i] != ' ' && line[i] != '\r' &&
			    line[i] != '\t' && line[i] != '\n')
				ok = false;
		if (!ok) {
			bad(err, errlen, "invalid JSON: %s",
			    ev->root ? "trailing data" :
			    json_tokener_error_desc(
				    json_tokener_get_error(tok)));
			json_tokener_free(tok);
			k8s_event_free(ev);
			return -1;
		}
	}
	json_tokener_free(tok);
	if (jstr(ev->root, "type", &type) < 0 || !type) {
		k8s_event_free(ev);
		return bad(err, errlen, "event without type");
	}
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(type, types[i]))
			break;
	if (i == sizeof(types) / sizeof(types[0])) {
		k8s_event_free(ev);
		return bad(err, errlen, "unknown event type");
	}
	ev->type = (enum k8s_event_type)i;
	if (jobj(ev->root, "object", &ev->object) < 0 || !ev->object) {
		k8s_event_free(ev);
		return bad(err, errlen, "event without object");
	}
	ev->rv = k8s_object_rv(ev->object);
	if (ev->type == EV_ERROR) {
		bool present;
		int64_t code = 0;

		if (jint(ev->object, "code", &code, &present) < 0)
			code = 0;
		ev->code = (code >= 0 && code < 1000) ? (int)code : 0;
		if (jstr(ev->object, "message", &ev->message) < 0)
			ev->message = NULL;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The store                                                          */

void store_init(struct store *st, const char *node_name)
{
	memset(st, 0, sizeof(*st));
	map_init(&st->services);
	map_init(&st->slices);
	map_init(&st->by_service);
	map_init(&st->nodes);
	map_init(&st->dirty);
	st->node_name = node_name;
}

void store_free(struct store *st)
{
	struct map_iter it;
	struct map_entry *e;

	map_iter_init(&it, &st->services);
	while ((e = map_iter_next(&it)))
		k8s_service_free(e->val);
	map_iter_init(&it, &st->slices);
	while ((e = map_iter_next(&it)))
		k8s_slice_free(e->val);
	map_iter_init(&it, &st->nodes);
	while ((e = map_iter_next(&it)))
		k8s_node_free(e->val);
	map_iter_init(&it, &st->by_service);
	while ((e = map_iter_next(&it))) {
		struct slice_set *ss = e->val;

		free(ss->v);
		free(ss);
	}
	map_free(&st->services);
	map_free(&st->slices);
	map_free(&st->by_service);
	map_free(&st->nodes);
	map_free(&st->dirty);
	free(st->zone);
}

struct map *store_map(struct store *st, enum k8s_kind kind)
{
	return kind == K8S_SERVICE ? &st->services :
	       kind == K8S_SLICE ? &st->slices : &st->nodes;
}

void *store_get(struct store *st, enum k8s_kind kind, const char *key)
{
	return map_get(store_map(st, kind), key);
}

void store_mark(struct store *st, const char *svc_key)
{
	if (svc_key)
		map_put(&st->dirty, svc_key, NULL, NULL);
}

void store_mark_all(struct store *st)
{
	struct map_iter it;
	struct map_entry *e;

	map_iter_init(&it, &st->services);
	while ((e = map_iter_next(&it)))
		store_mark(st, e->key);
	map_iter_init(&it, &st->by_service);
	while ((e = map_iter_next(&it)))
		store_mark(st, e->key);
}

static void index_del(struct store *st, struct k8s_slice *s)
{
	struct slice_set *ss;

	if (!s->svc_key)
		return;
	ss = map_get(&st->by_service, s->svc_key);
	if (!ss)
		return;
	for (size_t i = 0; i < ss->n; i++) {
		if (ss->v[i] == s) {
			ss->v[i] = ss->v[--ss->n];
			break;
		}
	}
	if (!ss->n) {
		map_del(&st->by_service, s->svc_key, NULL);
		free(ss->v);
		free(ss);
	}
}

static int index_add(struct store *st, struct k8s_slice *s)
{
	struct slice_set *ss;

	if (!s->svc_key)
		return 0;
	ss = map_get(&st->by_service, s->svc_key);
	if (!ss) {
		ss = calloc(1, sizeof(*ss));
		if (!ss || map_put(&st->by_service, s->svc_key, ss, NULL) < 0) {
			free(ss);
			return -ENOMEM;
		}
	}
	if (ss->n == ss->cap) {
		size_t cap = ss->cap ? ss->cap * 2 : 4;
		struct k8s_slice **v = realloc(ss->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ss->v = v;
		ss->cap = cap;
	}
	ss->v[ss->n++] = s;
	return 0;
}

static void node_update(struct store *st)
{
	struct k8s_node *n = st->node_name ?
		map_get(&st->nodes, st->node_name) : NULL;
	const char *zone = n ? n->zone : NULL;

	if ((!zone && !st->zone) || (zone && st->zone && !strcmp(zone, st->zone)))
		return;
	slog(LOG_INFO, "node zone changed", "node=%s zone=%s",
	     lq(st->node_name), lq(zone));
	free(st->zone);
	st->zone = zone ? strdup(zone) : NULL;
	store_mark_all(st);
}

int store_put(struct store *st, enum k8s_kind kind, void *obj)
{
	void *old = NULL;
	int ret;

	st->objects_seen[kind]++;
	switch (kind) {
	case K8S_SERVICE: {
		struct k8s_service *s = obj;

		ret = map_put(&st->services, s->key, s, &old);
		if (ret < 0) {
			k8s_service_free(s);
			return ret;
		}
		store_mark(st, s->key);
		k8s_service_free(old);
		return 0;
	}
	case K8S_SLICE: {
		struct k8s_slice *s = obj;

		ret = map_put(&st->slices, s->key, s, &old);
		if (ret < 0) {
			k8s_slice_free(s);
			return ret;
		}
		if (old) {
			index_del(st, old);
			store_mark(st, ((struct k8s_slice *)old)->svc_key);
			k8s_slice_free(old);
		}
		store_mark(st, s->svc_key);
		return index_add(st, s);
	}
	default: {
		struct k8s_node *n = obj;

		ret = map_put(&st->nodes, n->key, n, &old);
		if (ret < 0) {
			k8s_node_free(n);
			return ret;
		}
		k8s_node_free(old);
		node_update(st);
		return 0;
	}
	}
}

void store_del(struct store *st, enum k8s_kind kind, const char *key)
{
	void *old = map_del(store_map(st, kind), key, NULL);

	if (!old)
		return;
	st->objects_seen[kind]++;
	switch (kind) {
	case K8S_SERVICE:
		store_mark(st, key);
		k8s_service_free(old);
		break;
	case K8S_SLICE:
		index_del(st, old);
		store_mark(st, ((struct k8s_slice *)old)->svc_key);
		k8s_slice_free(old);
		break;
	default:
		k8s_node_free(old);
		node_update(st);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Canonical services                                                 */

static int cmp_fe(const void *pa, const void *pb)
{
	const struct kvip_frontend *a = pa, *b = pb;

	if (a->type != b->type)
		return a->type - b->type;
	if (a->family != b->family)
		return a->family - b->family;
	if (a->port != b->port)
		return a->port - b->port;
	return memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

static int cmp_ep(const void *pa, const void *pb)
{
	const struct kvip_endpoint *a = pa, *b = pb;
	int c;

	if (a->family != b->family)
		return a->family - b->family;
	c = memcmp(&a->addr, &b->addr, sizeof(a->addr));
	if (c)
		return c;
	return a->port - b->port;
}

static int cmp_cidr(const void *pa, const void *pb)
{
	const struct kvip_cidr *a = pa, *b = pb;

	if (a->family != b->family)
		return a->family - b->family;
	if (a->prefix != b->prefix)
		return a->prefix - b->prefix;
	return memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

void svc_canonicalize(struct kvip_service *s)
{
	if (s->n_frontends > 1)
		qsort(s->frontends, s->n_frontends, sizeof(*s->frontends),
		      cmp_fe);
	if (s->n_endpoints > 1)
		qsort(s->endpoints, s->n_endpoints, sizeof(*s->endpoints),
		      cmp_ep);
	if (s->n_source_ranges > 1)
		qsort(s->source_ranges, s->n_source_ranges,
		      sizeof(*s->source_ranges), cmp_cidr);
}

bool svc_same_header(const struct kvip_service *a,
		     const struct kvip_service *b, uint32_t flag_mask)
{
	uint32_t ta, tb;

	if (a->proto != b->proto ||
	    (a->flags & flag_mask) != (b->flags & flag_mask))
		return false;
	if ((a->flags & flag_mask) & KVIP_SERVICE_F_AFFINITY) {
		ta = a->affinity_timeout ? a->affinity_timeout :
					   KVIP_AFFINITY_TIMEOUT_DEFAULT;
		tb = b->affinity_timeout ? b->affinity_timeout :
					   KVIP_AFFINITY_TIMEOUT_DEFAULT;
		if (ta != tb)
			return false;
	}
	if (a->n_frontends != b->n_frontends ||
	    a->n_source_ranges != b->n_source_ranges)
		return false;
	for (size_t i = 0; i < a->n_frontends; i++)
		if (cmp_fe(&a->frontends[i], &b->frontends[i]))
			return false;
	for (size_t i = 0; i < a->n_source_ranges; i++)
		if (cmp_cidr(&a->source_ranges[i], &b->source_ranges[i]))
			return false;
	return true;
}

bool svc_same_endpoints(const struct kvip_service *a,
			const struct kvip_service *b)
{
	if (a->n_endpoints != b->n_endpoints)
		return false;
	for (size_t i = 0; i < a->n_endpoints; i++) {
		const struct kvip_endpoint *x = &a->endpoints[i];
		const struct kvip_endpoint *y = &b->endpoints[i];

		if (cmp_ep(x, y) || x->weight != y->weight ||
		    x->flags != y->flags)
			return false;
	}
	return true;
}

static void *dup_array(const void *src, size_t n, size_t size)
{
	void *p;

	if (!n)
		return NULL;
	p = malloc(n * size);
	if (p)
		memcpy(p, src, n * size);
	return p;
}

void svc_release(struct kvip_service *s)
{
	free(s->source_ranges);
	s->source_ranges = NULL;
	s->n_source_ranges = s->cap_source_ranges = 0;
	kvip_service_free(s);
}

void svc_list_release(struct kvip_service_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].source_ranges);
		l->v[i].source_ranges = NULL;
		l->v[i].n_source_ranges = l->v[i].cap_source_ranges = 0;
	}
	kvip_service_list_free(l);
}

int svc_copy(struct kvip_service *dst, const struct kvip_service *src)
{
	*dst = *src;
	dst->frontends = dup_array(src->frontends, src->n_frontends,
				   sizeof(*src->frontends));
	dst->endpoints = dup_array(src->endpoints, src->n_endpoints,
				   sizeof(*src->endpoints));
	dst->source_ranges = dup_array(src->source_ranges,
				       src->n_source_ranges,
				       sizeof(*src->source_ranges));
	dst->affinity = NULL;
	dst->n_affinity = dst->cap_affinity = 0;
	dst->cap_frontends = dst->n_frontends;
	dst->cap_endpoints = dst->n_endpoints;
	dst->cap_source_ranges = dst->n_source_ranges;
	if ((src->n_frontends && !dst->frontends) ||
	    (src->n_endpoints && !dst->endpoints) ||
	    (src->n_source_ranges && !dst->source_ranges)) {
		free(dst->frontends);
		free(dst->endpoints);
		free(dst->source_ranges);
		memset(dst, 0, sizeof(*dst));
		return -ENOMEM;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Desired state                                                      */

int model_key_of(const char *name, char *buf, size_t len)
{
	const char *slash = strrchr(name, '/'), *colon, *first;
	size_t n;

	if (!slash)
		return -1;
	n = (size_t)(slash - name);
	colon = memchr(name, ':', n);
	if (colon)
		n = (size_t)(colon - name);
	first = memchr(name, '/', n);
	if (!first || first == name || n == (size_t)(first - name) + 1 ||
	    n >= len)
		return -1;
	memcpy(buf, name, n);
	buf[n] = '\0';
	return 0;
}

static int cmp_slice(const void *a, const void *b)
{
	return strcmp((*(struct k8s_slice *const *)a)->key,
		      (*(struct k8s_slice *const *)b)->key);
}

struct cand {
	struct kvip_endpoint ep;
	const struct k8s_endpoint *src;
	size_t ord;		/* slice order */
};

static int cmp_cand(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;
	int c = cmp_ep(&a->ep, &b->ep);

	if (c)
		return c;
	/* The local copy first, then slice order (stable by index). */
	if ((a->ep.flags & KVIP_ENDPOINT_F_LOCAL) !=
	    (b->ep.flags & KVIP_ENDPOINT_F_LOCAL))
		return (a->ep.flags & KVIP_ENDPOINT_F_LOCAL) ? -1 : 1;
	return a->ord < b->ord ? -1 : a->ord > b->ord;
}

static bool has_hint(const struct k8s_endpoint *e, const char *zone)
{
	for (size_t i = 0; i < e->n_hints; i++)
		if (!strcmp(e->hints[i], zone))
			return true;
	return false;
}

static bool svc_has_family(const struct k8s_service *s, uint16_t family)
{
	for (size_t i = 0; i < s->n_cluster_ips; i++)
		if (s->cluster_ips[i].family == family)
			return true;
	return false;
}

static int add_fe(struct kvip_service *k, uint8_t type,
		  const struct k8s_addr *a, uint16_t port)
{
	struct kvip_frontend fe = { .type = type, .port = port };

	if (a) {
		fe.family = a->family;
		fe.addr = a->addr;
	}
	for (size_t i = 0; i < k->n_frontends; i++)
		if (!cmp_fe(&k->frontends[i], &fe))
			return 0;
	if (k->n_frontends >= KVIP_FRONTENDS_MAX)
		return -E2BIG;
	if (k->n_frontends == k->cap_frontends) {
		size_t cap = k->cap_frontends ? k->cap_frontends * 2 : 4;
		struct kvip_frontend *v = realloc(k->frontends,
						  cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		k->frontends = v;
		k->cap_frontends = cap;
	}
	k->frontends[k->n_frontends++] = fe;
	return 0;
}

/* The endpoints of one service port into k. */
static int port_endpoints(struct store *st, const struct k8s_service *s,
			  const struct k8s_port *p, struct k8s_slice **slices,
			  size_t nslices, struct kvip_service *k)
{
	struct cand *c = NULL;
	size_t n = 0, cap = 0, out = 0;
	bool all_hints = true, zone_match = false, use_zone;

	for (size_t i = 0; i < nslices; i++) {
		const struct k8s_slice *sl = slices[i];

		if (!sl->family || !svc_has_family(s, sl->family))
			continue;
		for (size_t j = 0; j < sl->n_ports; j++) {
			const struct k8s_port *sp = &sl->ports[j];

			if (strcmp(sp->name, p->name) || sp->proto != p->proto)
				continue;
			for (size_t e = 0; e < sl->n_eps; e++) {
				const struct k8s_endpoint *ke = &sl->eps[e];
				struct cand *x;

				if (n == cap) {
					struct cand *v;

					cap = cap ? cap * 2 : 16;
					v = realloc(c, cap * sizeof(*v));
					if (!v) {
						free(c);
						return -ENOMEM;
					}
					c = v;
				}
				x = &c[n++];
				memset(x, 0, sizeof(*x));
				x->src = ke;
				x->ord = n - 1;
				x->ep.family = ke->a.family;
				x->ep.addr = ke->a.addr;
				x->ep.port = sp->port;
				x->ep.weight = KVIP_WEIGHT_DEFAULT;
				x->ep.flags =
					(ke->ready ? KVIP_ENDPOINT_F_READY : 0) |
					(ke->serving ? KVIP_ENDPOINT_F_SERVING : 0) |
					(ke->terminating ?
					 KVIP_ENDPOINT_F_TERMINATING : 0);
				if (st->node_name && ke->node_name &&
				    !strcmp(ke->node_name, st->node_name))
					x->ep.flags |= KVIP_ENDPOINT_F_LOCAL;
			}
		}
	}
	if (n > 1)
		qsort(c, n, sizeof(*c), cmp_cand);
	/* Dedup by address and port: the first (local) copy wins. */
	for (size_t i = 0; i < n; i++) {
		if (out && !cmp_ep(&c[out - 1].ep, &c[i].ep))
			continue;
		c[out++] = c[i];
	}
	n = out;

	/* Zone hints (PreferSameZone), over the ready endpoints. */
	for (size_t i = 0; i < n; i++) {
		if (!c[i].src->ready)
			continue;
		if (!c[i].src->n_hints)
			all_hints = false;
		else if (st->zone && has_hint(c[i].src, st->zone))
			zone_match = true;
	}
	use_zone = st->zone && all_hints && zone_match;

	out = 0;
	for (size_t i = 0; i < n; i++) {
		const struct k8s_endpoint *ke = c[i].src;

		if (!ke->ready && !(ke->serving && ke->terminating))
			continue;
		if (use_zone && ke->ready && !has_hint(ke, st->zone))
			continue;
		if (out >= KVIP_ENDPOINTS_MAX)
			break;
		c[out++] = c[i];
	}
	k->endpoints = out ? malloc(out * sizeof(*k->endpoints)) : NULL;
	if (out && !k->endpoints) {
		free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < out; i++)
		k->endpoints[i] = c[i].ep;
	k->n_endpoints = k->cap_endpoints = out;
	k->has_endpoints = true;
	free(c);
	return 0;
}

static const char *proto_lc(uint8_t p)
{
	return p == IPPROTO_UDP ? "udp" : p == IPPROTO_SCTP ? "sctp" : "tcp";
}

static int list_grow(struct kvip_service_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct kvip_service *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	return 0;
}

int model_desired(struct store *st, const char *svc_key,
		  struct kvip_service_list *out)
{
	const struct k8s_service *s = map_get(&st->services, svc_key);
	struct slice_set *ss = map_get(&st->by_service, svc_key);
	struct k8s_slice **slices = NULL;
	size_t nslices = ss ? ss->n : 0;
	int added = 0, ret = 0;

	if (!s || s->skip)
		return 0;
	if (nslices) {
		slices = malloc(nslices * sizeof(*slices));
		if (!slices)
			return -ENOMEM;
		memcpy(slices, ss->v, nslices * sizeof(*slices));
		qsort(slices, nslices, sizeof(*slices), cmp_slice);
	}
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct k8s_port *p = &s->ports[i];
		struct kvip_service *k;
		int n;

		if (list_grow(out) < 0) {
			ret = -ENOMEM;
			break;
		}
		k = &out->v[out->n];
		kvip_service_init(k);
		n = snprintf(k->name, sizeof(k->name), "%s%s%s/%s", svc_key,
			     *p->name ? ":" : "", p->name, proto_lc(p->proto));
		if (n < 0 || (size_t)n > KVIP_NAME_MAX) {
			slog(LOG_WARN, "skipping service port", "service=%s "
			     "port=%s reason=\"name too long\"", lq(svc_key),
			     lq(p->name));
			continue;
		}
		k->proto = p->proto;
		k->flags = s->flags | st->stats_flags | KVIP_SERVICE_F_MANAGED;
		k->affinity_timeout = (s->flags & KVIP_SERVICE_F_AFFINITY) ?
				      s->affinity_timeout : 0;
		for (size_t j = 0; !ret && j < s->n_cluster_ips; j++)
			ret = add_fe(k, KVIP_FRONTEND_CLUSTERIP,
				     &s->cluster_ips[j], p->port);
		if (!ret && p->node_port)
			ret = add_fe(k, KVIP_FRONTEND_NODEPORT, NULL,
				     p->node_port);
		for (size_t j = 0; !ret && j < s->n_external_ips; j++)
			ret = add_fe(k, KVIP_FRONTEND_EXTERNAL,
				     &s->external_ips[j], p->port);
		for (size_t j = 0; !ret && j < s->n_lb_ips; j++)
			ret = add_fe(k, KVIP_FRONTEND_EXTERNAL, &s->lb_ips[j],
				     p->port);
		if (!ret && s->n_source_ranges) {
			k->source_ranges = dup_array(s->source_ranges,
						     s->n_source_ranges,
						     sizeof(*s->source_ranges));
			if (!k->source_ranges)
				ret = -ENOMEM;
			else
				k->n_source_ranges = k->cap_source_ranges =
					s->n_source_ranges;
		}
		if (!ret)
			ret = port_endpoints(st, s, p, slices, nslices, k);
		if (ret == -E2BIG) {
			slog(LOG_WARN, "skipping service port", "service=%s "
			     "port=%s reason=\"more than %d frontends\"",
			     lq(svc_key), lq(p->name), KVIP_FRONTENDS_MAX);
			svc_release(k);
			ret = 0;
			continue;
		}
		if (ret) {
			svc_release(k);
			break;
		}
		svc_canonicalize(k);
		out->n++;
		added++;
	}
	free(slices);
	return ret < 0 ? ret : added;
}

uint16_t model_health_check(struct store *st, const char *svc_key,
			    unsigned *local_ready)
{
	const struct k8s_service *s = map_get(&st->services, svc_key);
	struct slice_set *ss = map_get(&st->by_service, svc_key);
	struct k8s_addr *seen = NULL;
	size_t nseen = 0, cap = 0;

	*local_ready = 0;
	if (!s || s->skip || !s->hc_node_port)
		return 0;
	for (size_t i = 0; ss && st->node_name && i < ss->n; i++) {
		const struct k8s_slice *sl = ss->v[i];

		if (!sl->family || !svc_has_family(s, sl->family))
			continue;
		for (size_t e = 0; e < sl->n_eps; e++) {
			const struct k8s_endpoint *ke = &sl->eps[e];
			bool dup = false;

			if (!ke->ready || !ke->node_name ||
			    strcmp(ke->node_name, st->node_name))
				continue;
			for (size_t j = 0; j < nseen && !dup; j++)
				dup = seen[j].family == ke->a.family &&
				      !memcmp(&seen[j].addr, &ke->a.addr,
					      sizeof(ke->a.addr));
			if (dup)
				continue;
			if (nseen == cap) {
				struct k8s_addr *v;

				cap = cap ? cap * 2 : 8;
				v = realloc(seen, cap * sizeof(*v));
				if (!v)
					break;
				seen = v;
			}
			seen[nseen++] = ke->a;
		}
	}
	free(seen);
	*local_ready = (unsigned)nseen;
	return s->hc_node_port;
}
