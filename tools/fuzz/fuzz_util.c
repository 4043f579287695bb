// SPDX-License-Identifier: GPL-2.0 OR MIT
#include "fuzz_util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvip.h"

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;
	FILE *f = fdopen(dup(2), "w");

	if (!f)
		abort();
	fputs("fuzz: invariant failed: ", f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
	abort();
}

const char *fuzz_fmt(const char *fmt, ...)
{
	static char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

void capture_start(struct capture *c)
{
	memset(c, 0, sizeof(*c));
	c->saved_out = stdout;
	c->saved_err = stderr;
	stdout = open_memstream(&c->out, &c->out_len);
	stderr = open_memstream(&c->err, &c->err_len);
	if (!stdout || !stderr)
		abort();
}

void capture_stop(struct capture *c)
{
	fclose(stdout);
	fclose(stderr);
	stdout = c->saved_out;
	stderr = c->saved_err;
}

void capture_free(struct capture *c)
{
	free(c->out);
	free(c->err);
	c->out = c->err = NULL;
}

const char *fuzz_file(const uint8_t *data, size_t size)
{
	static char path[64];
	static int fd = -1;

	if (fd < 0) {
		fd = memfd_create("kvip-fuzz", MFD_CLOEXEC);
		if (fd < 0)
			fuzz_fail("memfd_create failed");
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 ||
	    (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		fuzz_fail("cannot write the memfd");
	return path;
}

bool printable_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '\n' && (s[i] < 0x20 || s[i] > 0x7e))
			return false;
	return true;
}

/*
 * Linked with -Wl,--wrap=kvip_open: kvipctl_main() with -c must never open
 * a netlink session.
 */
int __wrap_kvip_open(struct kvip **kp, char *msg, size_t msglen);
int __wrap_kvip_open(struct kvip **kp, char *msg, size_t msglen)
{
	(void)kp;
	(void)msg;
	(void)msglen;
	fuzz_fail("kvip_open() called with -c");
}
