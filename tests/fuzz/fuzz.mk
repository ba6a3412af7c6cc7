# SPDX-License-Identifier: GPL-2.0-only
# fuzz.mk - coverage-guided fuzzers (clang's libFuzzer, with ASan + UBSan) for what guests and files feed us.
#
#   make fuzz                                 every target, FUZZ_SECONDS (300) each
#   make fuzz FUZZ=proto FUZZ_SECONDS=60      one target
#
# Targets (tests/fuzz/<name>_fuzz.c -> build/fuzz/<name>_fuzz):
#   proto    the frame decoder (userspace/proto/kf_proto.c)
#   mbox     the host side of the mailbox rings (proto/kf_mbox.c, vmm/mbox.c)
#   tplfile  the template file loader (lib/tplfile.c)
#   state    kfork.ko's state blob parser (kmod/state_parse.c, against tests/fuzz/kshim/)
# Seeds: tests/fuzz/corpus/<name>/, written by `make fuzz-seeds` (tests/fuzz/mkseeds.c).
# Inputs that ever crashed one: tests/fuzz/crashes/<name>/, replayed by build/tests/host/fuzz_test
# (make check), which also runs each target for a few seconds. New finds of `make fuzz` go
# to build/fuzz/work/<name>/ (corpus and crash-* artefacts), never into the tree.
# Without clang's libFuzzer (Debian: clang-14, libclang-rt-14-dev) nothing here is built
# and fuzz_test skips.

FUZZ_TARGETS := proto mbox tplfile state
FUZZ ?= $(FUZZ_TARGETS)
FUZZ_SECONDS ?= 300
FUZZ_CC ?= clang-14
FUZZ_LIBFUZZER := $(wildcard $(shell $(FUZZ_CC) -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-x86_64.a)

FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer $(WARN) -Wno-unused-parameter -Wno-gnu-variable-sized-type-not-at-end -D_GNU_SOURCE -pthread \
	-Iuserspace/include -Iuserspace -Itests/fuzz
FUZZ_OUT := $(B)/fuzz
FUZZ_BINS := $(patsubst %,$(FUZZ_OUT)/%_fuzz,$(FUZZ_TARGETS))

ifneq ($(FUZZ_LIBFUZZER),)
# libkfork's sources, instrumented (coverage + ASan + UBSan), in their own archive.
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(LIB_SRCS))
$(FUZZ_OUT)/obj/%.o: %.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(subst fuzzer,fuzzer-no-link,$(FUZZ_SAN)) -c -o $@ $<
$(FUZZ_OUT)/libkfork.a: $(FUZZ_LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_OUT)/%_fuzz: tests/fuzz/%_fuzz.c tests/fuzz/fuzz.h $(FUZZ_OUT)/libkfork.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_OUT)/libkfork.a -lz -lpthread

# The module's parser alone, with the shim standing in for the kernel headers it includes.
FUZZ_KSHIM := $(wildcard tests/fuzz/kshim/linux/*.h)
$(FUZZ_OUT)/state_fuzz: tests/fuzz/state_fuzz.c tests/fuzz/fuzz.h kmod/state_parse.c kmod/state_parse.h \
		kmod/uapi/kfork.h $(FUZZ_KSHIM)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Itests/fuzz/kshim -Ikmod $(FUZZ_SAN) -o $@ \
		tests/fuzz/state_fuzz.c kmod/state_parse.c

all: $(FUZZ_BINS)

# Seed corpora: `make fuzz-seeds` rewrites tests/fuzz/corpus/ (commit the result).
$(FUZZ_OUT)/mkseeds: tests/fuzz/mkseeds.c $(B)/libkfork.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(B)/libkfork.a -lz -lpthread
fuzz-seeds: $(FUZZ_OUT)/mkseeds
	$(Q)mkdir -p tests/fuzz/corpus && $(FUZZ_OUT)/mkseeds tests/fuzz/corpus
.PHONY: fuzz-seeds

fuzz: $(patsubst %,$(FUZZ_OUT)/%_fuzz,$(FUZZ))
	$(Q)for t in $(FUZZ); do tests/fuzz/fuzz.sh $$t $(FUZZ_SECONDS) || exit 1; done
else
fuzz:
	@echo "fuzz: clang's libFuzzer not found ($(FUZZ_CC) -fsanitize=fuzzer): apt-get install clang-14 libclang-rt-14-dev"; exit 1
endif
.PHONY: fuzz
