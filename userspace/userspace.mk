# SPDX-License-Identifier: GPL-2.0-only
# userspace.mk - libkfork (lib + vmm + proto) and the kfork CLI.

LIB_SRCS := $(wildcard userspace/lib/*.c userspace/vmm/*.c) userspace/proto/kf_proto.c userspace/proto/kf_mbox.c
LIB_OBJS := $(patsubst %.c,$(B)/%.o,$(LIB_SRCS))
LIB_HDRS := $(wildcard userspace/include/*.h userspace/lib/*.h userspace/vmm/*.h userspace/proto/*.h)

# Hidden by default: only kfork.h's KF_API functions leave the library.
$(B)/userspace/%.o: userspace/%.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

# The tree's own archive: every object as it is, internals (hidden, but global
# within a static link) reachable, for tests and benchmarks that include
# lib/internal.h. Never installed.
$(B)/libkfork.a: $(LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

# What is installed. The shared library exports the version script's names;
# the static one is one partially linked object whose hidden symbols are made
# local, so vm_create, state_save... cannot collide with a program's own.
# 1 since 0.2.0: struct kf_exec_req grew (the caller limits), so a program built
# against libkfork.so.0 would pass a shorter struct; it must be rebuilt, and the
# loader will not hand it this library by mistake.
KF_SONAME_MAJOR := 1
KF_LIB_VERSION := $(shell sed -n 's/^\#define KF_VERSION_STRING\t*"\(.*\)"/\1/p' userspace/include/kfork.h)
KF_SO := $(B)/lib/libkfork.so.$(KF_LIB_VERSION)
KF_MAP := userspace/lib/libkfork.map
$(KF_SO): $(LIB_OBJS) $(KF_MAP)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -shared -Wl,-soname,libkfork.so.$(KF_SONAME_MAJOR) \
		-Wl,--version-script=$(KF_MAP) -Wl,--no-undefined -o $@ $(LIB_OBJS) -lseccomp -lz -lpthread
	$(Q)ln -sf $(notdir $@) $(B)/lib/libkfork.so.$(KF_SONAME_MAJOR)
	$(Q)ln -sf libkfork.so.$(KF_SONAME_MAJOR) $(B)/lib/libkfork.so

$(B)/lib/libkfork.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q)$(LD) -r -o $(B)/lib/libkfork.o $(LIB_OBJS)
	$(Q)objcopy --localize-hidden $(B)/lib/libkfork.o
	$(Q)rm -f $@ && ar rcs $@ $(B)/lib/libkfork.o


# Other parts of the tree add objects (and a prerequisite line) and libraries
# the kfork binary links: KFORK_OBJS += x.o; KFORK_LDLIBS += -lfoo.
KFORK_OBJS :=
KFORK_LDLIBS :=
# kfork stats / events (cli/stats.c): kfork.ko's generic-netlink family, through libnl-genl-3.
KFORK_LDLIBS += -lnl-genl-3 -lnl-3
# Every JSON the CLI writes (cli/cli.c): Debian's jansson.
KFORK_LDLIBS += -ljansson
$(B)/kfork: private CFLAGS += -I/usr/include/libnl3
# The CLI links the installed archive: it uses kfork.h and nothing internal.
$(B)/kfork: $(wildcard userspace/cli/*.c userspace/cli/*.h) $(B)/lib/libkfork.a $(LIB_HDRS)
	$(Q)$(CC) $(CFLAGS) -o $@ $(wildcard userspace/cli/*.c) $(KFORK_OBJS) $(B)/lib/libkfork.a \
		$(KFORK_LDLIBS) -lseccomp -lz -lpthread -lm

all: $(B)/libkfork.a $(KF_SO) $(B)/lib/libkfork.a $(B)/kfork

# The main job (README): templates, clones, code, latency. N=clones per figure.
demo:
	$(Q)tests/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)N=$(or $(N),100) userspace/cli/demo.sh
.PHONY: demo

# The JSON writer's unit test compiles it in (tests/host/json_test.c).
$(B)/tests/host/json_test: userspace/cli/cli.c userspace/cli/cli.h
$(B)/tests/host/json_test: private TEST_LIBS += userspace/cli/cli.c -ljansson -lm

# kforkd (userspace/kforkd/): the HTTP service. libmicrohttpd and jansson from Debian;
# like the CLI it links the installed archive and uses kfork.h only.
KFORKD_SRCS := $(wildcard userspace/kforkd/*.c)
$(B)/kforkd: $(KFORKD_SRCS) userspace/kforkd/kforkd.h $(B)/lib/libkfork.a userspace/include/kfork.h
	$(Q)$(CC) $(CFLAGS) -o $@ $(KFORKD_SRCS) $(B)/lib/libkfork.a \
		-lmicrohttpd -ljansson -lseccomp -lz -lpthread
all: $(B)/kforkd
