# SPDX-License-Identifier: GPL-2.0
#
# Filter a kernel log: drop memory cgroup OOM-kill reports. Such a kill is
# the kernel doing its job (kvip_limits.sh provokes one) and its report has
# a Call Trace that is no bug. A report runs from "invoked oom-killer" to
# "Memory cgroup out of memory: Killed process"; a global OOM report is
# kept, it is worth a look.
/invoked oom-killer:/ { n = 0; inblk = 1 }
inblk {
	blk[n++] = $0
	if (/Memory cgroup out of memory: Killed process/) {
		inblk = 0
		n = 0
	} else if (/Out of memory: Killed process/) {
		for (i = 0; i < n; i++)
			print blk[i]
		inblk = 0
		n = 0
	}
	next
}
{ print }
END { for (i = 0; i < n; i++) print blk[i] }
