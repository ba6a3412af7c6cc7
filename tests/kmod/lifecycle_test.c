// SPDX-License-Identifier: GPL-2.0-only
/* lifecycle_test.c - a caller SIGKILLed mid batch spawn leaks nothing; clones are charged to the caller's memory cgroup. */
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kmod_fixture.h"
#include "kselftest_harness.h"

#define BATCH	64

FIXTURE(life) {
	struct kf_template *user;
	int tfd;
	const char *skip;
};

FIXTURE_SETUP(life)
{
	self->user = NULL;
	self->tfd = -1;
	self->skip = kf_kmod_missing();
	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, kf_tiny_template());
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_USER, &self->user));
	self->tfd = kf_raw_template(self->user, 0);
	ASSERT_LE(0, self->tfd);
}

FIXTURE_TEARDOWN(life)
{
	if (self->tfd >= 0)
		close(self->tfd);
	kf_template_close(self->user);
}

#define NEED_LIFE() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

/*
 * The child inherits our template fd and starts a batch of 64 spawns (with a
 * pool being filled too); we SIGKILL it once a few clones exist. Afterwards:
 * the template has no live clone, the module's counts are what they were,
 * and kernel memory (slab + vmalloc) did not keep what the clones cost.
 */
TEST_F_TIMEOUT(life, sigkill_mid_batch_spawn_leaks_nothing, 120)
{
	struct kfork_template_info info;
	struct kfork_caps caps0, caps;
	struct kfork_spawn after;
	long slab0, slab1;
	int status, mid = 0;
	pid_t pid;

	NEED_LIFE();
	for (int round = 0; round < 2; round++) {	/* warm: slab caches settle */
		struct kfork_spawn sp;

		ASSERT_EQ(0, kf_raw_spawn(self->tfd, &sp, 0));
		kf_raw_close(&sp);
	}
	ASSERT_EQ(0, kf_raw_caps(&caps0));
	slab0 = kf_kernel_kb();
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kfork_spawn_batch batch = { .size = sizeof(batch), .nr = BATCH,
						   .entry_size = sizeof(struct kfork_spawn) };
		struct kfork_spawn *sp = calloc(BATCH, sizeof(*sp));

		for (int i = 0; i < BATCH; i++)
			sp[i].size = sizeof(*sp);
		batch.clones_ptr = (uintptr_t)sp;
		kf_raw_pool(self->tfd, 2, KFORK_POOL_NO_FILL, NULL);
		ioctl(self->tfd, KFORK_SPAWN_BATCH, &batch);
		_exit(3);	/* not reached if the kill lands mid batch */
	}
	/* Kill it between (or inside) spawns, once at least 3 clones are live. */
	for (int i = 0; i < 1200; i++) {
		if (kf_raw_caps(&caps) == 0 && caps.live_clones >= caps0.live_clones + 3) {
			mid = 1;
			break;
		}
		usleep(10000);
	}
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(mid) TH_LOG("the batch never had 3 clones live");
	EXPECT_TRUE(WIFSIGNALED(status)) TH_LOG("the child finished its batch before the kill");
	EXPECT_EQ(0, kf_live_settles(caps0.live_templates, caps0.live_clones));
	ASSERT_EQ(0, kf_raw_info(self->tfd, &info));
	EXPECT_EQ(0, info.live_clones);
	TH_LOG("spawned before the kill: %llu", (unsigned long long)info.spawns - 2);
	/* A few clones existed (>= 3 x ~150 kB): less than one VM's worth may stay cached. */
	slab1 = kf_kernel_kb_settle(slab0 + 256);
	TH_LOG("Slab+VmallocUsed %ld -> %ld kB", slab0, slab1);
	EXPECT_GT(256, slab1 - slab0);
	/* The template still works. */
	ASSERT_EQ(0, kf_raw_spawn(self->tfd, &after, 0));
	kf_raw_close(&after);
}

/* ---- memory cgroup ------------------------------------------------------------ */

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

static long read_long(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

/* A cgroup2 hierarchy with the memory controller for children, or NULL and why. */
static const char *cgroup2_root(char *root, size_t len)
{
	char line[512], dev[64], mnt[256], type[64];
	FILE *f = fopen("/proc/mounts", "r");
	int found = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %255s %63s", dev, mnt, type) == 3 && !strcmp(type, "cgroup2")) {
			found = 1;
			break;
		}
	if (f)
		fclose(f);
	if (!found) {
		snprintf(mnt, sizeof(mnt), "/tmp/kfork-cgroup2");
		mkdir(mnt, 0755);
		if (mount("cgroup2", mnt, "cgroup2", 0, NULL))
			return "cannot mount cgroup2";
	}
	snprintf(root, len, "%s", mnt);
	snprintf(line, sizeof(line), "%s/cgroup.subtree_control", root);
	if (write_str(line, "+memory"))
		return "cannot enable the memory controller (cgroup.subtree_control)";
	return NULL;
}

/*
 * Spawns charge the spawning process's memory cgroup: the module allocates
 * with GFP_KERNEL_ACCOUNT and builds the VM in the caller's context, so KVM's
 * own accounted allocations (VM, vCPU, MMU pages, memslot bitmaps) land there
 * too. 16 clones without prefault and without one guest write must raise
 * memory.current of a fresh cgroup by at least 16 x 32 KiB.
 */
TEST_F(life, clones_charged_to_the_callers_memory_cgroup)
{
	char root[256], cg[320], path[400], pidbuf[32];
	long after, delta;
	int pipefd[2], status;
	const char *why;
	pid_t pid;

	NEED_LIFE();
	why = cgroup2_root(root, sizeof(root));
	if (why)
		SKIP(return, "%s", why);
	snprintf(cg, sizeof(cg), "%s/kfork-test-%d", root, getpid());
	ASSERT_EQ(0, mkdir(cg, 0755)) TH_LOG("mkdir %s: %s", cg, strerror(errno));
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kfork_spawn sp[16];
		long d;

		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		snprintf(pidbuf, sizeof(pidbuf), "%d", getpid());
		if (write_str(path, pidbuf))
			_exit(2);
		snprintf(path, sizeof(path), "%s/memory.current", cg);
		d = -read_long(path);
		for (int i = 0; i < 16; i++)
			if (kf_raw_spawn(self->tfd, &sp[i], KFORK_SPAWN_NO_PREFAULT))
				_exit(3);
		d += read_long(path);
		if (write(pipefd[1], &d, sizeof(d)) != sizeof(d))
			_exit(4);
		for (int i = 0; i < 16; i++)
			kf_raw_close(&sp[i]);
		_exit(0);
	}
	close(pipefd[1]);
	delta = -1;
	EXPECT_EQ(sizeof(delta), read(pipefd[0], &delta, sizeof(delta)));
	close(pipefd[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	TH_LOG("memory.current grew by %ld kB for 16 clones", delta / 1024);
	EXPECT_LT(16 * 32 * 1024, delta);
	/* The child is gone; what stays charged (e.g. slab pages shared with others) is shown. */
	snprintf(path, sizeof(path), "%s/memory.current", cg);
	usleep(200000);
	after = read_long(path);
	TH_LOG("memory.current %ld kB after the child exited", after / 1024);
	rmdir(cg);
}

TEST_HARNESS_MAIN
