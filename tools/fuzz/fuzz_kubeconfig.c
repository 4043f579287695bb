// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl sync's kubeconfig parser (tools/sync/kubeconfig.c) on arbitrary
 * YAML. Paths it names are resolved under a directory that does not exist,
 * so nothing is read. Checks: success gives an http(s) server and either
 * both or neither of a client certificate and key; failure gives a
 * message; decoded -data fields are not empty. Also b64_decode() on the
 * raw input: its output is never longer than 3/4 of the input.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "sync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_creds c;
	char err[512] = "";
	char *text = malloc(size + 1), *d;
	size_t len;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (kubeconfig_parse(text, size, "/nonexistent-fuzz", NULL, &c, err,
			     sizeof(err)) == 0) {
		FUZZ_CHECK(c.server && (!strncmp(c.server, "https://", 8) ||
					!strncmp(c.server, "http://", 7)),
			   "server %s", c.server ? c.server : "(null)");
		FUZZ_CHECK(!!(c.cert_file || c.cert_data) ==
			   !!(c.key_file || c.key_data), "cert without key");
		FUZZ_CHECK(!c.ca_data || c.ca_data_len, "empty CA data");
		creds_free(&c);
	} else {
		FUZZ_CHECK(err[0], "failure without a message");
		FUZZ_CHECK(!c.server, "creds left after a failure");
	}
	d = b64_decode(text, &len);
	if (d) {
		FUZZ_CHECK(len <= size / 4 * 3 + 3, "b64 %zu from %zu", len,
			   size);
		free(d);
	}
	free(text);
	return 0;
}
