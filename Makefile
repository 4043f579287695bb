# SPDX-License-Identifier: GPL-2.0
#
# kvip: kernel module, kvipctl, and the checks that keep them honest.
#
#   make                 build kmod/kvip.ko and tools/kvipctl/kvipctl
#   make check           every test: lint, unit tests, dkms build, selftests
#   make demo            a ClusterIP balancing 7 backends, in a QEMU guest
#   make install         module for $(KVER) + kvipctl under $(PREFIX)
#   make dkms-install    register this tree with DKMS, build and install
#   make debug-kernel    build (once, cached in ~/.cache/kvip) the KASAN/
#                        lockdep/kmemleak guest kernel for reliability runs
#   make bench           kvip vs kube-proxy iptables/nftables and IPVS in the
#                        QEMU guest (BENCHMARKS.md); QUICK=1: smoke run (make check)
#   make bench-profile   perf profile of kvip's control plane and first packet
#   make bench-ab        interleaved A/B of the first packet in one guest: kvip
#                        at N=1 and AB_N, floor, ceiling (AB_ROUNDS, AB_SLICE s)
#   make check-debug     selftests, fuzzer, stress, fault injection and a
#                        kmemleak scan on that kernel (skipped if not built)
#   make flavours        W=1 builds for the PREEMPT_RT and cloud flavours
#
# KVER= / KDIR= select the kernel (default: scripts/kernel.sh).

VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
KVER ?= $(shell scripts/kernel.sh 2>/dev/null)
KDIR ?= /lib/modules/$(KVER)/build
PREFIX ?= /usr/local
DKMS_SRC := /usr/src/kvip-$(VERSION)

KBUILD := $(MAKE) -C $(KDIR) M=$(CURDIR)/kmod

.PHONY: all module tools clean install module-install dkms-install \
	dkms-check lint checkpatch check unit selftests demo deps debug-kernel \
	bench bench-quick bench-profile bench-ab \
	check-debug flavours

all: module tools

deps:
	@if [ "$$(id -u)" = 0 ]; then scripts/deps.sh; else scripts/deps.sh --check; fi

module: deps
	@test -n "$(KVER)" || { scripts/kernel.sh; exit 1; }
	$(KBUILD) modules

tools: deps
	$(MAKE) -C tools

clean:
	-$(KBUILD) clean
	$(MAKE) -C tools clean

install: module-install
	$(MAKE) -C tools install PREFIX=$(PREFIX)

module-install: module
	$(KBUILD) INSTALL_MOD_DIR=updates modules_install
	depmod -a $(KVER)

# DKMS copies exactly what it needs to rebuild the module on kernel upgrades.
dkms-install:
	rm -rf $(DKMS_SRC)
	mkdir -p $(DKMS_SRC)/include/uapi/linux $(DKMS_SRC)/kmod
	cp dkms.conf $(DKMS_SRC)/
	cp include/uapi/linux/kvip.h $(DKMS_SRC)/include/uapi/linux/
	cp kmod/Kbuild kmod/*.c kmod/*.h $(DKMS_SRC)/kmod/
	dkms add -m kvip -v $(VERSION) 2>/dev/null || true
	dkms build -m kvip -v $(VERSION) -k $(KVER)
	dkms install -m kvip -v $(VERSION) -k $(KVER)

# `dkms build` of this tree for $(KVER), with all DKMS state in a
# temporary directory so the host is not changed.
dkms-check:
	scripts/dkms-check.sh $(KVER)

# No warnings with W=1 and sparse; checkpatch clean.
lint: deps
	@test -n "$(KVER)" || { scripts/kernel.sh; exit 1; }
	@rm -f kmod/*.o
	@$(KBUILD) W=1 C=2 modules 2>&1 | tee kmod/.lint.log | \
		grep -E 'warning|error' && { echo "lint: W=1/sparse warnings"; exit 1; } || true
	@scripts/checkpatch.sh
	@echo "lint: W=1, sparse and checkpatch clean"

checkpatch:
	scripts/checkpatch.sh

unit: tools
	$(MAKE) -C tools check

selftests: all
	selftests/check

check: all lint flavours unit dkms-check
	selftests/check
	$(MAKE) bench-quick

demo: all
	selftests/vm-run -- selftests/demo.sh

debug-kernel: deps
	scripts/debug-kernel.sh

# Benchmarks are not tests: they print numbers; only QUICK=1 (the smoke
# run make check does) fails, when a contender forwarded no traffic.
bench: all
	QUICK=$(QUICK) bench/bench.sh

bench-quick: all
	QUICK=1 bench/bench.sh

bench-profile: all
	bench/bench.sh --profile

# Interleaved A/B (bench/ab.sh): every topology in one guest, ratios taken
# within a round. AB_WINDOW=0.1: one process sends to all of them in turns
# of 0.1 s (AB_SLICE s each per round); AB_WINDOW=0: one exec'd slice per
# topology and round, which adds CPU per flow and, with AB_TCP=SECONDS,
# TCP connects. AB_TOPOS: the topologies (default kvip-1 kvip-N floor
# ceiling-1 ceiling-N; also nft-1 nft-N ipvs-1 ipvs-N, see bench/ab.sh).
AB_N ?= 100000
AB_ROUNDS ?= 7
AB_SLICE ?= 2
AB_TCP ?= 0
AB_WINDOW ?= 0.1
AB_TOPOS ?=
bench-ab: all
	AB_N=$(AB_N) AB_ROUNDS=$(AB_ROUNDS) AB_SLICE=$(AB_SLICE) AB_TCP=$(AB_TCP) AB_WINDOW=$(AB_WINDOW) \
	AB_TOPOS="$(AB_TOPOS)" \
		bench/bench.sh --ab

check-debug: all
	scripts/check-debug.sh

# The module for Debian's PREEMPT_RT and cloud flavours of $(KVER), with
# W=1 and no warning allowed. Built from copies in .build-flavours/: kmod/
# keeps the objects of the $(KVER) build.
FLAVOURS := rt-amd64 cloud-amd64
FLAVOUR_SRC := kmod/Kbuild $(filter-out kmod/kvip.mod.c,$(wildcard kmod/*.c kmod/*.h))

flavours: deps
	@test -n "$(KVER)" || { scripts/kernel.sh; exit 1; }
	@case "$(KVER)" in *-amd64) ;; *) echo "flavours: $(KVER) is not a Debian -amd64 kernel"; exit 1 ;; esac
	@set -e; for f in $(FLAVOURS); do \
		kver=$(KVER:-amd64=)-$$f; out=.build-flavours/$$f; \
		test -e /lib/modules/$$kver/build/Makefile || \
			{ echo "flavours: no headers for $$kver (run scripts/deps.sh)"; exit 1; }; \
		rm -rf $$out; mkdir -p $$out/kmod $$out/include/uapi/linux; \
		cp $(FLAVOUR_SRC) $$out/kmod/; \
		cp include/uapi/linux/kvip.h $$out/include/uapi/linux/; \
		$(MAKE) -s -C /lib/modules/$$kver/build M=$(CURDIR)/$$out/kmod W=1 \
			modules >$$out/build.log 2>&1 || { cat $$out/build.log; exit 1; }; \
		if grep -E 'warning|error' $$out/build.log; then \
			echo "flavours: W=1 warnings for $$kver"; exit 1; fi; \
		echo "flavours: $$kver: W=1 clean"; \
	done
