#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# One line of figures from a libFuzzer log (-print_final_stats=1):
#   tools/fuzz/stats.sh NAME LOG
name=$1
log=$2
awk -v name="$name" '
/^stat::number_of_executed_units:/ { runs = $2 }
/^stat::average_exec_per_sec:/ { eps = $2 }
/^stat::new_units_added:/ { added = $2 }
/^stat::peak_rss_mb:/ { rss = $2 }
/^#[0-9]+/ {
	for (i = 1; i < NF; i++) {
		if ($i == "cov:") cov = $(i + 1)
		if ($i == "corp:") corp = $(i + 1)
	}
}
END {
	printf "  %-7s %s: %d runs, %d exec/s, cov %s, corpus %s (+%d), %d MB\n",
		"FUZZED", name, runs, eps, cov, corp, added, rss
}' "$log"
