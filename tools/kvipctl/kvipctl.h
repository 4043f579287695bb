/* SPDX-License-Identifier: GPL-2.0 OR MIT */
#ifndef KVIPCTL_H
#define KVIPCTL_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "kvip.h"

#define PROG_NAME	"kvipctl"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* the kernel rejected a request, runtime error */
	EXIT_USAGE = 2,		/* invalid command line or input */
};

struct req;
typedef int (*run_fn)(struct kvip *k, struct req *r);

/*
 * A parsed command. Parsing fills it without side effects (so a batch can be
 * validated before anything is sent); run() executes it.
 */
enum req_kind {
	REQ_OTHER,
	REQ_SERVICE_ADD,
	REQ_ENDPOINTS_SET,
};

struct req {
	const char *label;	/* "service add", for messages */
	const char *name;	/* service name (points into argv) or NULL */
	run_fn run;		/* NULL: nothing to do */
	/*
	 * Changes: the library call alone, 0 or -errno, printing nothing
	 * (run is run_request). When the session pipelines, 0 means "queued":
	 * the answer comes later, through the pipeline's callback.
	 */
	int (*request)(struct kvip *k, struct req *r);
	enum req_kind kind;	/* what a batch may merge */
	bool needs_kernel;	/* run() needs a netlink session */
	bool json;
	bool replace;		/* service replace (else add) */
	void (*help)(FILE *f);	/* help requests */
	struct kvip_service svc;	/* frontends, endpoints; reused */
	struct kvip_config cfg;		/* config set */
};

/* Global options. */
extern bool opt_json;

/* Set while running a batch: "line 12: ". */
extern char line_prefix[32];

/*
 * The whole program but for stdout's buffering (main.c): global options,
 * parse, execute; returns the exit status. It keeps no state from one call
 * to the next, so the fuzz harnesses (tools/fuzz/) call it, always with
 * "-c" first: with -c/--check nothing is executed and no netlink session is
 * opened.
 */
int kvipctl_main(int argc, char **argv);

/* -n/-netns/--netns NETNS: whether A is that option; enter NETNS. */
bool kvipctl_is_netns_opt(const char *a);
int kvipctl_enter_netns(const char *ns);

/* Parsers for the top-level commands; argv[0] is the command word. */
int service_parse(int argc, char **argv, struct req *r);
int endpoints_parse(int argc, char **argv, struct req *r);
int config_parse(int argc, char **argv, struct req *r);
int monitor_parse(int argc, char **argv, struct req *r);

/* Usage texts. */
void usage_main(FILE *f);
void usage_service(FILE *f);
void usage_endpoints(FILE *f);
void usage_config(FILE *f);
void usage_monitor(FILE *f);

/*
 * Output of `service show`; sorts the list by name. @detail: one named
 * service, with its affinity entries.
 */
void show_services(struct kvip_service_list *list, bool json, bool detail);
/* Output of `config show`. */
void show_config(const struct kvip_config *cfg, bool json);
/* One event of `monitor`, flushed. */
int show_event(uint8_t cmd, const struct kvip_service *svc,
	       const struct kvip_config *cfg, bool json);

/* Report a failed request: "kvipctl: service add NAME: strerror: extack". */
int kernel_error(const struct req *r, int err, const struct kvip *k);
/* run() of the changes: r->request(), then report as above. */
int run_request(struct kvip *k, struct req *r);
/* Print the kernel's warning of a successful request, if any. */
void kernel_warning(const struct req *r, const struct kvip *k);

static inline bool is_help(const char *s)
{
	return s && (!strcmp(s, "-h") || !strcmp(s, "--help") ||
		     !strcmp(s, "help"));
}

#endif
