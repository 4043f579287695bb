#!/usr/bin/env bash
# Prove that `dkms build` of this tree succeeds for a kernel, with every bit
# of DKMS state (source, build and install trees) in a temporary directory:
# the host's /usr/src, /var/lib/dkms and /lib/modules are not touched.
#
#   scripts/dkms-check.sh KVER
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
kver="${1:?usage: dkms-check.sh KVER}"
version="$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

src="$tmp/src/kvip-$version"
mkdir -p "$src/include/uapi/linux" "$src/kmod" "$tmp/tree" "$tmp/install"
cp "$top/dkms.conf" "$src/"
cp "$top/include/uapi/linux/kvip.h" "$src/include/uapi/linux/"
cp "$top"/kmod/Kbuild "$top"/kmod/*.c "$top"/kmod/*.h "$src/kmod/"
rm -f "$src/kmod/kvip.mod.c"

# DKMS signs modules, creating a key under /var/lib/dkms if none exists:
# point it at throw-away files instead.
export mok_signing_key="$tmp/mok.key" mok_certificate="$tmp/mok.pub"

dkms_tmp() {
	dkms "$@" -m kvip -v "$version" -k "$kver" \
		--dkmstree "$tmp/tree" --sourcetree "$tmp/src" \
		--installtree "$tmp/install"
}

if ! dkms_tmp add >"$tmp/log" 2>&1 || ! dkms_tmp build >>"$tmp/log" 2>&1; then
	cat "$tmp/log" "$tmp"/tree/kvip/"$version"/build/make.log 2>/dev/null
	echo "dkms-check: dkms build of kvip $version for $kver FAILED" >&2
	exit 1
fi
ko="$(find "$tmp/tree/kvip/$version/$kver" -name 'kvip.ko*' | head -n1)"
if [[ -z "$ko" ]]; then
	echo "dkms-check: dkms build produced no kvip.ko" >&2
	exit 1
fi
echo "dkms-check: dkms build of kvip $version for $kver ok ($(basename "$ko"))"
