# SPDX-License-Identifier: GPL-2.0-only
# bpf.mk - kfork trace's BPF side: vmlinux.h from the build host's BTF, the CO-RE object, its skeleton.
#
# The object is CO-RE: built against this host's BTF, it loads on any kernel with
# BTF (the lab's 6.1 included). BTF_VMLINUX=FILE uses another kernel's BTF.

BPF_B := $(B)/userspace/bpf
BTF_VMLINUX ?= /sys/kernel/btf/vmlinux
BPFTOOL ?= bpftool
CLANG ?= clang
# usdt.bpf.h includes <linux/errno.h>, whose <asm/...> lives under the multiarch dir.
BPF_CFLAGS := -target bpf -g -O2 -D__TARGET_ARCH_x86 -Wall -Werror -I$(BPF_B) -Iuserspace/bpf \
	-idirafter /usr/include/$(shell $(CC) -dumpmachine)

$(BPF_B)/vmlinux.h:
	@mkdir -p $(dir $@)
	@test -r $(BTF_VMLINUX) || { echo "bpf.mk: $(BTF_VMLINUX) is missing: this kernel was built without BTF (CONFIG_DEBUG_INFO_BTF=y), so vmlinux.h for kfork trace cannot be generated; build with BTF_VMLINUX=<a kernel's vmlinux or BTF file>" >&2; exit 1; }
	$(Q)$(BPFTOOL) btf dump file $(BTF_VMLINUX) format c > $@.tmp
	$(Q)mv $@.tmp $@

$(BPF_B)/trace.bpf.o: userspace/bpf/trace.bpf.c userspace/bpf/trace.h $(BPF_B)/vmlinux.h
	$(Q)$(CLANG) $(BPF_CFLAGS) -c -o $@ $<

$(BPF_B)/trace.skel.h: $(BPF_B)/trace.bpf.o
	$(Q)$(BPFTOOL) gen skeleton $< name trace_bpf > $@.tmp
	$(Q)mv $@.tmp $@

$(BPF_B)/trace.o: userspace/bpf/trace.c userspace/bpf/trace.h $(BPF_B)/trace.skel.h
	$(Q)$(CC) $(CFLAGS) -I$(BPF_B) -c -o $@ $<

$(B)/kfork: $(BPF_B)/trace.o
KFORK_OBJS += $(BPF_B)/trace.o
KFORK_LDLIBS += -lbpf -lelf
