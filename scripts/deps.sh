#!/usr/bin/env bash
# Install (or, with --check, verify) every Debian package kvip needs to build
# the module, build kvipctl, and run the selftests in a QEMU guest.
#
#   scripts/deps.sh           install what is missing (needs root)
#   scripts/deps.sh --check   exit 0 if everything is present, else print the
#                             apt-get line that would fix it and exit 1
set -euo pipefail

PACKAGES=(
	# Target kernel: the meta packages pull the current Debian image+headers.
	linux-image-amd64 linux-headers-amd64
	# The same release's PREEMPT_RT and cloud flavours (make flavours).
	linux-headers-rt-amd64 linux-headers-cloud-amd64
	# VM harness (selftests/vm-run).
	qemu-system-x86 busybox-static cpio xz-utils file kmod util-linux
	# kvipctl build.
	gcc make pkg-config libnl-3-dev libnl-genl-3-dev
	# kvipctl sync (its host tests also use python3 and openssl).
	libcurl4-openssl-dev libjson-c-dev libyaml-dev libmicrohttpd-dev openssl
	# kvipctl's libFuzzer harnesses (make -C tools fuzz; ASan+UBSan runtimes
	# and libFuzzer come with libclang-rt-14-dev, gcc's with gcc).
	clang libclang-rt-14-dev
	# Tooling used inside tests (the guest sees the host's rootfs).
	iproute2 socat conntrack curl python3 nftables iptables libcap2-bin
	# make bench: the IPVS contender, throughput, plots, profiles.
	ipvsadm iperf3 gnuplot-nox linux-perf
	# make debug-kernel (scripts/debug-kernel.sh builds the reliability
	# guest's kernel from linux-source-6.1).
	flex bison bc libelf-dev libssl-dev
	# Module packaging and static checks (checkpatch.pl comes from the
	# linux-source tarball in /usr/src).
	dkms sparse linux-source-6.1
)

usage() {
	sed -n '2,8s/^# \{0,1\}//p' "$0"
}

is_installed() {
	# dpkg-query fails for unknown packages; treat that as "missing".
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing_packages() {
	local pkg
	for pkg in "${PACKAGES[@]}"; do
		is_installed "$pkg" || echo "$pkg"
	done
}

# apt-get update is slow; only run it when the package lists are absent or
# when the package we want is unknown to apt (stale lists).
apt_update_if_needed() {
	local pkg
	if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
		apt-get update -qq
		return
	fi
	for pkg in "$@"; do
		if ! apt-cache show "$pkg" >/dev/null 2>&1; then
			apt-get update -qq
			return
		fi
	done
}

main() {
	local check=0
	case "${1:-}" in
	--check) check=1 ;;
	-h | --help) usage; exit 0 ;;
	"") ;;
	*) usage >&2; exit 2 ;;
	esac

	local missing
	mapfile -t missing < <(missing_packages)
	if ((${#missing[@]} == 0)); then
		exit 0
	fi

	if ((check)); then
		echo "apt-get install -y ${missing[*]}" >&2
		exit 1
	fi

	if ((EUID != 0)); then
		echo "deps.sh: missing packages, run as root: apt-get install -y ${missing[*]}" >&2
		exit 1
	fi

	export DEBIAN_FRONTEND=noninteractive
	apt_update_if_needed "${missing[@]}"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	echo "deps.sh: installed ${missing[*]}"
}

main "$@"
