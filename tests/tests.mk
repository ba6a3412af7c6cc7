# SPDX-License-Identifier: GPL-2.0-only
# tests.mk - every tests/host/*_test.c and tests/lab/*_test.c is one kselftest binary.
#
# Host tests run here; lab tests run inside the lab VM (nested KVM, Linux guests).
# Both link libkfork so they can drive clones through the public API.

HOST_TESTS := $(patsubst tests/host/%.c,$(B)/tests/host/%,$(wildcard tests/host/*_test.c))
LAB_TESTS := $(patsubst tests/lab/%.c,$(B)/tests/lab/%,$(wildcard tests/lab/*_test.c))
TEST_LIBS := $(B)/libkfork.a -lseccomp -lz -lpthread
TEST_HDRS := $(wildcard tests/*.h tests/*/*.h) $(LIB_HDRS)
# kselftest_harness.h itself trips these; everything else stays on.
TEST_CFLAGS = $(CFLAGS) -Wno-missing-prototypes -Wno-unused-parameter -Wno-sign-compare

$(B)/tests/host/%: tests/host/%.c $(KSELFTEST_H) $(B)/libkfork.a $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

$(B)/tests/lab/%: tests/lab/%.c $(KSELFTEST_H) $(B)/libkfork.a $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

tests: $(HOST_TESTS) $(LAB_TESTS)
all: tests
.PHONY: tests

# The README's test command: packages, build, then every test.
check:
	$(Q)tests/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/run.sh

# The tiny guest: 32-bit, freestanding, loaded flat at 0x10000 (see vmm/boot.c).
TINY_CFLAGS := -m32 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -mno-sse -mno-mmx \
	-mgeneral-regs-only -Os -nostdlib -Iuserspace $(WARN)
$(B)/tests/tiny.bin: tests/tiny/tiny.c tests/tiny/tiny.ld userspace/proto/kf_proto.c userspace/proto/kf_proto.h
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TINY_CFLAGS) -static -Wl,-T,tests/tiny/tiny.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
		-o $(B)/tests/tiny.elf tests/tiny/tiny.c userspace/proto/kf_proto.c
	$(Q)objcopy -O binary $(B)/tests/tiny.elf $@
tests: $(B)/tests/tiny.bin

# The hostile lab test's guest side: static, freestanding x86-64, sent to clones as stdin.
HOSTILE_CFLAGS := -ffreestanding -fno-pic -fno-pie -fno-stack-protector -mgeneral-regs-only -Os \
	-nostdlib -static -Iuserspace $(WARN)
$(B)/guest/hostile-guest: tests/lab/hostile_guest.c userspace/proto/kf_proto.c userspace/proto/kf_proto.h userspace/proto/kf_mbox.h
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(HOSTILE_CFLAGS) -s -Wl,--build-id=none -o $@ tests/lab/hostile_guest.c userspace/proto/kf_proto.c
tests: $(B)/guest/hostile-guest
# The soak (tests/soak/soak.c): a tool, not a kselftest; tests/lab/soak_test.c runs it
# short, `make soak` long. SOAK_N cycles per phase per backend (one lab boot; the
# lab takes ~0.3-0.7 s per N over both backends, so the default needs many hours;
# LAB_TIMEOUT follows SOAK_N: 1 s per N + 900 s).
SOAK := $(B)/tests/soak/soak
$(SOAK): tests/soak/soak.c $(B)/libkfork.a $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(TEST_LIBS)
tests: $(SOAK)

SOAK_N ?= 100000
soak: all
	$(Q)LAB_TIMEOUT=$${LAB_TIMEOUT:-$$(( $(SOAK_N) + 900 ))} \
		tests/lab/lab.sh run "SOAK_N=$(SOAK_N) tests/soak/soak.sh"
.PHONY: soak
