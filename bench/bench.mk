# SPDX-License-Identifier: GPL-2.0-only
# bench.mk - `make bench`: the figures of DESIGN.md, side by side with the raw KVM floor and QEMU (bench/run.sh).
#
#   make bench            full run: host part (floor, user backend, tiny guest), then one lab
#                         boot (floor, user and kmod backends on Linux guests, the QEMU peer)
#   make bench QUICK=1    the same with fewer samples, for CI-sized runs (< 5 min)
#   make bench LAB=0      host part only
#   make bench-oneshot    one-shot kfork run only (N=100 processes per mode), one lab boot
#   make bench-session    one-shot Python exec in place (session) vs fork-per-exec, N=200 per
#                         mode and backend, one lab boot (bench/session.sh)
# Results: bench/results/<date>-<machine>.{json,md} and PNG plots beside them.

BENCH_SRCS := bench/kfork-bench.c bench/floor.c bench/figures.c bench/peer.c

$(B)/bench/kfork-bench: $(BENCH_SRCS) bench/bench.h $(B)/libkfork.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $(BENCH_SRCS) $(B)/libkfork.a -lseccomp -lz -lpthread -lm
all: $(B)/bench/kfork-bench

$(B)/bench/session-bench: bench/session.c $(B)/libkfork.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ bench/session.c $(B)/libkfork.a -lseccomp -lz -lpthread -lm
all: $(B)/bench/session-bench

# Only what the benchmark runs; a module that does not build (someone's work in
# progress) leaves the kmod backend unavailable instead of stopping the bench.
BENCH_DEPS := $(B)/bench/kfork-bench $(B)/kfork $(B)/tests/tiny.bin \
	$(B)/guest/vmlinux $(B)/guest/minimal.cpio.gz $(B)/guest/python.cpio.gz

.PHONY: bench
bench: $(BENCH_DEPS)
	-$(Q)$(MAKE) --no-print-directory kmod || \
		echo "bench: kfork.ko did not build: the lab loads an older build/kmod/kfork.ko if there is one (the report says so), else kmod is unavailable"
	$(Q)QUICK=$(QUICK) LAB=$(LAB) bench/run.sh

# Only the one-shot part (bench/oneshot.sh) in one lab boot: N processes per mode
# (default 100); results in build/bench/oneshot/oneshot.{md,json,png}.
.PHONY: bench-oneshot
bench-oneshot: $(BENCH_DEPS) kmod
	$(Q)tests/lab/lab.sh run "build/kfork template build --kind python -o /tmp/kfork-oneshot.tmpl >/dev/null && bench/oneshot.sh build/bench/oneshot /tmp/kfork-oneshot.tmpl $(or $(N),100)"

# In place vs fork-per-exec (bench/session.sh) in one lab boot, N cycles per mode and
# backend (default 200); results in build/bench/session/session.md.
.PHONY: bench-session
bench-session: $(B)/bench/session-bench $(B)/guest/vmlinux $(B)/guest/python.cpio.gz kmod
	$(Q)tests/lab/lab.sh run "bench/session.sh build/bench/session $(or $(N),200)"
