/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Helpers shared by the libFuzzer harnesses of kvipctl (tools/fuzz/).
 */
#ifndef KVIP_FUZZ_UTIL_H
#define KVIP_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Report a broken invariant and abort(): libFuzzer saves the input. */
void fuzz_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#define FUZZ_CHECK(cond, ...) do {					\
	if (!(cond))							\
		fuzz_fail("%s:%d: %s: " "%s", __FILE__, __LINE__,	\
			  #cond, fuzz_fmt(__VA_ARGS__));		\
} while (0)

/* printf into a static buffer, for FUZZ_CHECK messages. */
const char *fuzz_fmt(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/*
 * stdout and stderr of the code under test go to memory between
 * capture_start() and capture_stop(): kvipctl prints through the stdio
 * globals, which are swapped. out/err are NUL-terminated; free with
 * capture_free().
 */
struct capture {
	char *out, *err;
	size_t out_len, err_len;
	FILE *saved_out, *saved_err;
};
void capture_start(struct capture *c);
void capture_stop(struct capture *c);
void capture_free(struct capture *c);

/*
 * A path that reads back exactly data (a memfd, "/proc/self/fd/N"),
 * rewritten by each call.
 */
const char *fuzz_file(const uint8_t *data, size_t size);

/* Every byte is printable ASCII or '\n' (no terminal escapes leak out). */
bool printable_text(const char *s, size_t n);

#endif
