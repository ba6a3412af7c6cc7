// SPDX-License-Identifier: GPL-2.0-only
/* dkms_test.c - in the lab: make's DKMS build of kmod/ through dkms install, then modprobe kfork (tests/lab/dkms-check.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

/* KFORK_KMOD when the lab loaded the tree's module for Debian's kernel (tests/lab/lab.sh). */
#define KMOD_FROM_TREE	"loaded:build/kmod/"

/* Why DKMS cannot be tried here, or NULL. */
static const char *dkms_missing(char *why, size_t len)
{
	const char *kmod = getenv("KFORK_KMOD");
	struct utsname u;
	char build[300];

	if (!getenv("KFORK_LAB"))
		return "not in the lab: run under make check or make lab";
	if (!kmod || strncmp(kmod, KMOD_FROM_TREE, strlen(KMOD_FROM_TREE)))
		return "the lab did not load build/kmod/kfork.ko (Debian's kernel): DKMS is tried there";
	if (access("/usr/sbin/dkms", X_OK))
		return "dkms not installed (apt-get install dkms)";
	if (access("build/dkms/add.log", R_OK))
		return "no DKMS build in build/dkms (make builds one where dkms and the headers are)";
	uname(&u);
	snprintf(build, sizeof(build), "/lib/modules/%s/build/Makefile", u.release);
	if (access(build, R_OK)) {
		snprintf(why, len, "no kernel headers for %s (%s)", u.release, build);
		return why;
	}
	return NULL;
}

FIXTURE(dkms) {};
FIXTURE_SETUP(dkms) {}
FIXTURE_TEARDOWN(dkms) {}

/* dkms and depmod under TCG take a while: more than the harness's default 30 s. */
TEST_F_TIMEOUT(dkms, builds_installs_and_modprobe_loads_it, 900)
{
	char why[400];
	const char *skip = dkms_missing(why, sizeof(why));
	int status;

	if (skip)
		SKIP(return, "%s", skip);
	status = system("unshare -m tests/lab/dkms-check.sh 2>&1");
	ASSERT_NE(-1, status);
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("tests/lab/dkms-check.sh failed (its output is above)");
	/* Whatever happened, the tree's module must be back for the tests after this one. */
	EXPECT_EQ(0, access("/dev/kfork", F_OK));
}

TEST_HARNESS_MAIN
