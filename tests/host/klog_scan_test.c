// SPDX-License-Identifier: GPL-2.0-only
/* klog_scan_test.c - tests/lab/klog-scan.sh names every kernel report in recorded logs (tests/lab/klog/), and nothing in a clean one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "kselftest_harness.h"

#define SCAN "tests/lab/klog-scan.sh"
#define KLOG "tests/lab/klog/"

/* Runs the scanner with an empty prefix over ARGS; its stdout and exit status. */
static int scan(const char *args, char *out, size_t len)
{
	char cmd[512];
	size_t n = 0, got;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), SCAN " -p '' %s", args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (n + 1 < len && (got = fread(out + n, 1, len - 1 - n, p)) > 0)
		n += got;
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define SCANS(want_rc, want, args) do {						\
	char _out[4096];							\
	ASSERT_EQ(0, access(SCAN, X_OK)) TH_LOG("run from the tree root");	\
	EXPECT_EQ(want_rc, scan(args, _out, sizeof(_out)));			\
	EXPECT_STREQ(want, _out);						\
} while (0)

TEST(clean_boot_has_no_report)
{
	/* lockdep's and kmemleak's banners, KVM's chatter: none is a report. */
	SCANS(0, "", KLOG "clean.log");
}

TEST(kasan_names_kind_and_function_and_not_the_panic_it_caused)
{
	SCANS(1, "KASAN: slab-out-of-bounds in kfork_state_restore [kfork]\n", KLOG "kasan.log");
}

/* The debug selftest's own report: GCC moved the faulting read into kfork_fault_kasan.cold. */
TEST(kasan_names_a_split_function_after_the_function)
{
	SCANS(1, "KASAN: slab-out-of-bounds in kfork_fault_kasan [kfork]\n", KLOG "kasan-cold.log");
}

TEST(lockdep_names_the_place)
{
	SCANS(1, "lockdep: possible circular locking dependency detected at kfork_clone_create [kfork]\n",
	      KLOG "lockdep.log");
}

TEST(sleep_in_atomic)
{
	SCANS(1, "BUG: sleeping function called from invalid context at mm/slab.h:742\n", KLOG "sleep.log");
}

TEST(warn_names_file_line_function)
{
	SCANS(1, "WARNING at arch/x86/kvm/mmu/mmu.c:6458 kvm_mmu_zap_all\n", KLOG "warn.log");
}

TEST(oops_is_one_report)
{
	SCANS(1, "BUG: kernel NULL pointer dereference\n", KLOG "oops.log");
}

TEST(kmemleak_names_size_and_first_caller_past_the_allocator)
{
	SCANS(1, "kmemleak: unreferenced object (size 64) from kfork_template_add [kfork]\n"
	      "kmemleak: unreferenced object (size 32) from kvm_init\n", KLOG "kmemleak.txt");
}

TEST(every_file_counts)
{
	SCANS(1, "KASAN: slab-out-of-bounds in kfork_state_restore [kfork]\n"
	      "BUG: sleeping function called from invalid context at mm/slab.h:742\n",
	      KLOG "clean.log " KLOG "kasan.log " KLOG "sleep.log");
}

/* A panic nothing explains (no report before it in the same file) is one. */
TEST(bare_panic_and_console_line_endings)
{
	char path[] = "/tmp/klog-scan-test.XXXXXX";
	char args[64];
	int fd = mkstemp(path);
	static const char log[] =
		"<0>Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009\r\n"
		"[   12.5] BUG: KASAN: use-after-free in kfork_reset+0x10/0x20 [kfork]\r\n";

	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)sizeof(log) - 1, write(fd, log, sizeof(log) - 1));
	close(fd);
	snprintf(args, sizeof(args), "%s", path);
	SCANS(1, "panic: Attempted to kill init! exitcode=0x00000009\n"
	      "KASAN: use-after-free in kfork_reset [kfork]\n", args);
	unlink(path);
}

TEST(prefix_and_usage)
{
	char out[256];
	FILE *p = popen(SCAN " -p 'lab-debug: ' " KLOG "warn.log", "r");
	size_t n;

	ASSERT_NE(NULL, p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	EXPECT_EQ(1, WEXITSTATUS(pclose(p)));
	EXPECT_STREQ("lab-debug: WARNING at arch/x86/kvm/mmu/mmu.c:6458 kvm_mmu_zap_all\n", out);
	EXPECT_EQ(2 << 8, system(SCAN " 2>/dev/null"));
}

TEST_HARNESS_MAIN
