// SPDX-License-Identifier: GPL-2.0-only
/* stress_test.c - 4 threads spawning, resetting and destroying clones of one template for 30 s. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "kmod_fixture.h"
#include "kselftest_harness.h"

#define STRESS_SECONDS	30
#define STRESS_THREADS	4

struct stress {
	struct kf_template *kmod;	/* libkfork, kmod backend, with a pool */
	int tfd;			/* raw template fd of the same guest */
	time_t until;
	atomic_long spawns, resets, destroys, execs, errors;
	char last_error[256];
	pthread_mutex_t lock;
};

static void stress_error(struct stress *st, const char *what, int err)
{
	atomic_fetch_add(&st->errors, 1);
	pthread_mutex_lock(&st->lock);
	snprintf(st->last_error, sizeof(st->last_error), "%s: %s", what,
		 err ? strerror(err) : kf_last_error());
	pthread_mutex_unlock(&st->lock);
}

/* Threads 0, 1: libkfork clones that run code, reset and run again, then go. */
static void stress_lib_round(struct stress *st)
{
	struct kf_exec_req req = { .lang = KF_EXEC_SH, .code = "peek 200000", .code_len = 11,
				   .timeout_ms = 60000 };
	struct kf_exec_result res;
	struct kf_clone *clone;

	if (kf_spawn(st->kmod, &clone)) {
		stress_error(st, "kf_spawn", 0);
		return;
	}
	atomic_fetch_add(&st->spawns, 1);
	for (int i = 0; i < 2; i++) {
		if (kf_exec(clone, &req, &res) || res.exit_code ||
		    strcmp(res.out ? res.out : "", "00000000\n"))
			stress_error(st, "kf_exec peek (a write leaked between clones?)", 0);
		else
			atomic_fetch_add(&st->execs, 1);
		kf_exec_result_free(&res);
		if (i == 0) {
			req.code = "poke 200000 1 ; peek 200000";
			req.code_len = strlen(req.code);
			kf_exec(clone, &req, &res);
			kf_exec_result_free(&res);
			req.code = "peek 200000";
			req.code_len = strlen(req.code);
			if (kf_reset(clone))
				stress_error(st, "kf_reset", 0);
			else
				atomic_fetch_add(&st->resets, 1);
		}
	}
	kf_destroy(clone);
	atomic_fetch_add(&st->destroys, 1);
}

/* Threads 2, 3: raw ioctls: a batch of 3, resets with guest memory written, pool resizes. */
static void stress_raw_round(struct stress *st, unsigned int seed)
{
	struct kfork_spawn_batch batch = { .size = sizeof(batch), .nr = 3,
					   .entry_size = sizeof(struct kfork_spawn) };
	struct kfork_spawn sp[3];
	int n;

	memset(sp, 0, sizeof(sp));
	for (int i = 0; i < 3; i++)
		sp[i].size = sizeof(sp[i]);
	batch.clones_ptr = (uintptr_t)sp;
	n = ioctl(st->tfd, KFORK_SPAWN_BATCH, &batch);
	if (n < 0) {
		stress_error(st, "KFORK_SPAWN_BATCH", errno);
		return;
	}
	for (int i = 0; i < 3; i++) {
		struct kfork_clone_reset rs = { .size = sizeof(rs) };

		if (sp[i].status) {
			/* ENOSPC is the cap doing its job under load; anything else is not. */
			if (sp[i].status != -ENOSPC)
				stress_error(st, "batch entry", -sp[i].status);
			continue;
		}
		atomic_fetch_add(&st->spawns, 1);
		*(volatile __u32 *)(uintptr_t)(sp[i].mem_addr + 0x200000 + 4096 * i) = seed;
		if (ioctl(sp[i].clone_fd, KFORK_CLONE_RESET, &rs))
			stress_error(st, "KFORK_CLONE_RESET", errno);
		else
			atomic_fetch_add(&st->resets, 1);
		kf_raw_close(&sp[i]);
		atomic_fetch_add(&st->destroys, 1);
	}
	if (!(seed % 5) && kf_raw_pool(st->tfd, seed % 3, seed & 1 ? KFORK_POOL_NO_FILL : 0, NULL))
		stress_error(st, "KFORK_TEMPLATE_POOL", errno);
}

struct stress_arg {
	struct stress *st;
	int idx;
};

static void *stress_thread(void *p)
{
	struct stress_arg *a = p;
	unsigned int seed = a->idx;

	while (time(NULL) < a->st->until) {
		if (a->idx < 2)
			stress_lib_round(a->st);
		else
			stress_raw_round(a->st, seed += 7);
	}
	return NULL;
}

FIXTURE(stress) {
	struct kf_template *user;
	struct stress st;
	const char *skip;
};

FIXTURE_SETUP(stress)
{
	memset(&self->st, 0, sizeof(self->st));
	self->user = NULL;
	self->st.tfd = -1;
	self->skip = kf_kmod_missing();
	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, kf_tiny_template());
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_USER, &self->user));
	setenv("KFORK_KMOD_POOL", "2", 1);
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_KMOD, &self->st.kmod))
		TH_LOG("%s", kf_last_error());
	unsetenv("KFORK_KMOD_POOL");
	/* A low cap, so the raw threads also meet ENOSPC. */
	self->st.tfd = kf_raw_template(self->user, 5);
	ASSERT_LE(0, self->st.tfd);
	pthread_mutex_init(&self->st.lock, NULL);
}

FIXTURE_TEARDOWN(stress)
{
	if (self->st.tfd >= 0)
		close(self->st.tfd);
	kf_template_close(self->st.kmod);
	kf_template_close(self->user);
}

/* The harness kills the test after 120 s: 30 s of load, then teardown on a slow lab. */
TEST_F_TIMEOUT(stress, four_threads_spawn_reset_destroy_for_30s, 120)
{
	struct stress_arg args[STRESS_THREADS];
	pthread_t threads[STRESS_THREADS];
	struct kfork_template_info info;
	struct kfork_caps caps0;
	long kb0, kb1;

	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, kf_raw_caps(&caps0));
	kb0 = kf_kernel_kb_drained();
	self->st.until = time(NULL) + STRESS_SECONDS;
	for (int i = 0; i < STRESS_THREADS; i++) {
		args[i] = (struct stress_arg){ .st = &self->st, .idx = i };
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, stress_thread, &args[i]));
	}
	for (int i = 0; i < STRESS_THREADS; i++)
		pthread_join(threads[i], NULL);
	TH_LOG("%ld spawns, %ld resets, %ld destroys, %ld execs checked, %ld errors",
	       atomic_load(&self->st.spawns), atomic_load(&self->st.resets),
	       atomic_load(&self->st.destroys), atomic_load(&self->st.execs),
	       atomic_load(&self->st.errors));
	EXPECT_EQ(0, atomic_load(&self->st.errors)) TH_LOG("last: %s", self->st.last_error);
	EXPECT_LT(20, atomic_load(&self->st.spawns));
	EXPECT_LT(0, atomic_load(&self->st.execs));
	ASSERT_EQ(0, kf_raw_info(self->st.tfd, &info));
	EXPECT_EQ(0, info.live_clones);
	/* Everything spawned went: libkfork's reaper finishes, then the module's counts are back. */
	kf_template_close(self->st.kmod);
	self->st.kmod = NULL;
	close(self->st.tfd);
	self->st.tfd = -1;
	EXPECT_EQ(0, kf_live_settles(caps0.live_templates - 2, caps0.live_clones));
	/* Two templates' pools (up to 2 + 2 VMs) went too: less than one VM's worth stays. */
	kb1 = kf_kernel_kb_settle(kb0 + 512);
	TH_LOG("Slab+VmallocUsed %ld -> %ld kB", kb0, kb1);
	EXPECT_GT(512, kb1 - kb0);
}

TEST_HARNESS_MAIN
