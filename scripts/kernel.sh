#!/usr/bin/env bash
# Print the kernel release kvip targets (KVER), or with --kdir its build dir.
#
#   scripts/kernel.sh          print KVER
#   scripts/kernel.sh --kdir   print KDIR (/lib/modules/$KVER/build, or $KDIR)
#
# Choice of KVER: $KVER if set; else the running kernel if its headers are
# installed; else the newest installed kernel having both headers and a
# /boot/vmlinuz (the CI host runs a kernel we cannot build for, so we target
# the Debian kernel that the selftests boot in QEMU).
set -euo pipefail

has_headers() { [[ -e "/lib/modules/$1/build/Makefile" ]]; }

pick_kver() {
	if [[ -n "${KVER:-}" ]]; then
		echo "$KVER"
		return
	fi
	local running
	running="$(uname -r)"
	if has_headers "$running"; then
		echo "$running"
		return
	fi
	local dir kver best=""
	for dir in /lib/modules/*/; do
		kver="$(basename "$dir")"
		if has_headers "$kver" && [[ -f "/boot/vmlinuz-$kver" ]]; then
			best="$(printf '%s\n%s\n' "$best" "$kver" | sed '/^$/d' | sort -V | tail -n1)"
		fi
	done
	if [[ -z "$best" ]]; then
		echo "kernel.sh: no kernel with headers found (running $running has none;" \
			"no /lib/modules/*/build with a matching /boot/vmlinuz-*)." \
			"Run scripts/deps.sh to install linux-image-amd64 and linux-headers-amd64." >&2
		exit 1
	fi
	echo "$best"
}

case "${1:-}" in
"") pick_kver ;;
--kdir)
	if [[ -n "${KDIR:-}" ]]; then
		echo "$KDIR"
	else
		echo "/lib/modules/$(pick_kver)/build"
	fi
	;;
-h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0" ;;
*) sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
