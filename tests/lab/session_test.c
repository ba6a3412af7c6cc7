// SPDX-License-Identifier: GPL-2.0-only
/* session_test.c - Python sessions in the lab: state kept across execs, lost and reset, both backends. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfork.h"
#include "kselftest_harness.h"
#include "lab_template.h"

/*
 * The same template file, lock and build as e2e_test.c: built once per lab boot
 * into /tmp by whichever test needs it first.
 */
static const char *python_template(const char **skip)
{
	static const char path[] = "/tmp/kfork-e2e-python.tmpl";
	struct kf_build_opts opts = { .kind = KF_KIND_PYTHON, .kernel = "build/guest/vmlinux",
				      .initrd = "build/guest/python.cpio.gz" };
	*skip = NULL;
	if (access("/dev/kvm", R_OK | W_OK)) {
		*skip = "/dev/kvm not available (run under `make lab` or on a host with KVM)";
		return NULL;
	}
	if (access(opts.kernel, R_OK) || access(opts.initrd, R_OK)) {
		*skip = "guest kernel or initramfs not built (run make)";
		return NULL;
	}
	if (lab_template_build_once(&opts, path))
		return NULL;
	return path;
}

/* The first test of a boot may build the template: each allows for that on a loaded lab. */
FIXTURE(sess) {
	struct kf_template *tmpl;
	struct kf_clone *clone;
	const char *skip;
};

FIXTURE_VARIANT(sess) {
	enum kf_backend backend;
};

FIXTURE_VARIANT_ADD(sess, user) { .backend = KF_BACKEND_USER };
FIXTURE_VARIANT_ADD(sess, kmod) { .backend = KF_BACKEND_KMOD };

FIXTURE_SETUP(sess)
{
	const char *path = python_template(&self->skip);

	self->tmpl = NULL;
	self->clone = NULL;
	if (!self->skip && variant->backend == KF_BACKEND_KMOD && access("/dev/kfork", R_OK | W_OK))
		self->skip = "/dev/kfork not available (kfork.ko not loaded)";
	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_NE(NULL, path) TH_LOG("python template build failed");
	ASSERT_EQ(0, kf_template_open(path, variant->backend, &self->tmpl)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_spawn(self->tmpl, &self->clone)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_session_begin(self->clone)) TH_LOG("%s", kf_last_error());
}

FIXTURE_TEARDOWN(sess)
{
	if (self->clone)
		kf_destroy(self->clone);
	if (self->tmpl)
		kf_template_close(self->tmpl);
}

/* 6.1's harness runs the body after SKIP() in setup. */
#define NEED_LAB() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

struct py_opts {
	const char *in;
	unsigned int timeout_ms;
	size_t max_output;
};

static int py_lang(struct kf_clone *clone, enum kf_exec_lang lang, const char *code,
		   const struct py_opts *o, struct kf_exec_result *res)
{
	struct kf_exec_req req = { .lang = lang, .code = code, .code_len = strlen(code),
				   .timeout_ms = 60000 };

	if (o) {
		req.stdin_data = o->in;
		req.stdin_len = o->in ? strlen(o->in) : 0;
		if (o->timeout_ms)
			req.timeout_ms = o->timeout_ms;
		req.max_output = o->max_output;
	}
	return kf_exec(clone, &req, res);
}

static int py(struct kf_clone *clone, const char *code, struct kf_exec_result *res)
{
	return py_lang(clone, KF_EXEC_PYTHON, code, NULL, res);
}

/* Run code that must succeed; its stdout, to compare. */
#define PY_OUT(clone, code, want) do {						\
	struct kf_exec_result r_;						\
	ASSERT_EQ(0, py((clone), (code), &r_)) TH_LOG("%s", kf_last_error());	\
	EXPECT_EQ(0, r_.exit_code) TH_LOG("stderr: %s", r_.err);		\
	EXPECT_STREQ((want), r_.out ? r_.out : "");				\
	kf_exec_result_free(&r_);						\
} while (0)

TEST_F_TIMEOUT(sess, state_kept_across_three_execs, 300)
{
	NEED_LAB();
	EXPECT_EQ(KF_SESSION_ACTIVE, kf_session_state(self->clone));
	PY_OUT(self->clone, "x = 41", "");
	PY_OUT(self->clone, "print(x + 1)", "42\n");
	PY_OUT(self->clone, "import json\ndef f(v):\n    return json.dumps([v, x])\nx += 1",
	       "");
	PY_OUT(self->clone, "print(f(1), __name__)", "[1, 42] __main__\n");
}

TEST_F_TIMEOUT(sess, reset_gives_a_fresh_interpreter, 300)
{
	struct kf_exec_result res;

	NEED_LAB();
	PY_OUT(self->clone, "x = 41", "");
	ASSERT_EQ(0, kf_reset(self->clone));
	EXPECT_EQ(KF_SESSION_NONE, kf_session_state(self->clone));
	ASSERT_EQ(0, kf_session_begin(self->clone));
	ASSERT_EQ(0, py(self->clone, "print(x)", &res));
	EXPECT_EQ(1, res.exit_code);
	EXPECT_NE(NULL, strstr(res.err, "NameError: name 'x' is not defined")) TH_LOG("%s", res.err);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(sess, sibling_clone_does_not_see_it, 300)
{
	struct kf_clone *other;

	NEED_LAB();
	PY_OUT(self->clone, "x = 41\nimport sys\nsys.kept = 1", "");
	ASSERT_EQ(0, kf_spawn(self->tmpl, &other)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_session_begin(other));
	PY_OUT(other, "import sys\nprint('x' in globals(), hasattr(sys, 'kept'))", "False False\n");
	/* while the first clone keeps its own */
	kf_destroy(other);
	PY_OUT(self->clone, "print(x)", "41\n");
}

TEST_F_TIMEOUT(sess, sys_exit_ends_only_the_exec, 300)
{
	struct kf_exec_result res;

	NEED_LAB();
	ASSERT_EQ(0, py(self->clone, "import sys\nx = 1\nsys.exit(3)", &res));
	EXPECT_EQ(3, res.exit_code);
	kf_exec_result_free(&res);
	ASSERT_EQ(0, py(self->clone, "raise ValueError('boom')", &res));
	EXPECT_EQ(1, res.exit_code);
	EXPECT_NE(NULL, strstr(res.err, "ValueError: boom")) TH_LOG("%s", res.err);
	kf_exec_result_free(&res);
	EXPECT_EQ(KF_SESSION_ACTIVE, kf_session_state(self->clone));
	PY_OUT(self->clone, "print(x)", "1\n");
}

TEST_F_TIMEOUT(sess, os_exit_loses_the_session_until_reset, 300)
{
	struct kf_exec_result res;

	NEED_LAB();
	ASSERT_EQ(0, py(self->clone, "import os\nprint('bye', flush=True)\nos._exit(5)", &res))
		TH_LOG("%s", kf_last_error());
	EXPECT_EQ(5, res.exit_code);
	EXPECT_STREQ("bye\n", res.out);
	kf_exec_result_free(&res);
	EXPECT_EQ(KF_SESSION_LOST, kf_session_state(self->clone));
	EXPECT_EQ(-ESRCH, py(self->clone, "print(1)", &res));
	EXPECT_NE(NULL, strstr(kf_last_error(), "kf_reset() it for a fresh one")) TH_LOG("%s", kf_last_error());
	kf_exec_result_free(&res);
	ASSERT_EQ(0, kf_reset(self->clone));
	ASSERT_EQ(0, kf_session_begin(self->clone));
	PY_OUT(self->clone, "print('x' in globals())", "False\n");
}

TEST_F_TIMEOUT(sess, signal_loses_the_session, 300)
{
	struct kf_exec_result res;

	NEED_LAB();
	ASSERT_EQ(0, py(self->clone, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", &res));
	EXPECT_EQ(SIGKILL, res.signal);
	EXPECT_EQ(128 + SIGKILL, res.exit_code);
	kf_exec_result_free(&res);
	EXPECT_EQ(KF_SESSION_LOST, kf_session_state(self->clone));
}

TEST_F_TIMEOUT(sess, timeout_takes_the_session, 300)
{
	struct py_opts o = { .timeout_ms = 1000 };
	struct kf_exec_result res;

	NEED_LAB();
	PY_OUT(self->clone, "x = 1", "");
	EXPECT_EQ(-ETIMEDOUT, py_lang(self->clone, KF_EXEC_PYTHON, "while True: pass", &o, &res));
	EXPECT_EQ(1, res.timed_out);
	kf_exec_result_free(&res);
	EXPECT_EQ(-EBUSY, py(self->clone, "print(x)", &res));
	kf_exec_result_free(&res);
	EXPECT_EQ(-EBUSY, kf_session_begin(self->clone));
	ASSERT_EQ(0, kf_reset(self->clone));
	ASSERT_EQ(0, kf_session_begin(self->clone));
	PY_OUT(self->clone, "print('x' in globals())", "False\n");
}

TEST_F_TIMEOUT(sess, stdin_and_streams_per_exec, 300)
{
	struct py_opts o = { .in = "hello\n" };
	struct kf_exec_result res;

	NEED_LAB();
	ASSERT_EQ(0, py_lang(self->clone, KF_EXEC_PYTHON,
			     "import sys\ndata = sys.stdin.read()\nprint('to-err', file=sys.stderr)",
			     &o, &res));
	EXPECT_EQ(0, res.exit_code) TH_LOG("%s", res.err);
	EXPECT_EQ(0, res.out_len);
	EXPECT_STREQ("to-err\n", res.err);
	kf_exec_result_free(&res);
	o.in = "world\n";
	ASSERT_EQ(0, py_lang(self->clone, KF_EXEC_PYTHON,
			     "print((data + sys.stdin.read()).upper(), end='')", &o, &res));
	EXPECT_STREQ("HELLO\nWORLD\n", res.out);
	EXPECT_EQ(0, res.err_len);
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(sess, max_output_stops_it, 300)
{
	struct py_opts o = { .max_output = 1000 };
	struct kf_exec_result res;

	NEED_LAB();
	EXPECT_EQ(-EMSGSIZE, py_lang(self->clone, KF_EXEC_PYTHON, "print('a' * 100000)", &o, &res));
	EXPECT_EQ(1000, res.out_len);
	kf_exec_result_free(&res);
	EXPECT_EQ(-EBUSY, py(self->clone, "print(1)", &res));
	kf_exec_result_free(&res);
}

TEST_F_TIMEOUT(sess, sh_is_refused_in_a_session, 300)
{
	struct kf_exec_result res;

	NEED_LAB();
	EXPECT_EQ(-EOPNOTSUPP, py_lang(self->clone, KF_EXEC_SH, "echo hi", NULL, &res));
	kf_exec_result_free(&res);
	PY_OUT(self->clone, "print('still')", "still\n");
}

/* The CLI: each -c one exec in one clone; --session shares the interpreter. */
FIXTURE(cli) {
	int unused;
};

FIXTURE_SETUP(cli)
{
}

FIXTURE_TEARDOWN(cli)
{
}

TEST_F_TIMEOUT(cli, session_runs_codes_in_order, 300)
{
	const char *skip, *path = python_template(&skip);
	char cmd[512], out[256] = "";
	size_t n = 0;
	FILE *p;
	int st;

	if (skip)
		SKIP(return, "%s", skip);
	ASSERT_NE(NULL, path);
	snprintf(cmd, sizeof(cmd),
		 "build/kfork run -t %s --session -c 'x = 41' -c 'print(x + 1)' "
		 "-c 'import sys; print(x, file=sys.stderr); sys.exit(7)' 2>&1", path);
	p = popen(cmd, "r");
	ASSERT_NE(NULL, p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	st = pclose(p);
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(7, WEXITSTATUS(st)) TH_LOG("%s", out);
	EXPECT_STREQ("42\n41\n", out);
	/* without --session each exec starts fresh */
	snprintf(cmd, sizeof(cmd),
		 "build/kfork run -t %s -c 'x = 41' -c 'print(x + 1)' 2>&1", path);
	p = popen(cmd, "r");
	ASSERT_NE(NULL, p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	st = pclose(p);
	EXPECT_EQ(1, WEXITSTATUS(st)) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "NameError")) TH_LOG("%s", out);
	/* os._exit: the rest is not run, the status is that exec's */
	snprintf(cmd, sizeof(cmd),
		 "build/kfork run -t %s --json --session -c 'import os; os._exit(5)' -c 'print(1)' 2>&1",
		 path);
	p = popen(cmd, "r");
	ASSERT_NE(NULL, p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	st = pclose(p);
	EXPECT_EQ(5, WEXITSTATUS(st)) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"exit_code\":5,")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"index\":1,\"session\":true}")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "codes 2 to 2 not run")) TH_LOG("%s", out);
}

TEST_HARNESS_MAIN
