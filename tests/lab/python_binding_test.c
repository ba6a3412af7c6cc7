// SPDX-License-Identifier: GPL-2.0-only
/* python_binding_test.c - `import kfork` in the lab: a python template on both backends, persist + attach. */
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

/* Runs one case of tests/python/lab_kfork.py; its output goes to the log. Exit status or -1. */
static int py_case(const char *name, const char *tmpl)
{
	char cmd[512];
	int st;

	/* pipefail: the status is python's, not sed's; sed keeps its output TAP comments. */
	snprintf(cmd, sizeof(cmd),
		 "bash -c 'set -o pipefail; python3 -B tests/python/lab_kfork.py %s %s 2>&1 | sed \"s/^/# /\"'",
		 name, tmpl);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

FIXTURE(py) {
	const char *tmpl;
	const char *skip;
};

FIXTURE_SETUP(py)
{
	self->tmpl = python_template(&self->skip);
	if (!self->tmpl && !self->skip)
		ASSERT_NE(NULL, self->tmpl) TH_LOG("python template build failed");
}

FIXTURE_TEARDOWN(py)
{
}

TEST_F_TIMEOUT(py, print_on_user_backend, 600)
{
	if (self->skip)
		SKIP(return, "%s", self->skip);
	EXPECT_EQ(0, py_case("run-user", self->tmpl));
}

TEST_F_TIMEOUT(py, print_on_kmod_backend, 600)
{
	if (self->skip)
		SKIP(return, "%s", self->skip);
	if (access("/dev/kfork", R_OK | W_OK))
		SKIP(return, "/dev/kfork not available (kfork.ko not loaded)");
	EXPECT_EQ(0, py_case("run-kmod", self->tmpl));
}

TEST_F_TIMEOUT(py, session_keeps_state_until_reset, 600)
{
	if (self->skip)
		SKIP(return, "%s", self->skip);
	EXPECT_EQ(0, py_case("session", self->tmpl));
}

TEST_F_TIMEOUT(py, persist_then_attach, 600)
{
	if (self->skip)
		SKIP(return, "%s", self->skip);
	if (access("/dev/kfork", R_OK | W_OK))
		SKIP(return, "/dev/kfork not available (kfork.ko not loaded)");
	EXPECT_EQ(0, py_case("persist-attach", self->tmpl));
}

TEST_HARNESS_MAIN
