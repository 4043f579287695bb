// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Batch files: the input is the FILE of
 *
 *	kvipctl -c -batch FILE
 *
 * run through kvipctl_main() (read_all, the line splitter, every command
 * parser, both passes' bookkeeping). Then each line of the input goes
 * through split_line() directly, with buffers of exactly the documented
 * sizes so that ASan sees any overrun.
 *
 * Invariants: exit status 0 with an empty stderr, or 2 with one
 * "kvipctl: line N: MESSAGE" per bad line, N increasing and within the
 * file, all printable; nothing on stdout; split_line() stays within its
 * buffers, NULL-terminates argv and honours maxargs.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "kvipctl.h"
#include "parse.h"

static void check_output(const struct capture *c, int status,
			 unsigned long nlines)
{
	const char *p, *e = c->err + c->err_len;
	unsigned long last = 0;

	FUZZ_CHECK(c->out_len == 0, "stdout '%s'", c->out);
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
	for (p = c->err; p < e; p = strchr(p, '\n') + 1) {
		unsigned long n;
		int off = 0;

		FUZZ_CHECK(sscanf(p, PROG_NAME ": line %lu: %n", &n, &off) ==
			   1 && off > 0, "stderr line '%.*s'",
			   (int)(strchr(p, '\n') - p), p);
		FUZZ_CHECK(n > last && n <= nlines,
			   "line %lu after line %lu, of %lu", n, last, nlines);
		FUZZ_CHECK(p[off] != '\n', "empty message on line %lu", n);
		last = n;
	}
}

/* One line, in a buffer of exactly len bytes (not NUL-terminated). */
static void check_split(const char *line, size_t len, int maxargs)
{
	char *in = malloc(len ? len : 1), *out = malloc(len + 1);
	char **argv = malloc(((size_t)maxargs + 1) * sizeof(*argv));
	int argc;

	if (!in || !out || !argv)
		abort();
	memcpy(in, line, len);
	argc = split_line(in, len, out, argv, maxargs);
	if (argc < 0) {
		FUZZ_CHECK(*parse_error(), "no error message");
	} else {
		FUZZ_CHECK(argc <= maxargs, "argc %d > %d", argc, maxargs);
		FUZZ_CHECK(argv[argc] == NULL, "argv[%d] not NULL", argc);
		for (int i = 0; i < argc; i++) {
			FUZZ_CHECK(argv[i] >= out && argv[i] < out + len + 1,
				   "argv[%d] outside out", i);
			FUZZ_CHECK(memchr(argv[i], '\0',
					  (size_t)(out + len + 1 - argv[i])),
				   "argv[%d] not terminated", i);
			/* Arguments follow each other in out. */
			if (i)
				FUZZ_CHECK(argv[i] == argv[i - 1] +
					   strlen(argv[i - 1]) + 1,
					   "argv[%d] not packed", i);
		}
	}
	free(argv);
	free(out);
	free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[] = { "kvipctl", "-c", "-batch",
			 (char *)fuzz_file(data, size), NULL };
	const char *p = (const char *)data, *end = p + size;
	unsigned long nlines = 0;
	struct capture c;
	int status;

	capture_start(&c);
	status = kvipctl_main(4, argv);
	capture_stop(&c);

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		nlines++;
		/* As kvipctl sizes it, and a tight limit. */
		check_split(p, len, (int)(len / 2 + 1));
		check_split(p, len, (int)(len % 4));
		p = nl ? nl + 1 : end;
	}
	check_output(&c, status, nlines);
	capture_free(&c);
	return 0;
}
