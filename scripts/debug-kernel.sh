#!/usr/bin/env bash
# Build, once, the debug guest kernel for `make check-debug` from Debian's
# linux-source tarball (the same version as the target kernel), with
# defconfig + kvm_guest.config + selftests/vm/debug.config. The result is
# cached outside the clone, keyed by source version and config:
#
#   ${XDG_CACHE_HOME:-~/.cache}/kvip/debug-kernel/<version>-<config hash>/
#       build/   kernel build tree (KDIR for the module), bzImage, vmlinux
#
#   scripts/debug-kernel.sh          build if needed, print the build dir
#   scripts/debug-kernel.sh --path   print the build dir if built, else exit 1
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
fragment="$top/selftests/vm/debug.config"
tarball="$(ls /usr/src/linux-source-6.1.tar.xz 2>/dev/null || true)"
[[ -n "$tarball" ]] || { echo "debug-kernel.sh: no linux-source-6.1; run scripts/deps.sh" >&2; exit 1; }
version="$(dpkg-query -W -f='${Version}' linux-source-6.1)"
# Contents only, not paths: every clone shares the cache.
key="$(cat "$fragment" "$0" | sha256sum | cut -c1-12)"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/kvip/debug-kernel/$version-$key"

if [[ "${1:-}" == "--path" ]]; then
	[[ -f "$dir/done" ]] && { echo "$dir/build"; exit 0; }
	exit 1
fi
if [[ -f "$dir/done" ]]; then
	echo "$dir/build"
	exit 0
fi

mkdir -p "$dir"
if [[ ! -f "$dir/src/Makefile" ]]; then
	rm -rf "$dir/src"
	mkdir -p "$dir/src"
	tar -xJf "$tarball" -C "$dir/src" --strip-components=1
fi
src="$dir/src"
out="$dir/build"
mkdir -p "$out"

make -C "$src" O="$out" -s defconfig
"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
	"$src/kernel/configs/kvm_guest.config" "$fragment" >/dev/null
make -C "$src" O="$out" -s olddefconfig

# merge_config drops what Kconfig refuses; insist on what we asked for.
missing=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=[ym]) grep -qx "${line%=*}=[ym]" "$out/.config" ;;
	CONFIG_*=n) ! grep -qx "${line%=*}=[ym]" "$out/.config" ;;
	*) continue ;;
	esac && continue
	echo "debug-kernel.sh: $line did not survive olddefconfig" >&2
	missing=1
done <"$fragment"
((missing == 0)) || exit 1

make -C "$src" O="$out" -s -j"$(nproc)" bzImage modules
touch "$dir/done"
echo "$out"
