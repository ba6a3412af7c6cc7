# SPDX-License-Identifier: GPL-2.0-only
# Makefile - builds kfork: libkfork, the VMM, the CLI, the guest, tests, benchmarks.
#
#   make            build everything user space needs (build/)
#   make check      host tests + lab tests, ending in "N passed, N failed, N skipped"
#   make lab CMD=.. boot the lab VM with this tree inside and run CMD there
#   make soak       SOAK_N (100000) spawn/exec/destroy cycles and resets per backend, in the lab
#   make install    PREFIX=/usr/local DESTDIR= (install.mk)
#   make V=1        show the commands
#
# Long-lived artefacts (guest kernel, lab kernels) live in $(KFORK_CACHE), outside
# the tree, keyed by what they are built from.

KFORK_CACHE ?= $(HOME)/.cache/kfork
export KFORK_CACHE
B := build

CC ?= gcc
WARN := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes
ifdef CI
WARN += -Werror
endif
CFLAGS ?= -O2 -g
CFLAGS += $(WARN) -D_GNU_SOURCE -pthread -Iuserspace/include -Iuserspace -I$(B)/include

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all check lab clean
all:

# kselftest harness headers come from Debian's linux-source-6.1, unmodified.
KSRC_TAR := /usr/src/linux-source-6.1.tar.xz
KSELFTEST_H := $(B)/include/kselftest_harness.h $(B)/include/kselftest.h
$(KSELFTEST_H) &:
	@mkdir -p $(B)/include
	$(Q)tar -xJf $(KSRC_TAR) -C $(B) --strip-components=4 --wildcards \
		'linux-source-6.1/tools/testing/selftests/kselftest*.h'
	$(Q)mv $(B)/kselftest*.h $(B)/include/

# The lab's debug kernel (tests/lab/lab.mk) and kfork.ko built against it
# (kmod/kmod.mk, make kmod-debug): make check builds both and runs the kmod
# tests under it as well as under Debian's kernel. make all leaves them out, so
# make demo does not wait for the debug kernel's first build. make check
# DEBUG_KERNEL=0 skips that half (and says so in its summary).
DEBUG_KERNEL ?= 1
export DEBUG_KERNEL
LAB_DEBUG_VMLINUX := $(B)/debug-kernel/vmlinux

include userspace/userspace.mk
include kmod/kmod.mk
include userspace/bpf/bpf.mk
include guest/guest.mk
include tests/tests.mk
include tests/fuzz/fuzz.mk
include tests/lab/lab.mk
include bench/bench.mk
include install.mk

clean:
	rm -rf $(B)
