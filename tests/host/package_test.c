// SPDX-License-Identifier: GPL-2.0-only
/* package_test.c - libkfork as installed: exported symbols, soname, version, make install + pkg-config + a clone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfork.h"
#include "kselftest_harness.h"

#define SO		"build/lib/libkfork.so.1"
#define PUBLIC_AR	"build/lib/libkfork.a"
#define MAX_NAMES	256

/* Runs cmd with sh -c; its stdout (at most len - 1 bytes) into out; returns the exit status or -1. */
static int sh(const char *cmd, char *out, size_t len)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0, got;
	int st;

	if (!p)
		return -1;
	while (n + 1 < len && (got = fread(out + n, 1, len - 1 - n, p)) > 0)
		n += got;
	out[n] = 0;
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Splits text into lines, in place; returns how many. */
static int lines(char *text, char **v, int max)
{
	int n = 0;

	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < max;
	     l = strtok_r(NULL, "\n", &save))
		v[n++] = l;
	return n;
}

static int has(char **v, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

/* The API: every function kfork.h marks KF_API. */
static int api_names(char *buf, size_t len, char **v)
{
	if (sh("sed -n 's/^KF_API .*\\<\\(kf_[a-z0-9_]*\\)(.*/\\1/p' userspace/include/kfork.h",
	       buf, len))
		return -1;
	return lines(buf, v, MAX_NAMES);
}

/* Exported names in `what` (from cmd) are all in the API, and the API is all exported. */
static void check_exports(struct __test_metadata *_metadata, const char *cmd, const char *what)
{
	static char api_buf[8192], exp_buf[65536];
	char *api[MAX_NAMES], *exp[MAX_NAMES];
	int na = api_names(api_buf, sizeof(api_buf), api), ne;

	ASSERT_LT(10, na);
	ASSERT_EQ(0, sh(cmd, exp_buf, sizeof(exp_buf))) TH_LOG("%s failed (run make)", cmd);
	ne = lines(exp_buf, exp, MAX_NAMES);
	ASSERT_LT(0, ne);
	/* EXPECT_* are more than one statement: braces. */
	for (int i = 0; i < ne; i++) {
		EXPECT_TRUE(has(api, na, exp[i]))
			TH_LOG("%s exports %s, which is not a KF_API function of kfork.h", what, exp[i]);
	}
	for (int i = 0; i < na; i++) {
		EXPECT_TRUE(has(exp, ne, api[i])) TH_LOG("%s does not export %s", what, api[i]);
	}
}

TEST(shared_library_exports_only_the_api)
{
	check_exports(_metadata, "nm -D --defined-only " SO " | awk '$2 != \"A\" { sub(/@.*/, \"\", $3); print $3 }'",
		      SO);
}

TEST(static_library_exports_only_the_api)
{
	check_exports(_metadata, "nm -g --defined-only " PUBLIC_AR " | awk 'NF == 3 { print $3 }'",
		      PUBLIC_AR);
}

TEST(shared_library_soname_and_version_node)
{
	char out[4096];

	ASSERT_EQ(0, sh("objdump -p " SO " | awk '$1 == \"SONAME\" { print $2 }'", out, sizeof(out)));
	EXPECT_STREQ("libkfork.so.1\n", out);
	ASSERT_EQ(0, sh("objdump -T " SO " | grep -c 'LIBKFORK_0.1 *kf_spawn$'", out, sizeof(out)));
	EXPECT_STREQ("1\n", out);
	/* Added after 0.1: its own node, so 0.1's set never changes. */
	ASSERT_EQ(0, sh("objdump -T " SO " | grep -c 'LIBKFORK_0.2 *kf_sandbox_thread$'", out, sizeof(out)));
	EXPECT_STREQ("1\n", out);
	ASSERT_EQ(0, sh("objdump -T " SO " | grep -c 'LIBKFORK_0.3 *kf_session_begin$'", out, sizeof(out)));
	EXPECT_STREQ("1\n", out);
}

TEST(version_macros_and_function_agree)
{
	const char *s = NULL;
	char want[32];

	EXPECT_EQ(KF_VERSION, kf_version(&s));
	EXPECT_EQ(KF_VERSION, kf_version(NULL));
	snprintf(want, sizeof(want), "%d.%d.%d", KF_VERSION_MAJOR, KF_VERSION_MINOR, KF_VERSION_PATCH);
	ASSERT_NE(NULL, s);
	EXPECT_STREQ(want, s);
	EXPECT_STREQ(KF_VERSION_STRING, s);
	EXPECT_LT(KF_VERSION_CODE(0, 0, 99), KF_VERSION_CODE(0, 1, 0));
}

FIXTURE(staged) {
	char dir[64];
	char cmd[2048];
	char out[8192];
};

FIXTURE_SETUP(staged)
{
	snprintf(self->dir, sizeof(self->dir), "/tmp/kfork-install-test-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	/* A make run from make check must not join its parent's jobserver. */
	snprintf(self->cmd, sizeof(self->cmd),
		 "env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s install DESTDIR=%s >/dev/null 2>&1",
		 self->dir);
	ASSERT_EQ(0, sh(self->cmd, self->out, sizeof(self->out))) TH_LOG("%s failed", self->cmd);
}

FIXTURE_TEARDOWN(staged)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("%s failed", cmd);
}

static const char *const installed[] = {
	"bin/kfork", "lib/libkfork.so", "lib/libkfork.so.1", "lib/libkfork.a",
	"lib/pkgconfig/kfork.pc", "include/kfork.h", "include/linux/kfork.h",
	"lib/kfork/vmlinux", "lib/kfork/minimal.cpio.gz", "lib/kfork/python.cpio.gz",
	"lib/kfork/tiny.bin", "share/man/man1/kfork.1", "share/man/man3/libkfork.3",
	"share/man/man4/kfork.4", "bin/kforkd", "share/man/man8/kforkd.8",
	"lib/systemd/system/kforkd.service",
};

TEST_F(staged, install_lays_out_prefix)
{
	char path[256];

	for (size_t i = 0; i < sizeof(installed) / sizeof(installed[0]); i++) {
		snprintf(path, sizeof(path), "%s/usr/local/%s", self->dir, installed[i]);
		EXPECT_EQ(0, access(path, R_OK)) TH_LOG("%s not installed", path);
	}
	/* The unit starts the kforkd it was installed with, and sandboxes its devices. */
	snprintf(self->cmd, sizeof(self->cmd),
		 "grep -c '^ExecStart=/usr/local/bin/kforkd \\|^DevicePolicy=closed$\\|^DeviceAllow=/dev/k' "
		 "%s/usr/local/lib/systemd/system/kforkd.service", self->dir);
	ASSERT_EQ(0, sh(self->cmd, self->out, sizeof(self->out)));
	EXPECT_STREQ("4\n", self->out);
	snprintf(self->cmd, sizeof(self->cmd), "%s/usr/local/bin/kfork --version", self->dir);
	ASSERT_EQ(0, sh(self->cmd, self->out, sizeof(self->out)));
	EXPECT_EQ(0, strncmp(self->out, "kfork " KF_VERSION_STRING, strlen("kfork " KF_VERSION_STRING)))
		TH_LOG("kfork --version: %s", self->out);
}

/* A program outside the tree, built with pkg-config against the staged tree, runs a clone. */
TEST_F(staged, pkg_config_program_runs_a_clone)
{
	const char *d = self->dir;
	char flags[1024];
	int n;

	snprintf(self->cmd, sizeof(self->cmd),
		 "PKG_CONFIG_PATH=%s/usr/local/lib/pkgconfig "
		 "PKG_CONFIG_SYSROOT_DIR=%s pkg-config --cflags --libs kfork", d, d);
	ASSERT_EQ(0, sh(self->cmd, flags, sizeof(flags))) TH_LOG("%s failed", self->cmd);
	flags[strcspn(flags, "\n")] = 0;
	EXPECT_NE(NULL, strstr(flags, "-lkfork")) TH_LOG("pkg-config: %s", flags);
	snprintf(self->cmd, sizeof(self->cmd),
		 "cc -Wall -Wextra -Werror -o %s/tiny_clone tests/install/tiny_clone.c %s 2>&1", d, flags);
	ASSERT_EQ(0, sh(self->cmd, self->out, sizeof(self->out))) TH_LOG("%s: %s", self->cmd, self->out);
	/* It must need the installed shared library, not carry the tree's objects. */
	snprintf(self->cmd, sizeof(self->cmd), "objdump -p %s/tiny_clone | grep -c 'NEEDED *libkfork.so.1'", d);
	ASSERT_EQ(0, sh(self->cmd, self->out, sizeof(self->out)));
	/* The installed archive: the program's own vm_create & co. must not clash with it. */
	snprintf(self->cmd, sizeof(self->cmd),
		 "cc -Wall -Wextra -Werror -o %s/tiny_clone_static tests/install/tiny_clone.c "
		 "-I%s/usr/local/include %s/usr/local/lib/libkfork.a -lseccomp -lz -lpthread 2>&1", d, d, d);
	ASSERT_EQ(0, sh(self->cmd, self->out, sizeof(self->out))) TH_LOG("%s: %s", self->cmd, self->out);
	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "/dev/kvm not available: built and linked, not run");
	/* The installed CLI finds its tiny guest in ../lib/kfork/ by itself. */
	snprintf(self->cmd, sizeof(self->cmd),
		 "%s/usr/local/bin/kfork template build --kind tiny -o %s/tiny.tmpl 2>&1", d, d);
	ASSERT_EQ(0, sh(self->cmd, self->out, sizeof(self->out))) TH_LOG("%s: %s", self->cmd, self->out);
	n = snprintf(self->cmd, sizeof(self->cmd),
		     "LD_LIBRARY_PATH=%s/usr/local/lib %s/tiny_clone %s/tiny.tmpl 2>&1", d, d, d);
	ASSERT_LT(n, (int)sizeof(self->cmd));
	ASSERT_EQ(0, sh(self->cmd, self->out, sizeof(self->out))) TH_LOG("%s: %s", self->cmd, self->out);
	EXPECT_NE(NULL, strstr(self->out, "libkfork " KF_VERSION_STRING ", clone "));
	EXPECT_NE(NULL, strstr(self->out, ": hi\n")) TH_LOG("tiny_clone: %s", self->out);
	snprintf(self->cmd, sizeof(self->cmd), "%s/tiny_clone_static %s/tiny.tmpl 2>&1", d, d);
	ASSERT_EQ(0, sh(self->cmd, self->out, sizeof(self->out))) TH_LOG("%s: %s", self->cmd, self->out);
	EXPECT_NE(NULL, strstr(self->out, ": hi\n")) TH_LOG("tiny_clone_static: %s", self->out);
}

TEST_HARNESS_MAIN
