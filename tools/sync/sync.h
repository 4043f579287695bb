/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * kvipctl sync: program the kvip tables from the Kubernetes API.
 *
 *   log.c         structured logs (logfmt on stderr)
 *   kubeconfig.c  credentials: kubeconfig, in-cluster, --server
 *   api.c         HTTP client: list with paging, watch streams, backoff
 *   model.c       Service/EndpointSlice/Node JSON -> objects -> desired
 *                 kernel services (kube-proxy's mapping rules)
 *   reconcile.c   kernel table <-> desired state: diff and apply
 *   server.c      /healthz, /metrics, health-check node ports
 *   sync.c        options and the main loop (sync_main)
 *
 * Everything but server.c's HTTP threads runs on one thread; what those
 * threads read (struct sync_status) is guarded by its mutex.
 */
#ifndef KVIP_SYNC_H
#define KVIP_SYNC_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvip.h"
#include "map.h"

/* ------------------------------------------------------------------ */
/* log.c                                                              */

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };
extern int log_level;

/*
 * One logfmt line on stderr:
 *   ts=2026-01-02T03:04:05.678Z level=info msg="..." KEY=VALUE...
 * fmt/... produce the KEY=VALUE part; quote untrusted values with lq().
 */
void slog(int level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define slog_on(level) ((level) <= log_level)
/* A logfmt-quoted copy of s ("..." with escapes) in a rotating buffer. */
const char *lq(const char *s);
/* Monotonic and wall clocks, milliseconds. */
int64_t now_ms(void);
int64_t wall_ms(void);
double now_s(void);

/* ------------------------------------------------------------------ */
/* kubeconfig.c                                                       */

/* How to reach and authenticate to the API server. */
struct api_creds {
	char *server;		/* https://host:port, no trailing slash */
	char *source;		/* for messages: "kubeconfig FILE", ... */
	char *ca_file;
	char *ca_data;		/* PEM */
	size_t ca_data_len;
	char *cert_file, *key_file;
	char *cert_data, *key_data;
	size_t cert_data_len, key_data_len;
	char *token;		/* static token */
	char *token_file;	/* re-read when it changes and on 401 */
	char *tls_server_name;
	bool insecure;
};

struct creds_opts {
	const char *kubeconfig;		/* --kubeconfig */
	const char *context;		/* --context */
	const char *server;		/* --server */
	const char *token_file;		/* --token-file */
	const char *ca_file;		/* --ca-file */
	bool insecure;			/* --insecure-skip-tls-verify */
	/* For tests: the in-cluster service-account directory. */
	const char *sa_dir;
};

/*
 * Resolve credentials: --server [--token-file] [--ca-file]; --kubeconfig;
 * $KUBECONFIG (colon-separated, merged: first value wins); in-cluster
 * ($KUBERNETES_SERVICE_HOST/PORT and the service account files); then
 * ~/.kube/config. --server also overrides the server of a kubeconfig.
 * 0, or -1 with a message in err.
 */
int creds_load(const struct creds_opts *o, struct api_creds *c, char *err,
	       size_t errlen);
/* Parse one kubeconfig document (for tests/fuzzing); dir resolves paths. */
int kubeconfig_parse(const char *text, size_t len, const char *dir,
		     const char *context, struct api_creds *c, char *err,
		     size_t errlen);
void creds_free(struct api_creds *c);
/* Base64 (standard, with or without padding); NULL on bad input. */
char *b64_decode(const char *s, size_t *len);

/* ------------------------------------------------------------------ */
/* model.c                                                            */

struct k8s_port {
	char *name;		/* "" for an unnamed port */
	uint8_t proto;
	uint16_t port;
	uint16_t node_port;
};

struct k8s_addr {
	uint16_t family;
	union kvip_addr addr;
};

struct k8s_service {
	char *key;		/* namespace/name */
	char *rv;
	const char *skip;	/* not programmed, and why (static) */
	struct k8s_addr *cluster_ips, *external_ips, *lb_ips;
	size_t n_cluster_ips, n_external_ips, n_lb_ips;
	struct kvip_cidr *source_ranges;
	size_t n_source_ranges;
	struct k8s_port *ports;
	size_t n_ports;
	uint32_t flags;		/* KVIP_SERVICE_F_* options */
	uint32_t affinity_timeout;
	uint16_t hc_node_port;	/* LoadBalancer + externalTrafficPolicy Local */
};

struct k8s_endpoint {
	struct k8s_addr a;
	bool ready, serving, terminating;
	char *node_name;
	char *zone;
	char **hints;		/* hints.forZones[].name */
	size_t n_hints;
};

struct k8s_slice {
	char *key;		/* namespace/name of the slice */
	char *svc_key;		/* namespace/<kubernetes.io/service-name>, or NULL */
	char *rv;
	uint16_t family;	/* AF_INET, AF_INET6; 0: FQDN, ignored */
	struct k8s_port *ports;	/* name, proto, port */
	size_t n_ports;
	struct k8s_endpoint *eps;
	size_t n_eps;
};

struct k8s_node {
	char *key;		/* name */
	char *rv;
	char *zone;		/* topology.kubernetes.io/zone, or NULL */
};

enum k8s_kind { K8S_SERVICE, K8S_SLICE, K8S_NODE, K8S_NKINDS };

/* Parse an object; NULL with a reason in err (the object is skipped). */
struct k8s_service *k8s_service_parse(json_object *o, char *err, size_t len);
struct k8s_slice *k8s_slice_parse(json_object *o, char *err, size_t len);
struct k8s_node *k8s_node_parse(json_object *o, char *err, size_t len);
void k8s_service_free(struct k8s_service *s);
void k8s_slice_free(struct k8s_slice *s);
void k8s_node_free(struct k8s_node *n);
/* "namespace/name" of an object (for messages), or NULL. */
char *k8s_object_key(json_object *o);
const char *k8s_object_rv(json_object *o);

enum k8s_event_type {
	EV_ADDED, EV_MODIFIED, EV_DELETED, EV_BOOKMARK, EV_ERROR,
};

struct k8s_event {
	enum k8s_event_type type;
	json_object *root;	/* owns object */
	json_object *object;
	const char *rv;		/* object's metadata.resourceVersion or NULL */
	int code;		/* ERROR: Status code */
	const char *message;	/* ERROR: Status message */
};
/* One line of a watch stream. 0, or -1 with a reason. */
int k8s_event_parse(const char *line, size_t len, struct k8s_event *ev,
		    char *err, size_t errlen);
void k8s_event_free(struct k8s_event *ev);

/* The objects the API gave us, and who needs a new sync. */
struct slice_set {
	struct k8s_slice **v;
	size_t n, cap;
};

struct store {
	struct map services;	/* key -> struct k8s_service */
	struct map slices;	/* key -> struct k8s_slice */
	struct map by_service;	/* svc_key -> struct slice_set */
	struct map nodes;	/* name -> struct k8s_node (ours only) */
	const char *node_name;	/* --node-name, or NULL */
	uint32_t stats_flags;	/* --conn-stats, --endpoint-stats */
	char *zone;		/* this node's zone, or NULL */
	struct map dirty;	/* svc_key -> NULL: needs a sync */
	uint64_t objects_seen[K8S_NKINDS];
};

void store_init(struct store *st, const char *node_name);
void store_free(struct store *st);
/* Insert/replace (takes ownership) or delete an object; marks dirty. */
int store_put(struct store *st, enum k8s_kind kind, void *obj);
void store_del(struct store *st, enum k8s_kind kind, const char *key);
void *store_get(struct store *st, enum k8s_kind kind, const char *key);
struct map *store_map(struct store *st, enum k8s_kind kind);
void store_mark(struct store *st, const char *svc_key);
void store_mark_all(struct store *st);

/* A CIDR parser ("10.0.0.0/8", "fd00::/64"; host bits are cleared). */
int sync_cidr_parse(const char *s, struct kvip_cidr *c);
/* Parse an IP address (no brackets). */
int sync_addr_parse(const char *s, struct k8s_addr *a);

/*
 * The kernel services wanted for one Kubernetes service (svc_key), one per
 * port, named "NAMESPACE/NAME:PORT/PROTO" ("NAMESPACE/NAME/PROTO" for an
 * unnamed port). Appends to out (frontends, endpoints sorted). Returns the
 * number appended or -errno; a port that cannot be programmed is skipped
 * and logged.
 */
int model_desired(struct store *st, const char *svc_key,
		  struct kvip_service_list *out);
/* The Kubernetes service key of a kernel service name, into buf. */
int model_key_of(const char *name, char *buf, size_t len);
/*
 * Health-check node port of a service (0: none) and its number of local
 * ready endpoints.
 */
uint16_t model_health_check(struct store *st, const char *svc_key,
			    unsigned *local_ready);

/* Canonical order and comparison of services (reconcile and tests). */
void svc_canonicalize(struct kvip_service *s);
/* Proto, flags, options and frontends equal (masking unsupported flags). */
bool svc_same_header(const struct kvip_service *a,
		     const struct kvip_service *b, uint32_t flag_mask);
bool svc_same_endpoints(const struct kvip_service *a,
			const struct kvip_service *b);
int svc_copy(struct kvip_service *dst, const struct kvip_service *src);
/*
 * kvip_service_free()/kvip_service_list_free() that also free the option
 * arrays (source ranges), whichever libkvip is linked.
 */
void svc_release(struct kvip_service *s);
void svc_list_release(struct kvip_service_list *l);

/* ------------------------------------------------------------------ */
/* server.c: state shared with the HTTP threads                       */

#define SYNC_HIST_BUCKETS 12

struct sync_status {
	pthread_mutex_t lock;
	/* health */
	bool synced;			/* initial lists done and applied */
	int64_t last_update_ms;		/* wall clock of the last good sync */
	int64_t pending_since_ms;	/* monotonic; 0: nothing pending */
	int64_t health_timeout_ms;
	/* metrics */
	uint64_t hist[SYNC_HIST_BUCKETS + 1];
	double hist_sum;
	uint64_t hist_count;
	uint64_t objects_seen[K8S_NKINDS];
	uint64_t api_errors[K8S_NKINDS];
	uint64_t watch_restarts[K8S_NKINDS];
	uint64_t relists[K8S_NKINDS];
	uint64_t skipped_objects[K8S_NKINDS];
	uint64_t kernel_ops, kernel_errors;
	uint64_t services_programmed, endpoints_programmed;
	/* health-check node ports: svc_key -> struct hc_entry */
	struct map hc;
};

extern struct sync_status g_status;
extern const double sync_hist_bounds[SYNC_HIST_BUCKETS];

void status_init(int64_t health_timeout_ms);
void status_free(void);
void status_lock(void);
void status_unlock(void);
void status_observe_sync(double seconds);

/* Start the health and metrics servers ("" or NULL: disabled). */
int server_start(const char *healthz_addr, const char *metrics_addr);
void server_stop(void);
/* Start/stop health-check node port servers to match g_status.hc. */
void server_hc_update(struct map *wanted);	/* svc_key -> struct hc_entry */
struct hc_entry {
	uint16_t port;
	unsigned local_ready;
};

/* ------------------------------------------------------------------ */
/* api.c                                                              */

struct api;

struct api_resource_desc {
	enum k8s_kind kind;
	const char *name;	/* "services" */
	const char *path;	/* "/api/v1/services" */
	const char *label_selector;
	const char *field_selector;
	/* Its first list may fail (no RBAC): sync starts without it. */
	bool optional;
};

/* Callbacks into sync.c. */
struct api_handler {
	/* A relist starts/completes (complete: replace the store). */
	void (*list_begin)(void *arg, enum k8s_kind kind);
	void (*list_item)(void *arg, enum k8s_kind kind, json_object *item);
	void (*list_end)(void *arg, enum k8s_kind kind);
	void (*event)(void *arg, enum k8s_kind kind, struct k8s_event *ev);
	void *arg;
};

int api_new(struct api **ap, const struct api_creds *c,
	    const struct api_handler *h, char *err, size_t errlen);
void api_free(struct api *a);
int api_add_resource(struct api *a, const struct api_resource_desc *d);
/* True once every resource completed its first list. */
bool api_initial_sync_done(struct api *a);
/*
 * Run transfers for at most timeout_ms (returns earlier on activity).
 * Handlers are called from here.
 */
int api_poll(struct api *a, int timeout_ms);
/* When api_poll should next be called at the latest (ms from now). */
int api_next_timeout(struct api *a);

/* ------------------------------------------------------------------ */
/* reconcile.c                                                        */

struct reconciler;

struct reconcile_opts {
	bool dry_run;
	bool json;		/* print the desired state after each pass */
	FILE *out;
};

int reconciler_new(struct reconciler **rp, const struct reconcile_opts *o,
		   char *err, size_t errlen);
void reconciler_free(struct reconciler *r);
/*
 * Read the kernel's table (not in dry-run): services with
 * KVIP_SERVICE_F_MANAGED are ours, the others are never touched.
 * Their keys are marked dirty in st.
 */
int reconciler_load_kernel(struct reconciler *r, struct store *st);
/*
 * Sync every dirty key of st (clearing it); failed keys are retried later
 * (reconciler_next_retry). Returns the number of kernel operations, or -1
 * if some failed.
 */
int reconciler_pass(struct reconciler *r, struct store *st);
/*
 * Compare the kernel's table with what sync believes it programmed (a
 * service changed or deleted by hand); differing keys are marked dirty so
 * that the next pass repairs them. Returns how many differed.
 */
int reconciler_verify(struct reconciler *r, struct store *st);
/* The first change of the next pass was seen at now_ms() == ms (logged as
 * the pass's latency_ms). */
void reconciler_note_change(struct reconciler *r, int64_t ms);
/* ms until a retry is due, or -1. */
int64_t reconciler_next_retry(struct reconciler *r);

#endif
