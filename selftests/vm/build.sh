#!/usr/bin/env bash
# Build the guest boot artifacts for selftests/vm-run:
#
#   selftests/vm/build.sh KVER OUTDIR
#   selftests/vm/build.sh --debug BUILDDIR OUTDIR
#
# --debug boots a kernel built from source (scripts/debug-kernel.sh): its
# bzImage, and its module tree (modules_install into
# OUTDIR/modroot: modules.builtin, modules.dep, the few =m modules), which
# the initramfs carries in /lib/modules and init copies into the guest's
# root, so that modprobe works for it as for a Debian kernel.
#
# OUTDIR/kernel      the kernel QEMU boots: the uncompressed vmlinux when it
#                    carries a PVH entry note (boots ~2x faster under TCG than
#                    the bzImage, whose self-decompression is slow when
#                    emulated), else a copy of /boot/vmlinuz-KVER.
# OUTDIR/initramfs   an uncompressed newc cpio: busybox-static, the virtio /
#                    9p / overlay modules in load order, init and stage2.
#
# vm-run caches OUTDIR and calls this only when the key changes.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Modules stage 1 needs to mount the host's filesystems. Their dependencies
# are resolved with modprobe so that changes in Debian's kernel config
# (e.g. netfs/fscache becoming built-in) are followed automatically.
BOOT_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

die() { echo "vm/build.sh: $*" >&2; exit 1; }

# Debian's vmlinuz is a bzImage with an XZ payload; like the kernel's
# scripts/extract-vmlinux, find the XZ magic and decompress from there.
# xz complains about the trailing bzImage data, so judge by the result.
extract_vmlinux() {
	local img="$1" out="$2" off
	off="$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$img" | head -n1 | cut -d: -f1)" || true
	[[ -n "$off" ]] || return 1
	tail -c "+$((off + 1))" "$img" | xz -dc >"$out" 2>/dev/null || true
	readelf -h "$out" 2>/dev/null | grep -q 'Type:[[:space:]]*EXEC' || return 1
	# XEN_ELFNOTE_PHYS32_ENTRY (18) is the PVH entry point QEMU needs.
	readelf -n "$out" 2>/dev/null | grep -Eq '^[[:space:]]*Xen[[:space:]].*(\(0x00000012\)|PHYS32)'
}

build_kernel() {
	local kver="$1" out="$2" img="/boot/vmlinuz-$1"
	[[ -r "$img" ]] || die "$img not found (install linux-image-amd64)"
	if extract_vmlinux "$img" "$out.tmp"; then
		mv "$out.tmp" "$out"
	else
		echo "vm/build.sh: no PVH vmlinux in $img, booting the bzImage (slower)" >&2
		rm -f "$out.tmp"
		cp "$img" "$out"
	fi
}

# Copy a module into the initramfs uncompressed: busybox insmod does not
# understand compressed modules.
copy_module() {
	local src="$1" dst="$2"
	case "$src" in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*) die "unknown module format: $src" ;;
	esac
}

build_modules() {
	local kver="$1" root="$2" mod line path name
	local -A seen=()
	local -a modprobe=(modprobe ${MODROOT:+-d "$MODROOT"} -S "$kver")
	mkdir -p "$root/modules"
	: >"$root/modules/order"
	for mod in "${BOOT_MODULES[@]}"; do
		# "insmod /path.ko" for each module not built in, dependencies first.
		while read -r line; do
			[[ "$line" == insmod\ * ]] || continue
			path="$(awk '{print $2}' <<<"$line")"
			name="$(basename "$path")"
			name="${name%%.ko*}.ko"
			[[ -z "${seen[$name]:-}" ]] || continue
			seen[$name]=1
			copy_module "$path" "$root/modules/$name"
			echo "$name" >>"$root/modules/order"
		done < <("${modprobe[@]}" --show-depends "$mod" || die "modprobe cannot resolve $mod for $kver")
	done
}

build_initramfs() {
	local kver="$1" out="$2" root
	root="$(mktemp -d)"
	# shellcheck disable=SC2064 # expand now: $root is local
	trap "rm -rf '$root'" RETURN

	mkdir -p "$root"/{bin,dev,proc,sys,newroot,lower,rw,repo,vmrun}
	cp /bin/busybox "$root/bin/busybox"
	file -L "$root/bin/busybox" | grep -q 'statically linked' ||
		die "/bin/busybox is not static (install busybox-static)"
	# The kernel opens /dev/console for init before anything is mounted.
	mknod -m 600 "$root/dev/console" c 5 1
	install -m 755 "$HERE/init" "$root/init"
	install -m 755 "$HERE/stage2" "$root/stage2"
	build_modules "$kver" "$root"
	if [[ -n "${MODROOT:-}" ]]; then
		mkdir -p "$root/lib/modules"
		cp -a "$MODROOT/lib/modules/$kver" "$root/lib/modules/"
		# Host paths, meaningless in the guest.
		rm -f "$root/lib/modules/$kver/build" "$root/lib/modules/$kver/source"
	fi

	(cd "$root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc -R 0:0 --quiet) >"$out.tmp"
	mv "$out.tmp" "$out"
}

# The kernel and module tree of a source build (--debug BUILDDIR).
build_debug_kernel() {
	local build="$1" outdir="$2" kver
	kver="$(cat "$build/include/config/kernel.release")" || die "no kernel release in $build"
	# The bzImage: this KASAN kernel's vmlinux triple-faults at once when
	# QEMU enters it through its PVH note (6.1.192, QEMU 7.2).
	cp "$build/arch/x86/boot/bzImage" "$outdir/kernel.tmp"
	mv "$outdir/kernel.tmp" "$outdir/kernel"
	MODROOT="$outdir/modroot"
	rm -rf "$MODROOT"
	make -C "$build" -s INSTALL_MOD_PATH="$MODROOT" INSTALL_MOD_STRIP=1 \
		modules_install >/dev/null || die "modules_install for $build failed"
	depmod -b "$MODROOT" "$kver"
	echo "$kver"
}

main() {
	local kver outdir
	if [[ "${1:-}" == --debug ]]; then
		(($# == 3)) || die "usage: build.sh --debug BUILDDIR OUTDIR"
		outdir="$3"
		mkdir -p "$outdir"
		kver="$(build_debug_kernel "$2" "$outdir")"
		MODROOT="$outdir/modroot"
	else
		(($# == 2)) || die "usage: build.sh KVER OUTDIR | --debug BUILDDIR OUTDIR"
		kver="$1" outdir="$2"
		mkdir -p "$outdir"
		build_kernel "$kver" "$outdir/kernel"
	fi
	build_initramfs "$kver" "$outdir/initramfs"
}

main "$@"
