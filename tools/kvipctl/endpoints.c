// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl endpoints set NAME [ENDPOINT...]
 */
#include "kvipctl.h"
#include "parse.h"

static int request_set(struct kvip *k, struct req *r)
{
	return kvip_set_endpoints(k, r->name, r->svc.endpoints,
				  r->svc.n_endpoints);
}

static int set_parse(int argc, char **argv, struct req *r)
{
	r->label = "endpoints set";
	r->kind = REQ_ENDPOINTS_SET;
	if (argc < 2)
		return parse_fail("missing service NAME");
	if (parse_name(argv[1]) < 0)
		return -1;
	r->name = argv[1];
	for (int i = 2; i < argc; i++) {
		struct kvip_endpoint ep, *slot;

		if (parse_endpoint(argv[i], &ep) < 0)
			return -1;
		slot = kvip_service_add_endpoint(&r->svc);
		if (!slot)
			return parse_fail("out of memory");
		*slot = ep;
	}
	r->run = run_request;
	r->request = request_set;
	r->needs_kernel = true;
	return 0;
}

int endpoints_parse(int argc, char **argv, struct req *r)
{
	if (argc < 2)
		return parse_fail("missing command after 'endpoints' (try '"
				  PROG_NAME " endpoints help')");
	if (is_help(argv[1]) || (argc > 2 && (!strcmp(argv[2], "-h") ||
					      !strcmp(argv[2], "--help")))) {
		r->help = usage_endpoints;
		return 0;
	}
	if (!strcmp(argv[1], "set"))
		return set_parse(argc - 1, argv + 1, r);
	return parse_fail("unknown command 'endpoints %s' (try '" PROG_NAME
			  " endpoints help')", q(argv[1]));
}
