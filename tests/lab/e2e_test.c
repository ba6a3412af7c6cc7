// SPDX-License-Identifier: GPL-2.0-only
/* e2e_test.c - Linux guests end to end in the lab: build, freeze, clone, exec over the mailbox and serial. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../kmod/uapi/kfork.h"
#include "kfork.h"
#include "kselftest_harness.h"
#include "lab_template.h"
#include "lib/internal.h"

/* Fixture setup may build a template: every test allows for that on a loaded lab. */

/*
 * Templates are built once per lab boot into /tmp (a fresh tmpfs each boot),
 * under a lock, by whichever test needs them first.
 */
static const char *lab_template(enum kf_template_kind kind, const char **skip)
{
	static char path[64];
	char initrd[128];
	struct kf_build_opts opts = { .kind = kind, .kernel = "build/guest/vmlinux",
				      .initrd = initrd };

	*skip = NULL;
	if (access("/dev/kvm", R_OK | W_OK)) {
		*skip = "/dev/kvm not available (run under `make lab` or on a host with KVM)";
		return NULL;
	}
	snprintf(initrd, sizeof(initrd), "build/guest/%s.cpio.gz", kf_kind_name(kind));
	if (access(opts.kernel, R_OK) || access(initrd, R_OK)) {
		*skip = "guest kernel or initramfs not built (run make)";
		return NULL;
	}
	snprintf(path, sizeof(path), "/tmp/kfork-e2e-%s.tmpl", kf_kind_name(kind));
	if (lab_template_build_once(&opts, path))
		return NULL;
	return path;
}

/* A template and one clone of it: 0, 1 with *why for a SKIP, -1 with *why on failure. */
static int guest_open(enum kf_template_kind kind, struct kf_template **tmpl,
		      struct kf_clone **clone, const char **why)
{
	const char *path = lab_template(kind, why);

	*tmpl = NULL;
	*clone = NULL;
	if (*why)
		return 1;
	if (!path || kf_template_open(path, KF_BACKEND_USER, tmpl) || kf_spawn(*tmpl, clone)) {
		*why = path ? kf_last_error() : "template build failed";
		return -1;
	}
	return 0;
}

static void guest_close(struct kf_template *tmpl, struct kf_clone *clone)
{
	kf_destroy(clone);
	kf_template_close(tmpl);
}

FIXTURE(guest) {
	struct kf_template *tmpl;
	struct kf_clone *clone;
	const char *skip;
};

FIXTURE_VARIANT(guest) {
	enum kf_template_kind kind;
};

FIXTURE_VARIANT_ADD(guest, minimal) { .kind = KF_KIND_MINIMAL };
FIXTURE_VARIANT_ADD(guest, python) { .kind = KF_KIND_PYTHON };

FIXTURE_SETUP(guest)
{
	int ret = guest_open(variant->kind, &self->tmpl, &self->clone, &self->skip);

	if (ret > 0)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, ret) TH_LOG("%s", self->skip);
}

FIXTURE_TEARDOWN(guest)
{
	guest_close(self->tmpl, self->clone);
}

/* The Python-only behaviours, on the python template alone. */
FIXTURE(py) {
	struct kf_template *tmpl;
	struct kf_clone *clone;
	const char *skip;
};

FIXTURE_SETUP(py)
{
	int ret = guest_open(KF_KIND_PYTHON, &self->tmpl, &self->clone, &self->skip);

	if (ret > 0)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, ret) TH_LOG("%s", self->skip);
}

FIXTURE_TEARDOWN(py)
{
	guest_close(self->tmpl, self->clone);
}

#define NEED_GUEST_UNCONFINED() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

/*
 * Every test body runs confined as kfork run is (kf_sandbox_thread): what the
 * tests do after setup is what a sandboxed caller does. KFORK_SANDBOX=0 to debug.
 */
#define CONFINE() do {								\
	const char *env = getenv("KFORK_SANDBOX");				\
	if (!env || strcmp(env, "0"))						\
		ASSERT_EQ(0, kf_sandbox_thread(0)) TH_LOG("%s", kf_last_error());	\
} while (0)

#define NEED_GUEST() do { NEED_GUEST_UNCONFINED(); CONFINE(); } while (0)

static int exec_lang(struct kf_clone *clone, enum kf_exec_lang lang, const char *code,
		     const char *in, unsigned int timeout_ms, struct kf_exec_result *res)
{
	struct kf_exec_req req = {
		.lang = lang, .code = code, .code_len = strlen(code),
		.stdin_data = in, .stdin_len = in ? strlen(in) : 0,
		.timeout_ms = timeout_ms ? timeout_ms : 120000,
	};
	int err = kf_exec(clone, &req, res);

	if (err)
		fprintf(stderr, "# exec '%.60s': %s\n", code, kf_last_error());
	return err;
}

static int sh(struct kf_clone *clone, const char *code, struct kf_exec_result *res)
{
	return exec_lang(clone, KF_EXEC_SH, code, NULL, 0, res);
}

TEST_F_TIMEOUT(guest, echo_hi, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, sh(self->clone, "echo hi", &res));
	EXPECT_EQ(0, res.exit_code);
	EXPECT_STREQ("hi\n", res.out);
	EXPECT_EQ(0, res.err_len);
	kf_exec_result_free(&res);
}

/* No nested virtualisation for guests: a clone in its own L2 would survive a reset. */
TEST_F_TIMEOUT(guest, guest_sees_no_vmx_or_svm, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, sh(self->clone, "grep -c -w -E 'vmx|svm' /proc/cpuinfo", &res));
	EXPECT_STREQ("0\n", res.out);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(guest, exit_status, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, sh(self->clone, "exit 3", &res));
	EXPECT_EQ(3, res.exit_code);
	kf_exec_result_free(&res);
	ASSERT_EQ(0, sh(self->clone, "kill -9 $$", &res));
	EXPECT_EQ(9, res.signal);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(guest, stderr_apart, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, sh(self->clone, "echo to-out; echo to-err >&2; echo more-out", &res));
	EXPECT_STREQ("to-out\nmore-out\n", res.out);
	EXPECT_STREQ("to-err\n", res.err);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(guest, multi_line_and_stdin, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, exec_lang(self->clone, KF_EXEC_SH,
			       "n=0\nwhile read line; do\n  n=$((n+1))\ndone\necho \"lines=$n\"\n",
			       "a\nb\nc\n", 0, &res));
	EXPECT_STREQ("lines=3\n", res.out);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(guest, one_mib_output_intact, 1200)
{
	struct kf_exec_result res;
	size_t bad = 0;
	const size_t n = 1 << 20;

	NEED_GUEST();
	/* 1 MiB of "0123456789abcde\n" repeated; one serial exit per byte makes this slow. */
	ASSERT_EQ(0, exec_lang(self->clone, KF_EXEC_SH, "yes 0123456789abcde | head -c 1048576",
			       NULL, 1100000, &res));
	ASSERT_EQ(n, res.out_len);
	for (size_t i = 0; i < n; i++)
		bad += res.out[i] != "0123456789abcde\n"[i % 16];
	EXPECT_EQ(0, bad);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(guest, big_binary_stdin_round_trips, 600)
{
	/* Over the mailbox: more than h2g (64 KiB) in, more than g2h (128 KiB) out. */
	const size_t n = 300 << 10;
	struct kf_exec_result res;
	char *in = malloc(n);
	size_t bad = 0;

	NEED_GUEST();
	ASSERT_NE(NULL, in);
	for (size_t i = 0; i < n; i++)	/* every byte value, the doorbell 0xdb and "KF" included */
		in[i] = (char)(i * 31 + (i >> 10));
	{
		struct kf_exec_req req = {
			.lang = KF_EXEC_SH, .code = "cat", .code_len = 3,
			.stdin_data = in, .stdin_len = n, .timeout_ms = 300000,
		};

		ASSERT_EQ(0, kf_exec(self->clone, &req, &res)) TH_LOG("%s", kf_last_error());
	}
	ASSERT_EQ(n, res.out_len);
	for (size_t i = 0; i < n; i++)
		bad += res.out[i] != in[i];
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, res.exit_code);
	kf_exec_result_free(&res);
	free(in);
}

TEST_F_TIMEOUT(guest, timeout_reported, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	EXPECT_EQ(-ETIMEDOUT, exec_lang(self->clone, KF_EXEC_SH, "while :; do :; done", NULL,
					2000, &res));
	EXPECT_EQ(1, res.timed_out);
	kf_exec_result_free(&res);
	ASSERT_EQ(0, kf_reset(self->clone)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, sh(self->clone, "echo alive", &res));
	EXPECT_STREQ("alive\n", res.out);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(guest, timers_run_after_restore, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, sh(self->clone, "sleep 0.3; echo slept", &res));
	EXPECT_STREQ("slept\n", res.out);
	EXPECT_GE(res.exec_ns, 300000000ull);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(guest, urandom_differs_between_clones, 600)
{
	struct kf_exec_result a, b;
	struct kf_clone *other;

	NEED_GUEST();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &other));
	ASSERT_EQ(0, sh(self->clone, "head -c 16 /dev/urandom | od -An -tx1", &a));
	ASSERT_EQ(0, sh(other, "head -c 16 /dev/urandom | od -An -tx1", &b));
	ASSERT_GT(a.out_len, 32);
	EXPECT_STRNE(a.out, b.out);
	kf_exec_result_free(&a);
	kf_exec_result_free(&b);
	kf_destroy(other);
}

TEST_F_TIMEOUT(guest, wall_clock_is_hosts, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, sh(self->clone, "date +%s", &res));
	EXPECT_LE(labs(atol(res.out) - (long)time(NULL)), 1);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(guest, clones_isolated, 600)
{
	struct kf_exec_result res;
	struct kf_clone *other;

	NEED_GUEST();
	ASSERT_EQ(0, kf_spawn(self->tmpl, &other));
	ASSERT_EQ(0, sh(self->clone, "echo secret > /tmp/f; cat /tmp/f", &res));
	EXPECT_STREQ("secret\n", res.out);
	kf_exec_result_free(&res);
	ASSERT_EQ(0, sh(other, "cat /tmp/f", &res));
	EXPECT_NE(0, res.exit_code);
	EXPECT_EQ(0, res.out_len);
	kf_exec_result_free(&res);
	kf_destroy(other);
	/* and reset forgets it */
	ASSERT_EQ(0, kf_reset(self->clone));
	ASSERT_EQ(0, sh(self->clone, "cat /tmp/f", &res));
	EXPECT_NE(0, res.exit_code);
	kf_exec_result_free(&res);
}

/*
 * The build records the pages a first exec touches in the file; kfork.ko
 * has them as its working set from registration on, before any clone ran.
 */
TEST_F_TIMEOUT(guest, build_records_the_working_set_the_module_gets, 600)
{
	struct kfork_template_info info = { .size = sizeof(info) };
	struct kf_template *kt = NULL;
	struct kf_exec_result res;
	struct kf_clone *clone;
	char path[64];

	NEED_GUEST_UNCONFINED();	/* opens a template: confined after that */
	EXPECT_LT(100, self->tmpl->wset_len) TH_LOG("%llu entries", (unsigned long long)self->tmpl->wset_len);
	if (access("/dev/kfork", R_OK | W_OK))
		SKIP(return, "no /dev/kfork: kfork.ko not loaded");
	snprintf(path, sizeof(path), "/tmp/kfork-e2e-%s.tmpl", kf_kind_name(variant->kind));
	setenv("KFORK_ATTACH", "0", 1);
	ASSERT_EQ(0, kf_template_open(path, KF_BACKEND_KMOD, &kt)) TH_LOG("%s", kf_last_error());
	unsetenv("KFORK_ATTACH");
	ASSERT_EQ(0, ioctl(kt->kmod_fd, KFORK_TEMPLATE_INFO, &info));
	EXPECT_EQ(self->tmpl->wset_len, info.wset_pages);
	CONFINE();
	ASSERT_EQ(0, kf_spawn(kt, &clone)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, sh(clone, "echo hi", &res));
	EXPECT_STREQ("hi\n", res.out);
	kf_exec_result_free(&res);
	kf_destroy(clone);
	kf_template_close(kt);
}

/* Exits of one 'echo hi' in a fresh clone of tmpl, or -1. */
static long echo_exits(struct kf_template *tmpl, char *out, size_t out_len)
{
	struct kf_exec_result res;
	struct kf_clone *clone;
	long exits = -1;

	if (kf_spawn(tmpl, &clone))
		return -1;
	if (!sh(clone, "echo hi", &res)) {
		exits = res.exits;
		snprintf(out, out_len, "%s", res.out ? res.out : "");
		kf_exec_result_free(&res);
	}
	kf_destroy(clone);
	return exits;
}

/*
 * A host that does not use the mailbox (KFORK_MAILBOX=0, or an older kfork)
 * still talks to a mailbox-capable template over serial; the mailbox is what
 * makes an exec cheap.
 */
TEST_F_TIMEOUT(guest, mailbox_cuts_exits_and_serial_still_works, 600)
{
	struct kf_template *serial_tmpl = NULL;
	char path[64], out_mbox[16] = "", out_serial[16] = "";
	long mbox, serial;

	NEED_GUEST_UNCONFINED();
	snprintf(path, sizeof(path), "/tmp/kfork-e2e-%s.tmpl", kf_kind_name(variant->kind));
	setenv("KFORK_MAILBOX", "0", 1);
	ASSERT_EQ(0, kf_template_open(path, KF_BACKEND_USER, &serial_tmpl)) TH_LOG("%s", kf_last_error());
	unsetenv("KFORK_MAILBOX");
	CONFINE();
	serial = echo_exits(serial_tmpl, out_serial, sizeof(out_serial));
	kf_template_close(serial_tmpl);
	mbox = echo_exits(self->tmpl, out_mbox, sizeof(out_mbox));
	EXPECT_STREQ("hi\n", out_serial);
	EXPECT_STREQ("hi\n", out_mbox);
	ASSERT_LT(0, mbox);
	ASSERT_LT(0, serial);
	TH_LOG("exits for 'echo hi': %ld over the mailbox, %ld over serial", mbox, serial);
	EXPECT_LT(mbox * 2, serial);
}

/*
 * Guest code (root in the guest) scribbles the mailbox through /dev/mem: a
 * g2h index claiming more than the ring holds, then a doorbell. That exec
 * fails with a protocol error naming the ring; the clone wants a reset and
 * then works again.
 */
TEST_F_TIMEOUT(guest, hostile_mailbox_index_fails_that_clone_until_reset, 600)
{
	static const char code[] =
		"m=$(sed -n 's/.*kfork.mbox=\\(0x[0-9a-f]*\\).*/\\1/p' /proc/cmdline)\n"
		"devmem $((m + 192)) 32 0x7fffffff\n"	/* g2h_prod, struct kf_mbox_hdr */
		"devmem 0xd0000000 32 1\n"		/* KF_MBOX_DOORBELL_GPA */
		"echo unreachable\n";
	struct kf_exec_result res;

	NEED_GUEST();
	EXPECT_EQ(-EPROTO, sh(self->clone, code, &res));
	EXPECT_NE(NULL, strstr(kf_last_error(), "g2h")) TH_LOG("%s", kf_last_error());
	kf_exec_result_free(&res);
	EXPECT_EQ(-EBUSY, sh(self->clone, "echo hi", &res));
	kf_exec_result_free(&res);
	ASSERT_EQ(0, kf_reset(self->clone)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, sh(self->clone, "echo alive", &res));
	EXPECT_STREQ("alive\n", res.out);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(py, python_print, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, exec_lang(self->clone, KF_EXEC_PYTHON, "print(1+1)", NULL, 0, &res));
	EXPECT_EQ(0, res.exit_code);
	EXPECT_STREQ("2\n", res.out);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(py, python_exit_and_traceback, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, exec_lang(self->clone, KF_EXEC_PYTHON, "import sys; sys.exit(3)", NULL, 0,
			       &res));
	EXPECT_EQ(3, res.exit_code);
	kf_exec_result_free(&res);
	ASSERT_EQ(0, exec_lang(self->clone, KF_EXEC_PYTHON,
			       "def f(x):\n    return 1 / x\n\nprint('before')\nf(0)\n", NULL, 0,
			       &res));
	EXPECT_EQ(1, res.exit_code);
	EXPECT_STREQ("before\n", res.out);
	EXPECT_NE(NULL, strstr(res.err ? res.err : "", "ZeroDivisionError"));
	EXPECT_NE(NULL, strstr(res.err ? res.err : "", "Traceback"));
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(py, python_stdin_and_multiline, 600)
{
	struct kf_exec_result res;

	NEED_GUEST();
	ASSERT_EQ(0, exec_lang(self->clone, KF_EXEC_PYTHON,
			       "import sys\ntotal = 0\nfor line in sys.stdin:\n    total += int(line)\nprint(total)\n",
			       "1\n2\n39\n", 0, &res));
	EXPECT_STREQ("42\n", res.out);
	kf_exec_result_free(&res);
}

/* The CLI as the README shows it: output on stdout, the code's exit status as ours. */
static int cli_run(const char *code, char *out, size_t out_size)
{
	char cmd[512];
	FILE *p;
	size_t n;
	int status;

	snprintf(cmd, sizeof(cmd), "build/kfork run -t /tmp/kfork-e2e-python.tmpl -- '%s' 2>&1", code);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, out_size - 1, p);
	out[n] = 0;
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F_TIMEOUT(py, cli_exit_status_and_output, 600)
{
	char out[4096];

	NEED_GUEST_UNCONFINED();	/* popen; kfork run confines itself */
	EXPECT_EQ(0, cli_run("print(1+1)", out, sizeof(out)));
	EXPECT_STREQ("2\n", out);
	EXPECT_EQ(3, cli_run("import sys; sys.exit(3)", out, sizeof(out)));
	EXPECT_EQ(1, cli_run("raise ValueError(7)", out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "ValueError: 7"));
}

/* The kmod backend under the same sandbox: spawn, exec, deadline, reset, destroy. */
FIXTURE(kmod) {
	int unused;
};

FIXTURE_SETUP(kmod)
{
}

FIXTURE_TEARDOWN(kmod)
{
}

TEST_F_TIMEOUT(kmod, backend_confined, 600)
{
	struct kf_exec_result res;
	struct kf_template *tmpl;
	struct kf_clone *clone;
	const char *skip, *path = lab_template(KF_KIND_MINIMAL, &skip);

	if (!skip && access("/dev/kfork", R_OK | W_OK))
		skip = "/dev/kfork missing: kfork.ko not loaded";
	if (skip)
		SKIP(return, "%s", skip);
	ASSERT_NE(NULL, path);
	ASSERT_EQ(0, kf_template_open(path, KF_BACKEND_KMOD, &tmpl)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_sandbox_thread(0)) TH_LOG("%s", kf_last_error());
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, kf_spawn(tmpl, &clone)) TH_LOG("%s", kf_last_error());
		ASSERT_EQ(0, sh(clone, "echo confined", &res));
		EXPECT_STREQ("confined\n", res.out);
		kf_exec_result_free(&res);
		EXPECT_EQ(-ETIMEDOUT, exec_lang(clone, KF_EXEC_SH, "sleep 5", NULL, 300, &res));
		kf_exec_result_free(&res);
		ASSERT_EQ(0, kf_reset(clone)) TH_LOG("%s", kf_last_error());
		ASSERT_EQ(0, sh(clone, "echo reset", &res));
		EXPECT_STREQ("reset\n", res.out);
		kf_exec_result_free(&res);
		kf_destroy(clone);
	}
	kf_template_close(tmpl);
}

TEST_HARNESS_MAIN
