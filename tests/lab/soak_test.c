// SPDX-License-Identifier: GPL-2.0-only
/* soak_test.c - a short soak per backend passes, and the same soak leaking one clone fails. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfork.h"
#include "kselftest_harness.h"
#include "lab_template.h"

#define SOAK		"build/tests/soak/soak"
#define LEAKY_CYCLES	"20"	/* one leaked clone shows however short the run */
#define OUT_MAX		16384

/* The same template and lock as e2e_test.c: built once per lab boot by whoever is first. */
static const char *minimal_template(const char **skip)
{
	static const char path[] = "/tmp/kfork-e2e-minimal.tmpl";
	struct kf_build_opts opts = { .kind = KF_KIND_MINIMAL, .kernel = "build/guest/vmlinux",
				      .initrd = "build/guest/minimal.cpio.gz" };

	*skip = NULL;
	/* Only the lab's nested KVM boots a Linux guest (LAB.md): elsewhere, say so. */
	if (!getenv("KFORK_LAB") || strcmp(getenv("KFORK_LAB"), "1")) {
		*skip = "needs the lab (KFORK_LAB=1): make lab CMD=build/tests/lab/soak_test";
		return NULL;
	}
	if (access("/dev/kvm", R_OK | W_OK)) {
		*skip = "/dev/kvm not available (run under `make lab`)";
		return NULL;
	}
	if (access(opts.kernel, R_OK) || access(opts.initrd, R_OK) || access(SOAK, X_OK)) {
		*skip = "guest kernel, initramfs or " SOAK " not built (run make)";
		return NULL;
	}
	if (lab_template_build_once(&opts, path))
		return NULL;
	return path;
}

/* Runs the soak; returns its exit status (-1 if it did not exit), output in out. */
static int soak(const char *tmpl, const char *backend, const char *cycles, int leak, char *out)
{
	char cmd[512];
	size_t n = 0, got;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s -t %s -b %s -n %s -w 5 %s 2>&1", SOAK, tmpl, backend, cycles,
		 leak ? "--leak-one" : "");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (n + 1 < OUT_MAX && (got = fread(out + n, 1, OUT_MAX - 1 - n, p)) > 0)
		n += got;
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The counter's row of the soak's table, if it is marked FAIL. */
static int row_failed(const char *out, const char *counter)
{
	char key[64];
	const char *row, *eol;

	snprintf(key, sizeof(key), "soak: %-15s ", counter);
	row = strstr(out, key);
	if (!row)
		return 0;
	eol = strchr(row, '\n');
	for (const char *f = strstr(row, "FAIL"); f; f = strstr(f + 1, "FAIL"))
		if (!eol || f < eol)
			return 1;
	return 0;
}

/* The soak's report into the TAP stream, as comments. */
static void print_commented(const char *out)
{
	for (const char *l = out; *l; ) {
		const char *eol = strchr(l, '\n');
		int len = eol ? (int)(eol - l) : (int)strlen(l);

		printf("# %.*s\n", len, l);
		l += len + (eol != NULL);
	}
}

FIXTURE(soak) {
	const char *tmpl;
	const char *skip;
	char out[OUT_MAX];
};

FIXTURE_VARIANT(soak) {
	const char *backend;
	const char *cycles;	/* clean run, per phase: spawn/exec/destroy, then reset+exec */
};

/*
 * The user backend's cycle took 0.4-0.8 s in the lab on a loaded host (kmod
 * 0.15 s): 50 per phase keeps the whole test under 3 minutes of lab time.
 */
FIXTURE_VARIANT_ADD(soak, user) { .backend = "user", .cycles = "50" };
FIXTURE_VARIANT_ADD(soak, kmod) { .backend = "kmod", .cycles = "100" };

FIXTURE_SETUP(soak)
{
	self->tmpl = minimal_template(&self->skip);
	if (!self->skip && !strcmp(variant->backend, "kmod") && access("/dev/kfork", R_OK | W_OK))
		self->skip = "/dev/kfork missing: kfork.ko not loaded";
	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_NE(NULL, self->tmpl);
}

FIXTURE_TEARDOWN(soak)
{
}

#define NEED_LAB() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

TEST_F_TIMEOUT(soak, clean_soak_stays_within_every_bound, 900)
{
	NEED_LAB();
	EXPECT_EQ(0, soak(self->tmpl, variant->backend, variant->cycles, 0, self->out))
		TH_LOG("%s", self->out);
	EXPECT_NE(NULL, strstr(self->out, ": PASS\n")) TH_LOG("%s", self->out);
	/* It measured what it claims to: the counters are there, module ones too for kmod. */
	EXPECT_NE(NULL, strstr(self->out, "soak: fds ")) TH_LOG("%s", self->out);
	EXPECT_NE(NULL, strstr(self->out, "soak: vmalloc ")) TH_LOG("%s", self->out);
	if (!strcmp(variant->backend, "kmod"))
		EXPECT_EQ(NULL, strstr(self->out, "KFORK_GET_CAPS: not available")) TH_LOG("%s", self->out);
	print_commented(self->out);
}

TEST_F_TIMEOUT(soak, one_leaked_clone_fails_the_soak, 900)
{
	NEED_LAB();
	EXPECT_EQ(1, soak(self->tmpl, variant->backend, LEAKY_CYCLES, 1, self->out))
		TH_LOG("%s", self->out);
	EXPECT_NE(NULL, strstr(self->out, ": FAIL: a resource grew past its bound")) TH_LOG("%s", self->out);
	/* The leaked VM's own fds, and for kmod the module's count of live clones. */
	EXPECT_TRUE(row_failed(self->out, "fds")) TH_LOG("%s", self->out);
	if (!strcmp(variant->backend, "kmod"))
		EXPECT_TRUE(row_failed(self->out, "live_clones")) TH_LOG("%s", self->out);
	print_commented(self->out);
}

TEST_HARNESS_MAIN
