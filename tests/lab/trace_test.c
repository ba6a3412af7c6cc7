// SPDX-License-Identifier: GPL-2.0-only
/* trace_test.c - `kfork trace` in the lab: every attach point (--faults --exits) and the defaults, 200 minimal-guest spawns each, exits that add up. */
#include "../trace_workload.h"
#include "kselftest_harness.h"

#define SPAWNS		200
#define TMPL		"/tmp/kfork-trace-lab-minimal.tmpl"

/* run: with --faults, every attach point; plain: kfork trace's defaults (no per-page events). */
FIXTURE(lab) {
	const char *skip;
	struct trace_run run, plain;
	struct trace_check check, plain_check;
};

FIXTURE_SETUP(lab)
{
	char *const build[] = { KFORK_BIN, "template", "build", "--kind", "minimal", "--timeout", "600",
				"-o", TMPL, NULL };
	char *const spawns[] = { KFORK_BIN, "run", "-n", "200", "-t", TMPL, "--", "true", NULL };
	pid_t pid;

	memset(&self->run, 0, sizeof(self->run));
	memset(&self->plain, 0, sizeof(self->plain));
	self->skip = getenv("KFORK_LAB") ? trace_skip_reason() : "not in the lab";
	if (!self->skip && (access("build/guest/vmlinux", R_OK) ||
			    access("build/guest/minimal.cpio.gz", R_OK)))
		self->skip = "guest kernel or minimal initramfs not built (run make)";
	if (self->skip)
		SKIP(return, "%s (run it under `make lab`)", self->skip);
	if (access(TMPL, R_OK)) {
		char *why;
		int status;

		pid = spawn_cmd(build, NULL, TMPL ".err");
		status = wait_status(pid);
		why = slurp(TMPL ".err");
		unlink(TMPL ".err");
		EXPECT_EQ(0, status) TH_LOG("kfork template build --kind minimal: %s", why);
		free(why);
		ASSERT_EQ(0, status);
	}
	ASSERT_EQ(0, trace_around(&self->run, spawns, 1)) TH_LOG("kfork trace never attached: %s",
								 self->run.messages);
	ASSERT_EQ(0, self->run.workload_status);
	ASSERT_EQ(0, self->run.trace_status) TH_LOG("%s", self->run.messages);
	trace_check_records(&self->run, &self->check);
	ASSERT_EQ(0, trace_around(&self->plain, spawns, 0)) TH_LOG("kfork trace never attached: %s",
								   self->plain.messages);
	ASSERT_EQ(0, self->plain.workload_status);
	ASSERT_EQ(0, self->plain.trace_status) TH_LOG("%s", self->plain.messages);
	trace_check_records(&self->plain, &self->plain_check);
}

FIXTURE_TEARDOWN(lab)
{
	trace_run_free(&self->run);
	trace_run_free(&self->plain);
}

#define NEED_LAB() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

/* What every run must show, whatever it attached: one whole, ordered record per spawn. */
static void expect_whole_records(struct __test_metadata *_metadata, const struct trace_run *r,
				 const struct trace_check *c)
{
	EXPECT_EQ(NULL, strstr(r->messages, "never fired")) TH_LOG("%s", r->messages);
	EXPECT_EQ(SPAWNS, c->records);
	EXPECT_EQ(SPAWNS, c->max_clone);
	EXPECT_EQ(0, c->phases_missing);
	EXPECT_EQ(0, c->sum_off) TH_LOG("worst phase sum is %.1f%% off libkfork's time",
					c->worst_off * 100);
	/* libkfork's stamps are on the clock BPF reads: each probe fires just after its call's last. */
	EXPECT_EQ(0, c->lag_off);
}

/* Template build and 200 spawns under emulated nested KVM: minutes, not the default 30 s. */
TEST_F_TIMEOUT(lab, every_attach_point_and_the_numbers_add_up, 900)
{
	struct trace_check *c = &self->check;

	NEED_LAB();
	/* On the lab's 6.1 with real (nested) SVM nothing is missing. */
	EXPECT_NE(NULL, strstr(self->run.messages, "every figure available"))
		TH_LOG("%s", self->run.messages);
	expect_whole_records(_metadata, &self->run, c);
	/* Every KVM_RUN return libkfork counted is one kvm_userspace_exit, and one VM exit at least. */
	EXPECT_EQ(SPAWNS, c->exits_counted);
	EXPECT_EQ(0, c->exits_off);
	EXPECT_EQ(SPAWNS, c->kvm_exits_counted);
	EXPECT_EQ(SPAWNS, c->stage2_counted);
	if (c->records)
		TH_LOG("%d spawns, worst phase sum %.2f%% off libkfork's time", c->records,
		       c->worst_off * 100);
}

/* The defaults (what trace-overhead.sh holds to 5%): same phases, libkfork's KVM_RUN return counts, no per-page or per-exit figures. */
TEST_F_TIMEOUT(lab, default_keeps_phases_and_exits, 900)
{
	struct trace_check *c = &self->plain_check;

	NEED_LAB();
	EXPECT_NE(NULL, strstr(self->plain.messages, "every figure available (of those asked for)"))
		TH_LOG("%s", self->plain.messages);
	EXPECT_NE(NULL, strstr(self->plain.messages, "--exits count them)"))
		TH_LOG("%s", self->plain.messages);
	expect_whole_records(_metadata, &self->plain, c);
	EXPECT_EQ(0, c->exits_counted);		/* kvm_userspace_exit only with --exits */
	EXPECT_EQ(SPAWNS, c->lib_exits_counted);
	EXPECT_EQ(0, c->kvm_exits_counted);	/* kvm_exit only with --exits */
	EXPECT_EQ(SPAWNS, c->faults_null);
}

TEST_HARNESS_MAIN
