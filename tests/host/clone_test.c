// SPDX-License-Identifier: GPL-2.0-only
/* clone_test.c - the clone machinery on this host's KVM, driven through libkfork with the tiny guest. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "kfork.h"
#include "kselftest_harness.h"
#include "lib/internal.h"

#define TINY_BIN	"build/tests/tiny.bin"
#define PROBE_ADDR	0x200000	/* a page the tiny guest never touches by itself */

static const char *tiny_image(void)
{
	const char *env = getenv("KFORK_TINY");

	return env ? env : TINY_BIN;
}

/* Why a KVM test cannot run here, or NULL. */
static const char *kvm_missing(void)
{
	if (access("/dev/kvm", R_OK | W_OK))
		return "/dev/kvm not available";
	if (access(tiny_image(), R_OK))
		return "build/tests/tiny.bin not built (run make)";
	return NULL;
}

static int build_tiny(const char *path)
{
	struct kf_build_opts opts = { .kind = KF_KIND_TINY, .kernel = tiny_image() };

	return kf_template_build(&opts, path);
}

static int run(struct kf_clone *clone, const char *code, struct kf_exec_result *res)
{
	struct kf_exec_req req = {
		.lang = KF_EXEC_SH, .code = code, .code_len = strlen(code), .timeout_ms = 60000,
	};

	return kf_exec(clone, &req, res);
}

/* Run code, expect exit 0, return a copy of stdout (caller frees). */
static char *run_out(struct kf_clone *clone, const char *code)
{
	struct kf_exec_result res;
	char *out;

	if (run(clone, code, &res) || res.exit_code) {
		fprintf(stderr, "# exec '%s': %s\n", code, kf_last_error());
		kf_exec_result_free(&res);
		return NULL;
	}
	out = strdup(res.out ? res.out : "");
	kf_exec_result_free(&res);
	return out;
}

FIXTURE(tmpl) {
	char path[64];
	struct kf_template *tmpl;
	const char *skip;
};

FIXTURE_SETUP(tmpl)
{
	int err;

	self->tmpl = NULL;
	self->skip = kvm_missing();
	snprintf(self->path, sizeof(self->path), "/tmp/kfork-clone-test-%d.tmpl", getpid());
	if (self->skip)
		SKIP(return, "%s", self->skip);
	err = build_tiny(self->path);
	ASSERT_EQ(0, err) TH_LOG("kf_template_build: %s", kf_last_error());
	err = kf_template_open(self->path, KF_BACKEND_USER, &self->tmpl);
	ASSERT_EQ(0, err) TH_LOG("kf_template_open: %s", kf_last_error());
}

FIXTURE_TEARDOWN(tmpl)
{
	kf_template_close(self->tmpl);
	unlink(self->path);
}

/* 6.1's harness runs the body after SKIP() in setup: bodies start with this. */
#define NEED_KVM() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

static int corrupt_file(const char *src, const char *dst, off_t off, int truncate_to)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cp %s %s", src, dst);
	if (system(cmd))
		return -1;
	if (truncate_to >= 0)
		return truncate(dst, truncate_to);
	{
		int fd = open(dst, O_RDWR);
		unsigned char b;

		if (fd < 0 || pread(fd, &b, 1, off) != 1)
			return -1;
		b ^= 0x5a;
		if (pwrite(fd, &b, 1, off) != 1)
			return -1;
		return close(fd);
	}
}

/* Template header fields (tplfile.c), for files made by hand. */
#define HDR_VERSION	8
#define HDR_FILE_SIZE	16
#define HDR_CRC		24
#define HDR_MEM_SIZE	32
#define HDR_WSET_OFF	96
#define HDR_WSET_COUNT	104

/*
 * Copies src to dst, sets the version, appends entries as a working set
 * (none: leaves it as it is; version 1: clears its fields) and writes the
 * checksum back as tplfile.c does.
 */
static int remake_file(const char *src, const char *dst, uint32_t version, const uint64_t *wset,
		       uint64_t n)
{
	char cmd[512];
	uint8_t *buf;
	uint64_t size, off;
	struct stat st;
	uint32_t crc;
	int fd, ret = -1;

	snprintf(cmd, sizeof(cmd), "cp %s %s", src, dst);
	if (system(cmd) || stat(dst, &st))
		return -1;
	size = st.st_size + n * 8;
	buf = calloc(1, size);
	fd = open(dst, O_RDWR);
	if (!buf || fd < 0 || pread(fd, buf, st.st_size, 0) != st.st_size)
		goto out;
	memcpy(buf + HDR_VERSION, &version, 4);
	if (version == 1 && !n)		/* as format 1 wrote it: no working-set fields */
		memset(buf + HDR_WSET_OFF, 0, 16);
	if (n) {
		off = st.st_size;
		memcpy(buf + off, wset, n * 8);
		memcpy(buf + HDR_WSET_OFF, &off, 8);
		memcpy(buf + HDR_WSET_COUNT, &n, 8);
		memcpy(buf + HDR_FILE_SIZE, &size, 8);
	}
	memset(buf + HDR_CRC, 0, 4);
	crc = crc32(0, buf, size);
	memcpy(buf + HDR_CRC, &crc, 4);
	if (pwrite(fd, buf, size, 0) == (ssize_t)size)
		ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

/* Files from before the working set (format 1) still open. */
TEST_F(tmpl, opens_a_version_1_file)
{
	struct kf_template *t;
	char old[80];

	NEED_KVM();
	snprintf(old, sizeof(old), "%s.v1", self->path);
	ASSERT_EQ(0, remake_file(self->path, old, 1, NULL, 0));
	ASSERT_EQ(0, kf_template_open(old, KF_BACKEND_USER, &t)) TH_LOG("%s", kf_last_error());
	EXPECT_EQ(0, t->wset_len);
	kf_template_close(t);
	unlink(old);
}

/* A working set is read back whole, and one naming a page past guest memory is refused. */
TEST_F(tmpl, reads_the_working_set_and_refuses_a_bad_one)
{
	uint64_t good[2] = { 0, 1 | KF_WSET_WRITE }, bad[1];
	struct kf_template *t;
	char path[80];

	NEED_KVM();
	snprintf(path, sizeof(path), "%s.wset", self->path);
	ASSERT_EQ(0, remake_file(self->path, path, 2, good, 2));
	ASSERT_EQ(0, kf_template_open(path, KF_BACKEND_USER, &t)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(2, t->wset_len);
	EXPECT_EQ(good[1], t->wset[1]);
	bad[0] = t->mem_size / 4096;
	kf_template_close(t);
	ASSERT_EQ(0, remake_file(self->path, path, 2, bad, 1));
	EXPECT_EQ(-EINVAL, kf_template_open(path, KF_BACKEND_USER, &t));
	EXPECT_NE(NULL, strstr(kf_last_error(), "corrupt working set")) TH_LOG("%s", kf_last_error());
	bad[0] = 1ull << 60;	/* a flag the module does not know */
	ASSERT_EQ(0, remake_file(self->path, path, 2, bad, 1));
	EXPECT_EQ(-EINVAL, kf_template_open(path, KF_BACKEND_USER, &t));
	/* Version 1 has no working set. */
	ASSERT_EQ(0, remake_file(self->path, path, 1, good, 2));
	EXPECT_EQ(-EINVAL, kf_template_open(path, KF_BACKEND_USER, &t));
	EXPECT_NE(NULL, strstr(kf_last_error(), "corrupt template header")) TH_LOG("%s", kf_last_error());
	unlink(path);
}

TEST_F(tmpl, refuses_missing_file)
{
	struct kf_template *t;

	NEED_KVM();
	ASSERT_EQ(-ENOENT, kf_template_open("/nonexistent/x.tmpl", KF_BACKEND_USER, &t));
}

TEST_F(tmpl, refuses_corrupt_page)
{
	struct kf_template *t;
	struct stat st;
	char bad[80];

	NEED_KVM();
	snprintf(bad, sizeof(bad), "%s.bad", self->path);
	ASSERT_EQ(0, stat(self->path, &st));
	ASSERT_EQ(0, corrupt_file(self->path, bad, st.st_size - 100, -1));
	ASSERT_EQ(-EINVAL, kf_template_open(bad, KF_BACKEND_USER, &t));
	EXPECT_NE(NULL, strstr(kf_last_error(), "checksum"));
	unlink(bad);
}

TEST_F(tmpl, refuses_truncated)
{
	struct kf_template *t;
	char bad[80];

	NEED_KVM();
	snprintf(bad, sizeof(bad), "%s.bad", self->path);
	ASSERT_EQ(0, corrupt_file(self->path, bad, 0, 8192));
	ASSERT_EQ(-EINVAL, kf_template_open(bad, KF_BACKEND_USER, &t));
	EXPECT_NE(NULL, strstr(kf_last_error(), "truncated"));
	unlink(bad);
}

TEST_F(tmpl, refuses_other_version)
{
	struct kf_template *t;
	char bad[80];

	NEED_KVM();
	snprintf(bad, sizeof(bad), "%s.bad", self->path);
	ASSERT_EQ(0, corrupt_file(self->path, bad, 8, -1));	/* version field */
	ASSERT_EQ(-EINVAL, kf_template_open(bad, KF_BACKEND_USER, &t));
	EXPECT_NE(NULL, strstr(kf_last_error(), "version"));
	unlink(bad);
}

TEST_F(tmpl, refuses_bad_magic)
{
	struct kf_template *t;
	char bad[80];

	NEED_KVM();
	snprintf(bad, sizeof(bad), "%s.bad", self->path);
	ASSERT_EQ(0, corrupt_file(self->path, bad, 0, -1));
	ASSERT_EQ(-EINVAL, kf_template_open(bad, KF_BACKEND_USER, &t));
	EXPECT_NE(NULL, strstr(kf_last_error(), "not a kfork template"));
	unlink(bad);
}

/*
 * A template frozen on another CPU model: change one CPUID register in the
 * file and fix up its CRC, as a valid file from elsewhere would look.
 */
TEST_F(tmpl, refuses_other_cpu)
{
	/* header 4 KiB, then the CPUID state item: tag+len, kvm_cpuid2 head, entry 0 */
	const off_t eax0 = 4096 + 8 + 8 + 12, crc_off = 24;
	struct kf_template *t;
	static unsigned char buf[1 << 20];
	char bad[80];
	uint32_t crc;
	ssize_t n;
	int fd;

	NEED_KVM();
	snprintf(bad, sizeof(bad), "%s.bad", self->path);
	ASSERT_EQ(0, corrupt_file(self->path, bad, eax0, -1));
	fd = open(bad, O_RDWR);
	ASSERT_LE(0, fd);
	n = pread(fd, buf, sizeof(buf), 0);
	ASSERT_LT(0, n);
	ASSERT_GT(sizeof(buf), (size_t)n);
	memset(buf + crc_off, 0, 4);
	crc = crc32(0, buf, n);
	ASSERT_EQ(4, pwrite(fd, &crc, 4, crc_off));
	close(fd);
	ASSERT_EQ(-EINVAL, kf_template_open(bad, KF_BACKEND_USER, &t));
	EXPECT_NE(NULL, strstr(kf_last_error(), "different CPU")) TH_LOG("%s", kf_last_error());
	unlink(bad);
}

TEST_F(tmpl, rejects_bad_exec_request)
{
	struct kf_exec_req req = { .lang = 7, .code = "echo", .code_len = 4 };
	struct kf_exec_result res;
	struct kf_clone *clone;
	static char big[70000];

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
	EXPECT_EQ(-EINVAL, kf_exec(clone, &req, &res));
	req.lang = KF_EXEC_SH;
	memset(big, 'x', sizeof(big));
	req.code = big;
	req.code_len = sizeof(big);
	EXPECT_EQ(-E2BIG, kf_exec(clone, &req, &res));
	/* The clone still works after refused requests. */
	EXPECT_EQ(0, run(clone, "echo ok", &res));
	EXPECT_STREQ("ok\n", res.out);
	kf_exec_result_free(&res);
	kf_destroy(clone);
}

static int run_lang(struct kf_clone *clone, enum kf_exec_lang lang, const char *code,
		    struct kf_exec_result *res)
{
	struct kf_exec_req req = { .lang = lang, .code = code, .code_len = strlen(code),
				   .timeout_ms = 60000 };

	return kf_exec(clone, &req, res);
}

/* Sessions are for python templates; a hostile EXIT cannot claim one ended. */
TEST_F(tmpl, session_needs_python_and_hostile_exit_is_rejected)
{
	struct kf_exec_result res;
	struct kf_clone *clone;

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
	EXPECT_EQ(-EOPNOTSUPP, kf_session_begin(clone));
	EXPECT_NE(NULL, strstr(kf_last_error(), "sessions need a python template")) TH_LOG("%s", kf_last_error());
	EXPECT_EQ(KF_SESSION_NONE, kf_session_state(clone));
	/* KF_EXIT_F_SESSION_LOST in answer to an exec that was not a session's */
	EXPECT_EQ(-EPROTO, run_lang(clone, KF_EXEC_PYTHON, "rawexit 100 5", &res));
	EXPECT_NE(NULL, strstr(kf_last_error(), "says a session ended, but none ran")) TH_LOG("%s", kf_last_error());
	EXPECT_EQ(KF_SESSION_NONE, kf_session_state(clone));
	kf_exec_result_free(&res);
	ASSERT_EQ(0, kf_reset(clone));
	/* unknown kind bits */
	EXPECT_EQ(-EPROTO, run_lang(clone, KF_EXEC_PYTHON, "rawexit 200 5", &res));
	kf_exec_result_free(&res);
	ASSERT_EQ(0, kf_reset(clone));
	EXPECT_EQ(-EPROTO, run_lang(clone, KF_EXEC_SH, "rawexit 101 9", &res));
	kf_exec_result_free(&res);
	ASSERT_EQ(0, kf_reset(clone));
	ASSERT_EQ(0, run(clone, "echo ok", &res));
	EXPECT_STREQ("ok\n", res.out);
	kf_exec_result_free(&res);
	kf_destroy(clone);
}

/* The agent's KF_ERR_SESSION: the interpreter is gone; like any agent error, reset. */
TEST_F(tmpl, agent_session_error_loses_python_until_reset)
{
	struct kf_exec_result res;
	struct kf_clone *clone;
	char code[32];

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
	snprintf(code, sizeof(code), "agenterr %d", KF_ERR_SESSION);
	/* from an sh exec it is only a protocol error */
	EXPECT_EQ(-EPROTO, run_lang(clone, KF_EXEC_SH, code, &res));
	EXPECT_EQ(KF_SESSION_NONE, kf_session_state(clone));
	kf_exec_result_free(&res);
	ASSERT_EQ(0, kf_reset(clone));
	EXPECT_EQ(-ESRCH, run_lang(clone, KF_EXEC_PYTHON, code, &res));
	EXPECT_EQ(KF_SESSION_LOST, kf_session_state(clone));
	kf_exec_result_free(&res);
	/* refused on the host now, without asking the guest */
	EXPECT_EQ(-ESRCH, run_lang(clone, KF_EXEC_PYTHON, "echo no", &res));
	EXPECT_NE(NULL, strstr(kf_last_error(), "kf_reset() it for a fresh one")) TH_LOG("%s", kf_last_error());
	EXPECT_EQ(0, res.out_len);
	kf_exec_result_free(&res);
	/* the exec's STDIN frames may still draw answers: sh waits for the reset too */
	EXPECT_EQ(-EBUSY, run(clone, "echo sh", &res));
	kf_exec_result_free(&res);
	ASSERT_EQ(0, kf_reset(clone));
	EXPECT_EQ(KF_SESSION_NONE, kf_session_state(clone));
	ASSERT_EQ(0, run_lang(clone, KF_EXEC_PYTHON, "echo py", &res));
	EXPECT_STREQ("py\n", res.out);
	kf_exec_result_free(&res);
	kf_destroy(clone);
}

TEST_F(tmpl, exit_code_and_streams)
{
	struct kf_exec_result res;
	struct kf_clone *clone;

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
	ASSERT_EQ(0, run(clone, "exit 3", &res));
	EXPECT_EQ(3, res.exit_code);
	kf_exec_result_free(&res);
	ASSERT_EQ(0, run(clone, "err to-stderr", &res));
	EXPECT_EQ(0, res.exit_code);
	EXPECT_EQ(0, res.out_len);
	EXPECT_STREQ("to-stderr\n", res.err);
	EXPECT_GT(res.exits, 0);
	kf_exec_result_free(&res);
	kf_destroy(clone);
}

TEST_F(tmpl, stdin_reaches_guest)
{
	struct kf_exec_req req = {
		.lang = KF_EXEC_SH, .code = "cat", .code_len = 3,
		.stdin_data = "line one\nline two\n", .stdin_len = 18, .timeout_ms = 60000,
	};
	struct kf_exec_result res;
	struct kf_clone *clone;

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
	ASSERT_EQ(0, kf_exec(clone, &req, &res));
	EXPECT_STREQ("line one\nline two\n", res.out);
	kf_exec_result_free(&res);
	kf_destroy(clone);
}

TEST_F(tmpl, large_output_intact)
{
	struct kf_exec_result res;
	struct kf_clone *clone;
	size_t n = 65536, bad = n;

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
	ASSERT_EQ(0, run(clone, "out 65536", &res));
	ASSERT_EQ(n, res.out_len);
	for (size_t i = 0; i < n && bad == n; i++)
		if (res.out[i] != 'a' + (char)(i % 26))
			bad = i;
	EXPECT_EQ(n, bad) TH_LOG("first differing byte at %zu", bad);
	kf_exec_result_free(&res);
	kf_destroy(clone);
}

TEST_F(tmpl, timeout_stops_and_reset_recovers)
{
	struct kf_exec_req req = { .lang = KF_EXEC_SH, .code = "spin", .code_len = 4,
				   .timeout_ms = 300 };
	struct kf_exec_result res;
	struct kf_clone *clone;

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
	ASSERT_EQ(-ETIMEDOUT, kf_exec(clone, &req, &res));
	EXPECT_EQ(1, res.timed_out);
	EXPECT_LT(res.exec_ns, 5000000000ull);
	kf_exec_result_free(&res);
	/* A timed-out clone is refused until reset. */
	EXPECT_EQ(-EBUSY, run(clone, "echo x", &res));
	ASSERT_EQ(0, kf_reset(clone));
	ASSERT_EQ(0, run(clone, "echo back", &res));
	EXPECT_STREQ("back\n", res.out);
	kf_exec_result_free(&res);
	kf_destroy(clone);
}

TEST_F(tmpl, write_in_one_clone_invisible_to_others)
{
	struct kf_clone *a, *b;
	char *out;

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &a));
	ASSERT_EQ(0, kf_spawn(self->tmpl, &b));
	free(run_out(a, "poke 200000 deadbeef"));
	out = run_out(a, "peek 200000");
	ASSERT_NE(NULL, out);
	EXPECT_STREQ("efbeadde\n", out);	/* little-endian bytes */
	free(out);
	out = run_out(b, "peek 200000");
	ASSERT_NE(NULL, out);
	EXPECT_STREQ("00000000\n", out);
	free(out);
	kf_destroy(a);
	kf_destroy(b);
}

/* CRC of the template's guest memory as every new clone sees it before running. */
static uint32_t template_crc(struct kf_template *tmpl)
{
	uint64_t size = kf_template_mem_size(tmpl);
	struct kf_clone *clone;
	uint32_t crc = 0;
	static char buf[65536];

	if (kf_spawn(tmpl, &clone))
		return 0;
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		if (kf_clone_read_mem(clone, off, buf, sizeof(buf)))
			return 0;
		crc = crc32(crc, (const void *)buf, sizeof(buf));
	}
	kf_destroy(clone);
	return crc;
}

TEST_F(tmpl, template_unchanged_after_100_clones)
{
	uint32_t before, after;

	NEED_KVM();
	before = template_crc(self->tmpl);
	ASSERT_NE(0, before);
	for (int i = 0; i < 100; i++) {
		struct kf_clone *clone;
		char code[64];

		ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
		snprintf(code, sizeof(code), "poke %x %x", PROBE_ADDR + 4 * i, 0x1000 + i);
		free(run_out(clone, code));
		free(run_out(clone, "dirty 8"));
		kf_destroy(clone);
	}
	after = template_crc(self->tmpl);
	EXPECT_EQ(before, after);
}

TEST_F(tmpl, seeds_differ_between_clones)
{
	struct kf_clone *a, *b;
	char *sa, *sb;

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &a));
	ASSERT_EQ(0, kf_spawn(self->tmpl, &b));
	sa = run_out(a, "seed");
	sb = run_out(b, "seed");
	ASSERT_NE(NULL, sa);
	ASSERT_NE(NULL, sb);
	EXPECT_EQ(65, strlen(sa));
	EXPECT_STRNE(sa, sb);
	EXPECT_NE(kf_clone_id(a), kf_clone_id(b));
	free(sa);
	free(sb);
	kf_destroy(a);
	kf_destroy(b);
}

TEST_F(tmpl, wall_clock_is_hosts)
{
	struct kf_clone *clone;
	char *out;
	long guest;

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
	out = run_out(clone, "clock");
	ASSERT_NE(NULL, out);
	guest = atol(out);
	EXPECT_LE(labs(guest - (long)time(NULL)), 1);
	free(out);
	kf_destroy(clone);
}

TEST_F(tmpl, reset_restores_dirtied_memory)
{
	struct kf_clone *clone;
	char *out, *seed1, *seed2;

	NEED_KVM();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &clone));
	seed1 = run_out(clone, "seed");
	free(run_out(clone, "poke 200000 12345678"));
	free(run_out(clone, "dirty 256"));
	ASSERT_EQ(0, kf_reset(clone));
	out = run_out(clone, "peek 200000");
	ASSERT_NE(NULL, out);
	EXPECT_STREQ("00000000\n", out);
	free(out);
	out = run_out(clone, "peek 100000");	/* first page "dirty" wrote */
	ASSERT_NE(NULL, out);
	EXPECT_STREQ("00000000\n", out);
	free(out);
	/* A reset clone is a new sandbox: fresh seed. */
	seed2 = run_out(clone, "seed");
	ASSERT_NE(NULL, seed1);
	ASSERT_NE(NULL, seed2);
	EXPECT_STRNE(seed1, seed2);
	free(seed1);
	free(seed2);
	kf_destroy(clone);
}

TEST_F(tmpl, many_clones_alive_at_once)
{
	struct kf_clone *clones[32];
	char want[32], *out;

	NEED_KVM();
	for (int i = 0; i < 32; i++)
		ASSERT_EQ(0, kf_spawn(self->tmpl, &clones[i])) TH_LOG("%s", kf_last_error());
	for (int i = 0; i < 32; i++) {
		out = run_out(clones[i], "id");
		ASSERT_NE(NULL, out);
		snprintf(want, sizeof(want), "%llu\n", (unsigned long long)kf_clone_id(clones[i]));
		EXPECT_STREQ(want, out);
		free(out);
	}
	for (int i = 0; i < 32; i++)
		kf_destroy(clones[i]);
}

TEST_HARNESS_MAIN
