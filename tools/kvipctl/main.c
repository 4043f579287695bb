// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl's main(), apart from kvipctl_main() so that the fuzz harnesses can
 * link everything else.
 *
 * `kvipctl sync` is a program of its own, kvipctl-sync, found beside
 * kvipctl (then in PATH), the way git runs git-foo: its HTTP, TLS, JSON and
 * YAML libraries are some 40 shared objects, and loading them made every
 * other command start several times slower.
 */
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "kvipctl.h"

#define SYNC_PROG "kvipctl-sync"

static int run_sync(char **argv)
{
	char path[PATH_MAX];
	char *slash;
	ssize_t n;

	n = readlink("/proc/self/exe", path, sizeof(path) - sizeof(SYNC_PROG));
	if (n > 0) {
		path[n] = '\0';
		slash = strrchr(path, '/');
		if (slash) {
			strcpy(slash + 1, SYNC_PROG);
			execv(path, argv);
			if (errno != ENOENT)
				goto fail;
		}
	}
	execvp(SYNC_PROG, argv);
fail:
	fprintf(stderr, PROG_NAME ": sync: cannot run %s: %s\n", SYNC_PROG,
		strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	static char out_buf[1 << 16];

	if (argc > 1 && !strcmp(argv[1], "sync"))
		return run_sync(argv + 1);
	/* kvipctl-sync inherits the network namespace. */
	if (argc > 3 && kvipctl_is_netns_opt(argv[1]) &&
	    !strcmp(argv[3], "sync")) {
		if (kvipctl_enter_netns(argv[2]))
			return EXIT_FAIL;
		return run_sync(argv + 3);
	}
	setvbuf(stdout, out_buf, _IOFBF, sizeof(out_buf));
	return kvipctl_main(argc, argv);
}
