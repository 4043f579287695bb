// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl-sync: `kvipctl sync` (kvipctl runs it with the same arguments;
 * see kvipctl/main.c). Run directly, it behaves the same.
 */
#include <stdio.h>

int sync_main(int argc, char **argv);	/* sync.c */

int main(int argc, char **argv)
{
	static char out_buf[1 << 16];

	setvbuf(stdout, out_buf, _IOFBF, sizeof(out_buf));
	return sync_main(argc, argv);
}
