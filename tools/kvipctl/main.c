// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl's main(), apart from kvipctl_main() so that the fuzz harnesses can
 * link everything else.
 */
#include "kvipctl.h"

int sync_main(int argc, char **argv);	/* tools/sync/sync.c */

int main(int argc, char **argv)
{
	static char out_buf[1 << 16];

	setvbuf(stdout, out_buf, _IOFBF, sizeof(out_buf));
	if (argc > 1 && !strcmp(argv[1], "sync"))
		return sync_main(argc - 1, argv + 1);
	return kvipctl_main(argc, argv);
}
