// SPDX-License-Identifier: GPL-2.0-only
/* trace_test.c - `kfork trace` on the host: bad options, --duration, one record per spawn, honest gaps. */
#include "../trace_workload.h"
#include "kselftest_harness.h"

#define SPAWNS		20
#define TMPL		"/tmp/kfork-trace-host-tiny.tmpl"

static int run_kfork(char *const argv[])
{
	pid_t pid = spawn_cmd(argv, NULL, NULL);

	return pid < 0 ? -1 : wait_status(pid);
}

TEST(bad_options)
{
	char *const zero[] = { KFORK_BIN, "trace", "--duration", "0", NULL };
	char *const extra[] = { KFORK_BIN, "trace", "extra-argument", NULL };
	char *const pid[] = { KFORK_BIN, "trace", "-p", "-3", NULL };

	if (access(KFORK_BIN, X_OK))
		SKIP(return, KFORK_BIN " not built (run make)");
	EXPECT_EQ(125, run_kfork(zero));
	EXPECT_EQ(125, run_kfork(extra));
	EXPECT_EQ(125, run_kfork(pid));
}

TEST(duration_stops_by_itself)
{
	char *const argv[] = { KFORK_BIN, "trace", "--json", "--duration", "1", NULL };
	const char *skip = trace_skip_reason();
	struct timespec a, b;
	double took;

	if (skip)
		SKIP(return, "%s", skip);
	clock_gettime(CLOCK_MONOTONIC, &a);
	ASSERT_EQ(0, run_kfork(argv));
	clock_gettime(CLOCK_MONOTONIC, &b);
	took = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	EXPECT_GE(took, 1.0);
	EXPECT_LT(took, 20.0);	/* loading and attaching included */
}

/* run: with --faults, every attach point; plain: kfork trace's defaults (no per-page events). */
FIXTURE(workload) {
	const char *skip;
	struct trace_run run, plain;
	struct trace_check check, plain_check;
};

FIXTURE_SETUP(workload)
{
	char *const build[] = { KFORK_BIN, "template", "build", "--kind", "tiny", "-o", TMPL, NULL };
	char *const spawns[] = { KFORK_BIN, "run", "-n", "20", "-t", TMPL, "--", "echo hi", NULL };

	memset(&self->run, 0, sizeof(self->run));
	memset(&self->plain, 0, sizeof(self->plain));
	self->skip = trace_skip_reason();
	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, run_kfork(build)) TH_LOG("kfork template build --kind tiny failed");
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

FIXTURE_TEARDOWN(workload)
{
	trace_run_free(&self->run);
	trace_run_free(&self->plain);
	unlink(TMPL);
}

/* SKIP() in FIXTURE_SETUP does not stop the body on 6.1's harness. */
#define NEED_TRACE() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

TEST_F(workload, one_record_per_spawn)
{
	NEED_TRACE();
	EXPECT_EQ(SPAWNS, self->check.records) TH_LOG("records:\n%s", self->run.records);
	EXPECT_EQ(SPAWNS, self->check.max_clone);
}

TEST_F(workload, phases_in_order_and_summing_to_libkfork_time)
{
	NEED_TRACE();
	ASSERT_EQ(SPAWNS, self->check.records);
	EXPECT_EQ(0, self->check.phases_missing);
	EXPECT_EQ(0, self->check.sum_off) TH_LOG("worst phase sum is %.1f%% off libkfork's time",
						 self->check.worst_off * 100);
	/* libkfork's stamps are on the clock BPF reads: each probe fires just after its call's last. */
	EXPECT_EQ(0, self->check.lag_off);
}

TEST_F(workload, user_exits_equal_kvm_run_returns)
{
	NEED_TRACE();
	ASSERT_EQ(SPAWNS, self->check.records);
	/* kvm:kvm_userspace_exit fires on this host's KVM, PVM included. */
	EXPECT_EQ(SPAWNS, self->check.exits_counted);
	EXPECT_EQ(0, self->check.exits_off);
}

TEST_F(workload, unavailable_figures_reported)
{
	int pvm = !access("/sys/module/kvm_pvm", F_OK);
	int kprobes = !access("/sys/bus/event_source/devices/kprobe/type", F_OK);
	const char *msg;

	NEED_TRACE();
	msg = self->run.messages;
	if (pvm)
		EXPECT_NE(NULL, strstr(msg, "kvm:kvm_exit): attached, but never fires"))
			TH_LOG("%s", msg);
	if (!kprobes)
		EXPECT_NE(NULL, strstr(msg, "kprobe:handle_mm_fault): kprobes are not configured"))
			TH_LOG("%s", msg);
	if (pvm || !kprobes) {
		EXPECT_NE(NULL, strstr(msg, "unavailable here:"));
		/* ... and the figures it can take are still there */
		EXPECT_EQ(NULL, strstr(self->run.records, "\"user_exits\":null"));
	} else {
		EXPECT_NE(NULL, strstr(msg, "every figure available")) TH_LOG("%s", msg);
	}
}

/* The defaults: the same records, libkfork's exit counts; per-page and per-exit figures null and said so. */
TEST_F(workload, default_leaves_per_page_events_out)
{
	struct trace_check *c = &self->plain_check;

	NEED_TRACE();
	EXPECT_EQ(SPAWNS, c->records) TH_LOG("records:\n%s", self->plain.records);
	EXPECT_EQ(SPAWNS, c->max_clone);
	EXPECT_EQ(0, c->phases_missing);
	EXPECT_EQ(0, c->sum_off);
	EXPECT_EQ(0, c->lag_off);
	/* per-exit events only with --exits; libkfork's own count of KVM_RUN returns always */
	EXPECT_EQ(0, c->exits_counted);
	EXPECT_EQ(SPAWNS, c->lib_exits_counted);
	EXPECT_EQ(SPAWNS, c->faults_null);
	EXPECT_NE(NULL, strstr(self->plain.messages, "--exits count them)"))
		TH_LOG("%s", self->plain.messages);
	EXPECT_EQ(NULL, strstr(self->plain.messages, "handle_mm_fault): kprobes"))
		TH_LOG("%s", self->plain.messages);
}

TEST_HARNESS_MAIN
