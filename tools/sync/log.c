// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Structured logs: one logfmt line per event on stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sync.h"

int log_level = LOG_INFO;

static const char *const level_names[] = {
	"error", "warn", "info", "debug", "trace",
};

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *lq(const char *s)
{
	static __thread char bufs[8][512];
	static __thread unsigned idx;
	char *b = bufs[idx++ % 8], *p = b, *end = b + sizeof(bufs[0]) - 8;

	if (!s)
		return "\"\"";
	*p++ = '"';
	for (; *s && p < end; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			p += snprintf(p, 5, "\\x%02x", c);
		} else {
			*p++ = (char)c;
		}
	}
	if (*s) {
		memcpy(p, "...", 3);
		p += 3;
	}
	*p++ = '"';
	*p = '\0';
	return b;
}

void slog(int level, const char *msg, const char *fmt, ...)
{
	char line[2048], ts[40];
	struct timespec t;
	struct tm tm;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &t);
	gmtime_r(&t.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s msg=%s", ts,
		     t.tv_nsec / 1000000, level_names[level], lq(msg));
	if (fmt && *fmt && n > 0 && (size_t)n < sizeof(line) - 1) {
		line[n++] = ' ';
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, "%s\n", line);
}
