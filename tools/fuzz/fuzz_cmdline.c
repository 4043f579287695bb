// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The whole command line: the input is split into arguments at '\n' (one
 * argument a line; a NUL byte ends its argument early) and run as
 *
 *	kvipctl -c ARG...
 *
 * through kvipctl_main(), the parse path of every invocation. -c stops it
 * before a netlink session is opened (kvip_open() aborts if called). The
 * FILE of -b/-batch/--batch is replaced by a file holding the input itself,
 * so batch reading is reached from here too.
 *
 * Invariants: the exit status is 0 or 2 (with -c nothing can fail at run
 * time); 0 prints nothing on stderr, 2 prints a message; stderr is printable
 * ASCII, a "kvipctl: " message per line (or the usage).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "kvipctl.h"

static bool is_batch_opt(const char *a)
{
	return !strcmp(a, "-b") || !strcmp(a, "-batch") ||
	       !strcmp(a, "--batch");
}

static void check_stderr(const struct capture *c, int status)
{
	const char *p, *e = c->err + c->err_len;

	FUZZ_CHECK(status == EXIT_OK || status == EXIT_USAGE,
		   "exit status %d", status);
	if (status == EXIT_OK) {
		FUZZ_CHECK(c->err_len == 0, "status 0 with stderr '%s'",
			   c->err);
		return;
	}
	FUZZ_CHECK(c->err_len > 0 && c->err[c->err_len - 1] == '\n',
		   "status %d, stderr '%s'", status, c->err);
	FUZZ_CHECK(printable_text(c->err, c->err_len),
		   "unprintable stderr '%s'", c->err);
	if (!strncmp(c->err, "Usage: ", 7))
		return;
	for (p = c->err; p < e; p = strchr(p, '\n') + 1)
		FUZZ_CHECK(!strncmp(p, PROG_NAME ": ", strlen(PROG_NAME) + 2),
			   "stderr line '%.*s'",
			   (int)(strchr(p, '\n') - p), p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), **argv;
	const char *file = fuzz_file(data, size);
	struct capture c;
	int argc = 0, status;

	/* At most size + 1 arguments, plus "kvipctl -c" and NULL. */
	argv = malloc((size + 4) * sizeof(*argv));
	if (!buf || !argv)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';

	argv[argc++] = "kvipctl";
	argv[argc++] = "-c";
	for (char *p = buf;;) {
		char *nl = memchr(p, '\n', (size_t)(buf + size - p));

		argv[argc] = p;
		if (argc > 2 && is_batch_opt(argv[argc - 1]))
			argv[argc] = (char *)file;
		argc++;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	/* No trailing empty argument for a final newline (or no input). */
	if (size == 0 || data[size - 1] == '\n')
		argc--;
	argv[argc] = NULL;

	capture_start(&c);
	status = kvipctl_main(argc, argv);
	capture_stop(&c);
	check_stderr(&c, status);

	capture_free(&c);
	free(argv);
	free(buf);
	return 0;
}
