// SPDX-License-Identifier: GPL-2.0-only
/* json_utf8_test.c - `kfork run --json` on a Python guest: UTF-8 comes out as written, invalid bytes as U+FFFD. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfork.h"
#include "kselftest_harness.h"
#include "lab_template.h"

/* The same file and lock as e2e_test's, so one lab boot builds the template once. */
#define TMPL	"/tmp/kfork-e2e-python.tmpl"

static const char *python_template(void)
{
	struct kf_build_opts opts = { .kind = KF_KIND_PYTHON, .kernel = "build/guest/vmlinux",
				      .initrd = "build/guest/python.cpio.gz" };
	if (access("/dev/kvm", R_OK | W_OK))
		return "/dev/kvm not available (run under `make lab` or on a host with KVM)";
	if (access(opts.kernel, R_OK) || access(opts.initrd, R_OK))
		return "guest kernel or initramfs not built (run make)";
	return lab_template_build_once(&opts, TMPL) ? "template build failed (see above)" : NULL;
}

/* build/kfork run --json -- CODE: its stdout into out, the exit status returned. */
static int run_json(const char *code, char *out, size_t len)
{
	char cmd[512];
	size_t n;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "build/kfork run -t " TMPL " --json -- '%s'", code);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

FIXTURE(py) {
	const char *why;
	char out[4096];
};

FIXTURE_SETUP(py)
{
	self->why = python_template();
}

FIXTURE_TEARDOWN(py)
{
}

#define NEED_GUEST() do { if (self->why) SKIP(return, "%s", self->why); } while (0)

TEST_F_TIMEOUT(py, utf8_output_comes_out_as_written, 600)
{
	static const char want[] = "{\"stdout\":\"h\xc3\xa9llo \xe2\x9c\x93\\n\",\"stderr\":\"\",";

	NEED_GUEST();
	ASSERT_EQ(0, run_json("print(\"h\xc3\xa9llo \xe2\x9c\x93\")", self->out, sizeof(self->out)));
	EXPECT_EQ(0, strncmp(self->out, want, strlen(want))) TH_LOG("%s", self->out);
	EXPECT_EQ(NULL, strstr(self->out, "\\u00c3")) TH_LOG("bytes escaped one by one: %s", self->out);
}

TEST_F_TIMEOUT(py, invalid_utf8_becomes_replacement_characters, 600)
{
	static const char want[] = "{\"stdout\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd\\n\",\"stderr\":\"\\u0001\",";

	NEED_GUEST();
	ASSERT_EQ(0, run_json("import sys; sys.stdout.buffer.write(b\"a\\xffb\\xc3\\n\"); "
			      "sys.stderr.write(chr(1))", self->out, sizeof(self->out)));
	EXPECT_EQ(0, strncmp(self->out, want, strlen(want))) TH_LOG("%s", self->out);
}

TEST_HARNESS_MAIN
