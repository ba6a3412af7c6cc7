# SPDX-License-Identifier: GPL-2.0-only
# guest.mk - the guest: kfork-agent (static PID 1), cached kernel, one initramfs per template kind.

AGENT_SRCS := $(wildcard guest/agent/*.c) userspace/proto/kf_proto.c userspace/proto/kf_mbox.c
AGENT_HDRS := $(wildcard guest/agent/*.h) userspace/proto/kf_proto.h

# Static: the minimal initramfs has no libc to load.
$(B)/kfork-agent: $(AGENT_SRCS) $(AGENT_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -static -o $@ $(AGENT_SRCS)

# build-kernel.sh keeps the kernel in $(KFORK_CACHE) keyed by its inputs and
# copies it here; this file is what make compares timestamps against.
$(B)/guest/vmlinux: guest/kernel.config guest/build-kernel.sh $(KSRC_TAR)
	@mkdir -p $(dir $@)
	$(Q)guest/build-kernel.sh -o $@ >/dev/null

$(B)/guest/%.cpio.gz: $(B)/kfork-agent guest/mkinitramfs.sh guest/python/kfork_zygote.py
	@mkdir -p $(dir $@)
	$(Q)guest/mkinitramfs.sh --kind $* -o $@ --agent $(B)/kfork-agent

all: $(B)/kfork-agent $(B)/guest/vmlinux $(B)/guest/minimal.cpio.gz $(B)/guest/python.cpio.gz
