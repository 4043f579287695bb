// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kvipctl's main(), apart from kvipctl_main() so that the fuzz harnesses can
 * link everything else.
 */
#include "kvipctl.h"

int main(int argc, char **argv)
{
	static char out_buf[1 << 16];

	setvbuf(stdout, out_buf, _IOFBF, sizeof(out_buf));
	return kvipctl_main(argc, argv);
}
