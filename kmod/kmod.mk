# SPDX-License-Identifier: GPL-2.0-only
# kmod.mk - builds kfork.ko out of tree into build/kmod/ against Debian's kernel headers.
#
#   make kmod             build/kmod/kfork.ko (part of `make all` when headers are present)
#   make kmod-checkpatch  checkpatch.pl --strict over kmod/ (from linux-source-6.1)
#   make kmod-debug       build/kmod-debug/kfork.ko against the lab's debug kernel
#                         (tests/lab/build-debug-kernel.sh; part of `make all`)
#
# KMOD_KVER defaults to the kernel the linux-headers-amd64 package is for (never
# `uname -r`: the build host's kernel is not the one the module loads into).
# kbuild writes objects next to sources, so the sources are copied to build/kmod/.

KMOD_KVER ?= $(shell dpkg-query -W -f='$${Depends}' linux-headers-amd64 2>/dev/null | \
		sed -n 's/^linux-headers-\([^ ,]*\).*/\1/p')
KMOD_KDIR ?= /usr/src/linux-headers-$(KMOD_KVER)
KFORK_RELEASE := $(shell sed -n 's/^\#define KFORK_RELEASE[[:space:]]*"\(.*\)"/\1/p' kmod/internal.h)
KMOD_SRCS := $(wildcard kmod/*.c kmod/*.h kmod/uapi/*.h) kmod/Kbuild
KMOD_OUT := $(B)/kmod
KMOD_KO := $(KMOD_OUT)/kfork.ko

.PHONY: kmod kmod-checkpatch
ifneq ($(KMOD_KVER),)
ifneq ($(wildcard $(KMOD_KDIR)/Makefile),)
kmod: $(KMOD_KO)
all: kmod
# The release it is built for: when linux-headers-amd64 moves, so does the build.
$(KMOD_OUT)/kver: .kmod-kver-check
	@:
.PHONY: .kmod-kver-check
.kmod-kver-check:
	@mkdir -p $(KMOD_OUT)
	@echo $(KMOD_KVER) | cmp -s - $(KMOD_OUT)/kver || echo $(KMOD_KVER) >$(KMOD_OUT)/kver
$(KMOD_KO): $(KMOD_SRCS) $(KMOD_OUT)/kver
	@mkdir -p $(KMOD_OUT)/uapi
	$(Q)cp -p $(filter-out kmod/uapi/%,$(KMOD_SRCS)) $(KMOD_OUT)/
	$(Q)cp -p $(wildcard kmod/uapi/*.h) $(KMOD_OUT)/uapi/
	$(Q)$(MAKE) -C $(KMOD_KDIR) M=$(abspath $(KMOD_OUT)) W=1 $(if $(CI),KCFLAGS=-Werror) \
		$(if $(filter 1,$(V)),V=1) modules >$(KMOD_OUT)/build.log 2>&1 || \
		{ cat $(KMOD_OUT)/build.log; exit 1; }
	$(Q)grep -i 'warning' $(KMOD_OUT)/build.log || true
else
kmod:
	@echo "kmod: kernel headers for $(KMOD_KVER) not found in $(KMOD_KDIR): kfork.ko not built (apt-get install linux-headers-amd64)"
all: kmod
endif
else
kmod:
	@echo "kmod: linux-headers-amd64 not installed: kfork.ko not built (apt-get install linux-headers-amd64)"
all: kmod
endif

# The same sources against every other kernel issue 12 names: bookworm-backports'
# 6.12 (tests/deps.sh installs its headers), into build/kmod-<release>/. The lab
# boots that kernel with LAB_KVER=<release> and loads this build from there
# (tests/lab/init.sh); kmod/compat.h holds what differs.
KMOD_EXTRA_KVERS := $(patsubst linux-headers-%,%,$(notdir $(wildcard /usr/src/linux-headers-6.12*-amd64)))
define kmod_for_kver
$(B)/kmod-$(1)/kfork.ko: $(KMOD_SRCS)
	@mkdir -p $(B)/kmod-$(1)/uapi
	$(Q)cp -p $(filter-out kmod/uapi/%,$(KMOD_SRCS)) $(B)/kmod-$(1)/
	$(Q)cp -p $(wildcard kmod/uapi/*.h) $(B)/kmod-$(1)/uapi/
	$(Q)$$(MAKE) -C /usr/src/linux-headers-$(1) M=$(abspath $(B)/kmod-$(1)) W=1 $(if $(CI),KCFLAGS=-Werror) \
		$(if $(filter 1,$(V)),V=1) modules >$(B)/kmod-$(1)/build.log 2>&1 || \
		{ cat $(B)/kmod-$(1)/build.log; exit 1; }
	$(Q)grep -i 'warning' $(B)/kmod-$(1)/build.log || true
kmod: $(B)/kmod-$(1)/kfork.ko
endef
$(foreach v,$(KMOD_EXTRA_KVERS),$(eval $(call kmod_for_kver,$(v))))

# The same sources against the debug kernel's build tree, whose KVM is built in:
# its exports (kvm_get_kvm, kvm_mmu_page_fault, ...) come from vmlinux's Module.symvers.
# The tree's path is the cache key's, so ask the build script (instant once built).
KMOD_DEBUG_OUT := $(B)/kmod-debug
KMOD_DEBUG_KO := $(KMOD_DEBUG_OUT)/kfork.ko
.PHONY: kmod-debug
kmod-debug: $(KMOD_DEBUG_KO)
$(KMOD_DEBUG_KO): $(KMOD_SRCS) $(LAB_DEBUG_VMLINUX)
	@mkdir -p $(KMOD_DEBUG_OUT)/uapi
	$(Q)cp -p $(filter-out kmod/uapi/%,$(KMOD_SRCS)) $(KMOD_DEBUG_OUT)/
	$(Q)cp -p $(wildcard kmod/uapi/*.h) $(KMOD_DEBUG_OUT)/uapi/
	$(Q)kdir=$$(tests/lab/build-debug-kernel.sh) && \
		$(MAKE) -C $$kdir/build M=$(abspath $(KMOD_DEBUG_OUT)) KFORK_FAULT_KNOB=y W=1 $(if $(CI),KCFLAGS=-Werror) \
		$(if $(filter 1,$(V)),V=1) modules >$(KMOD_DEBUG_OUT)/build.log 2>&1 || \
		{ cat $(KMOD_DEBUG_OUT)/build.log; exit 1; }
	$(Q)grep -i 'warning' $(KMOD_DEBUG_OUT)/build.log || true

# checkpatch.pl and its data files come from Debian's linux-source-6.1, unmodified.
KMOD_CHECKPATCH := $(B)/checkpatch/scripts/checkpatch.pl
$(KMOD_CHECKPATCH):
	@mkdir -p $(B)/checkpatch
	$(Q)tar -xJf $(KSRC_TAR) -C $(B)/checkpatch --strip-components=1 \
		linux-source-6.1/scripts/checkpatch.pl linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
kmod-checkpatch: $(KMOD_CHECKPATCH)
	$(Q)$(KMOD_CHECKPATCH) --strict --no-tree --terse --show-types \
		--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG -f kmod/*.c kmod/*.h kmod/uapi/*.h

# tests/kmod/*_test.c: kselftest binaries the lab runs (tests/lab/run-in-lab.sh); they
# SKIP without /dev/kfork. Built whether or not the module can be.
KMOD_TESTS := $(patsubst tests/kmod/%.c,$(B)/tests/kmod/%,$(wildcard tests/kmod/*_test.c))
$(B)/tests/kmod/%: tests/kmod/%.c kmod/uapi/kfork.h $(KSELFTEST_H) $(B)/libkfork.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)
all: $(KMOD_TESTS)

# bench/kmod_vs_user: the module against the user backend, same run (run it in the lab).
$(B)/bench/kmod_vs_user: bench/kmod_vs_user.c $(B)/libkfork.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(TEST_LIBS)
all: $(B)/bench/kmod_vs_user

# DKMS, tried in the build tree: build/dkms-src holds kmod/ as DKMS wants a source,
# build/dkms is a DKMS tree where `dkms add` and `dkms build` made kfork.ko for
# KMOD_KVER; tests/lab/dkms_test installs that build in the lab and modprobes it
# (building under the lab's TCG would take minutes). Needs dkms and root.
KMOD_DKMS_KO := $(B)/dkms/kfork/$(KFORK_RELEASE)/$(KMOD_KVER)/x86_64/module/kfork.ko

# $(call kmod_dkms_stage,DIR): kmod/ laid out as the DKMS source DIR (uapi/ included).
define kmod_dkms_stage
	$(Q)rm -rf $(1)
	$(Q)mkdir -p $(1)/uapi
	$(Q)cp kmod/*.c kmod/*.h kmod/Kbuild kmod/dkms.conf $(1)/
	$(Q)cp kmod/uapi/*.h $(1)/uapi/
endef

# dkms add and build want root: a user's make skips them.
ifeq ($(shell id -u),0)
ifneq ($(wildcard /usr/sbin/dkms),)
ifneq ($(KMOD_KVER),)
ifneq ($(wildcard $(KMOD_KDIR)/Makefile),)
$(KMOD_DKMS_KO): $(KMOD_SRCS) kmod/dkms.conf
	$(Q)rm -rf $(B)/dkms $(B)/dkms-src
	$(call kmod_dkms_stage,$(B)/dkms-src/kfork-$(KFORK_RELEASE))
	$(Q)mkdir -p $(B)/dkms
	$(Q)for step in add build; do \
		dkms $$step -m kfork -v $(KFORK_RELEASE) -k $(KMOD_KVER) \
			--sourcetree $(abspath $(B)/dkms-src) --dkmstree $(abspath $(B)/dkms) \
			>$(B)/dkms/$$step.log 2>&1 || { cat $(B)/dkms/$$step.log; exit 1; }; \
	done
all: $(KMOD_DKMS_KO)
endif
endif
endif
endif

# make dkms: stage kmod/ as /usr/src/kfork-$(KFORK_RELEASE) and let DKMS build and
# install it for the running kernel (and rebuild it on every kernel upgrade). Root.
.PHONY: dkms
dkms:
	$(Q)dkms status -m kfork -v $(KFORK_RELEASE) | grep -q . && \
		dkms remove -m kfork -v $(KFORK_RELEASE) --all || true
	$(call kmod_dkms_stage,/usr/src/kfork-$(KFORK_RELEASE))
	$(Q)dkms install -m kfork -v $(KFORK_RELEASE)
	$(Q)install -D -m 0644 kmod/99-kfork.rules /etc/udev/rules.d/99-kfork.rules
	@echo "kfork $(KFORK_RELEASE): installed with DKMS; modprobe kfork loads it"
