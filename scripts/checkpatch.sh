#!/usr/bin/env bash
# Run the kernel's checkpatch.pl (from Debian's linux-source tarball, cached
# outside the clone) on every source file of the module.
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kvip/checkpatch"
tarball="$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1)"

if [[ -z "$tarball" ]]; then
	echo "checkpatch.sh: no /usr/src/linux-source-*.tar.xz; run scripts/deps.sh" >&2
	exit 1
fi
stamp="$cache/$(basename "$tarball").stamp"
if [[ ! -f "$stamp" ]]; then
	rm -rf "$cache"
	mkdir -p "$cache"
	src="$(basename "$tarball" .tar.xz)"
	tar -xJf "$tarball" -C "$cache" --strip-components=1 \
		"$src/scripts/checkpatch.pl" "$src/scripts/spelling.txt" \
		"$src/scripts/const_structs.checkpatch"
	touch "$stamp"
fi

cd "$top/kmod"
files=(Kbuild ./*.c ./*.h)
files=("${files[@]/.\/kvip.mod.c/}")
# shellcheck disable=SC2068 # empty entries must vanish
out="$("$cache/scripts/checkpatch.pl" --no-tree --terse --show-types \
	--strict -f ${files[@]} 2>&1)" || true
if [[ -n "$out" ]]; then
	echo "$out"
	echo "checkpatch.sh: kmod/ is not checkpatch clean" >&2
	exit 1
fi
