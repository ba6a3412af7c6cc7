# SPDX-License-Identifier: GPL-2.0-only
# userspace.mk - libkfork (lib + vmm + proto) and the kfork CLI.

LIB_SRCS := $(wildcard userspace/lib/*.c userspace/vmm/*.c) userspace/proto/kf_proto.c userspace/proto/kf_mbox.c
LIB_OBJS := $(patsubst %.c,$(B)/%.o,$(LIB_SRCS))
LIB_HDRS := $(wildcard userspace/include/*.h userspace/lib/*.h userspace/vmm/*.h userspace/proto/*.h)

$(B)/userspace/%.o: userspace/%.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -fPIC -c -o $@ $<

$(B)/libkfork.a: $(LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

# Other parts of the tree add objects (and a prerequisite line) and libraries
# the kfork binary links: KFORK_OBJS += x.o; KFORK_LDLIBS += -lfoo.
KFORK_OBJS :=
KFORK_LDLIBS :=
# kfork stats / events (cli/stats.c): kfork.ko's generic-netlink family, through libnl-genl-3.
KFORK_LDLIBS += -lnl-genl-3 -lnl-3
$(B)/kfork: private CFLAGS += -I/usr/include/libnl3
$(B)/kfork: $(wildcard userspace/cli/*.c) $(B)/libkfork.a $(LIB_HDRS)
	$(Q)$(CC) $(CFLAGS) -o $@ $(wildcard userspace/cli/*.c) $(KFORK_OBJS) $(B)/libkfork.a \
		$(KFORK_LDLIBS) -lz -lpthread -lm

all: $(B)/libkfork.a $(B)/kfork

# The main job (README): templates, clones, code, latency. N=clones per figure.
demo:
	$(Q)tests/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)N=$(or $(N),100) userspace/cli/demo.sh
.PHONY: demo
