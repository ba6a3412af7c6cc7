# SPDX-License-Identifier: GPL-2.0-only
# lab.mk - `make lab CMD='...'`: build everything, then run CMD in the lab VM (see tests/lab/lab.sh).
#
#   make lab CMD='build/tests/lab/e2e_test'        one lab boot: nested KVM, Debian 6.1, this tree at its own path
#   make lab CMD='ls -l /dev/kvm; uname -r'        any /bin/sh command line, quotes and $ included
#   make lab-prepare                               fetch/cache the lab kernel, modules and initramfs only
#
# CMD runs from the tree root; lab.sh exits with CMD's status (125: the lab did not
# come up, with one "lab: ..." line saying why); make reports it as "Error <status>"
# and, being make, exits 2 on any non-zero status. LAB_MEM, LAB_TIMEOUT, LAB_CPU,
# LAB_VERBOSE=1 tune the VM;
# LAB_APPEND adds to the lab kernel's command line. CMD reaches lab.sh through the environment, unexpanded
# ($(value ...)), so make neither eats its $ nor breaks on its quotes.

.PHONY: lab lab-prepare
lab: export KFORK_LAB_CMD = $(value CMD)
lab: all
	$(if $(value CMD),,$(error make lab needs a command: make lab CMD='...'))
	$(Q)tests/lab/lab.sh run "$$KFORK_LAB_CMD"

lab-prepare:
	$(Q)tests/lab/lab.sh prepare

# The lab's debug kernel (KASAN, lockdep, kmemleak; tests/lab/build-debug-kernel.sh),
# cached in $(KFORK_CACHE)/debug-kernel/<key>/ like the guest kernel: 15 CPU-min
# (722 s on 2 cores)
# from an empty cache, after the guest kernel (never both builds at once).
# This copy of its vmlinux is what make compares timestamps against.
# Built by make check (through make kmod-debug), not by make all: see Makefile.
$(LAB_DEBUG_VMLINUX): tests/lab/debug-kernel.config tests/lab/build-debug-kernel.sh $(KSRC_TAR) | $(B)/guest/vmlinux
	@mkdir -p $(dir $@)
	$(Q)tests/lab/build-debug-kernel.sh -o $@ >/dev/null

# Deliberate bugs in build/kmod-debug/kfork.ko (kmod/fault.c), one debug-lab boot
# each: proves KASAN, lockdep, kmemleak, sleep-in-atomic and WARN reports all end
# up as named failures. Not part of make check (a boot per kind, ~1-2 min each).
.PHONY: lab-debug-selftest
lab-debug-selftest: all kmod-debug
	$(Q)tests/lab/debug-selftest.sh
