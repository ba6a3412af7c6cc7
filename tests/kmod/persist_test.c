// SPDX-License-Identifier: GPL-2.0-only
/* persist_test.c - persistent templates in kfork.ko: keep, attach, refuse, remove, account; tiny guest, in the lab. */
#include <grp.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "kmod_fixture.h"
#include "kselftest_harness.h"

#define NOBODY		65534

FIXTURE(persist) {
	const char *skip;
	struct kf_template *user;	/* the tiny template, user backend: memfd + state */
	__u64 base_templates, base_clones;
};

FIXTURE_SETUP(persist)
{
	struct kfork_caps caps;

	self->skip = kf_kmod_missing();
	self->user = NULL;
	if (self->skip)
		return;
	ASSERT_EQ(0, kf_tiny_template());
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_USER, &self->user))
		TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_raw_caps(&caps));
	ASSERT_TRUE(caps.caps & KFORK_CAP_PERSIST);
	self->base_templates = caps.live_templates;
	self->base_clones = caps.live_clones;
}

FIXTURE_TEARDOWN(persist)
{
	struct kfork_template_key all = { .size = sizeof(all), .flags = KFORK_REMOVE_ALL };
	int dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);

	/* Nothing a failed test kept outlives it. */
	if (dev >= 0) {
		ioctl(dev, KFORK_TEMPLATE_REMOVE, &all);
		close(dev);
	}
	kf_template_close(self->user);
}

#define NEED_KMOD() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

static void key_of(struct kfork_template_key *k, const char *text, __u32 flags)
{
	memset(k, 0, sizeof(*k));
	k->size = sizeof(*k);
	k->flags = flags;
	snprintf((char *)k->key, sizeof(k->key), "%s", text);
}

static int dev_ioctl(unsigned long cmd, struct kfork_template_key *k)
{
	int dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC), ret, err;

	if (dev < 0)
		return -1;
	ret = ioctl(dev, cmd, k);
	err = errno;
	close(dev);
	errno = err;
	return ret;
}

static int persist(int tfd, const char *text)
{
	struct kfork_template_key k;

	key_of(&k, text, 0);
	return ioctl(tfd, KFORK_TEMPLATE_PERSIST, &k);
}

static int attach(const char *text)
{
	struct kfork_template_key k;

	key_of(&k, text, 0);
	return dev_ioctl(KFORK_TEMPLATE_ATTACH, &k);
}

static int remove_key(const char *text)
{
	struct kfork_template_key k;

	key_of(&k, text, 0);
	return dev_ioctl(KFORK_TEMPLATE_REMOVE, &k);
}

/* A clone of tfd runs: its vCPU reaches the guest's first port I/O or HLT. */
static int spawn_runs(int tfd)
{
	struct kfork_spawn sp;
	struct kvm_run *run;
	int ret;

	if (kf_raw_spawn(tfd, &sp, 0))
		return -1;
	run = (struct kvm_run *)(uintptr_t)sp.run_addr;
	ret = ioctl(sp.vcpu_fd, KVM_RUN, 0);
	if (!ret && run->exit_reason != KVM_EXIT_IO && run->exit_reason != KVM_EXIT_HLT)
		ret = -2;
	kf_raw_close(&sp);
	return ret;
}

TEST_F(persist, bad_arguments_are_refused)
{
	struct kfork_template_key k;
	int tfd;

	NEED_KMOD();
	tfd = kf_raw_template(self->user, 0);
	ASSERT_LE(0, tfd);
	key_of(&k, "bad", 1);
	EXPECT_EQ(-1, ioctl(tfd, KFORK_TEMPLATE_PERSIST, &k));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, dev_ioctl(KFORK_TEMPLATE_ATTACH, &k));
	EXPECT_EQ(EINVAL, errno);
	key_of(&k, "bad", 2);
	EXPECT_EQ(-1, dev_ioctl(KFORK_TEMPLATE_REMOVE, &k));
	EXPECT_EQ(EINVAL, errno);
	key_of(&k, "bad", 0);
	k.size = offsetof(struct kfork_template_key, key) + 4;	/* ends inside the key */
	EXPECT_EQ(-1, ioctl(tfd, KFORK_TEMPLATE_PERSIST, &k));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, attach("nothing under this key"));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, remove_key("nothing under this key"));
	EXPECT_EQ(ENOENT, errno);
	close(tfd);
	EXPECT_EQ(0, kf_live_settles(self->base_templates, self->base_clones));
}

/* One template per key and one key per template. */
TEST_F(persist, keys_are_unique)
{
	int a, b;

	NEED_KMOD();
	a = kf_raw_template(self->user, 0);
	b = kf_raw_template(self->user, 0);
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, persist(a, "one"));
	EXPECT_EQ(-1, persist(a, "two"));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, persist(b, "one"));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(0, persist(b, "two"));
	close(a);
	close(b);
	EXPECT_EQ(1, remove_key("one"));
	EXPECT_EQ(1, remove_key("two"));
	EXPECT_EQ(-1, remove_key("one"));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, kf_live_settles(self->base_templates, self->base_clones));
}

static int attach_and_spawn(void *arg)
{
	int tfd = attach(arg);

	if (tfd < 0)
		return 1;
	if (spawn_runs(tfd))
		return 2;
	close(tfd);
	return 0;
}

/* The template outlives its registering fd and is found by a later process. */
TEST_F(persist, a_later_process_attaches_and_spawns)
{
	struct kfork_template_info a, b;
	struct kfork_caps caps;
	int tfd, again;

	NEED_KMOD();
	tfd = kf_raw_template(self->user, 0);
	ASSERT_LE(0, tfd);
	ASSERT_EQ(0, kf_raw_info(tfd, &a));
	ASSERT_EQ(0, persist(tfd, "later"));
	close(tfd);
	/* Kept: nothing holds it but the module. */
	ASSERT_EQ(0, kf_raw_caps(&caps));
	EXPECT_EQ(self->base_templates + 1, caps.live_templates);
	EXPECT_EQ(0, in_child(attach_and_spawn, "later"));
	EXPECT_EQ(0, in_child(attach_and_spawn, "later"));
	again = attach("later");
	ASSERT_LE(0, again);
	ASSERT_EQ(0, kf_raw_info(again, &b));
	EXPECT_EQ(a.tmpl_id, b.tmpl_id);
	EXPECT_EQ(2, b.spawns);
	close(again);
	EXPECT_EQ(1, remove_key("later"));
	EXPECT_EQ(0, kf_live_settles(self->base_templates, self->base_clones));
}

struct other_user {
	int tfd;		/* inherited across fork: root's template */
};

static int as_nobody(void *arg)
{
	struct other_user *o = arg;
	struct kfork_template_key all;

	/* Group 0 keeps /dev/kfork (root:root 0660 in the lab) open to it. */
	if (setgroups(0, NULL) || setgid(0) || setuid(NOBODY))
		return 10;
	if (access(KFORK_DEVICE, R_OK | W_OK))
		return 11;
	if (attach("root's") >= 0 || errno != ENOENT)
		return 1;
	if (remove_key("root's") >= 0 || errno != ENOENT)
		return 2;
	key_of(&all, "", KFORK_REMOVE_ALL);
	if (dev_ioctl(KFORK_TEMPLATE_REMOVE, &all) != 0)
		return 3;
	/* Holding root's template fd is not owning it. */
	if (persist(o->tfd, "stolen") >= 0 || errno != EPERM)
		return 4;
	return 0;
}

/* Another user can neither find, remove nor keep root's template. */
TEST_F(persist, another_user_is_refused)
{
	struct other_user o;
	int tfd;

	NEED_KMOD();
	o.tfd = kf_raw_template(self->user, 0);
	ASSERT_LE(0, o.tfd);
	tfd = kf_raw_template(self->user, 0);
	ASSERT_LE(0, tfd);
	ASSERT_EQ(0, persist(tfd, "root's"));
	close(tfd);
	EXPECT_EQ(0, in_child(as_nobody, &o));
	/* Still there for root. */
	tfd = attach("root's");
	EXPECT_LE(0, tfd);
	close(tfd);
	close(o.tfd);
	EXPECT_EQ(1, remove_key("root's"));
	EXPECT_EQ(0, kf_live_settles(self->base_templates, self->base_clones));
}

/* Removed while a clone lives: the clone goes on (reset included), then all is freed. */
TEST_F(persist, removal_leaves_live_clones_working)
{
	struct kfork_clone_reset r = { .size = sizeof(r) };
	struct kfork_spawn sp;
	int tfd;

	NEED_KMOD();
	tfd = kf_raw_template(self->user, 0);
	ASSERT_LE(0, tfd);
	ASSERT_EQ(0, persist(tfd, "busy"));
	close(tfd);
	tfd = attach("busy");
	ASSERT_LE(0, tfd);
	ASSERT_EQ(0, kf_raw_spawn(tfd, &sp, 0));
	close(tfd);
	EXPECT_EQ(1, remove_key("busy"));
	EXPECT_EQ(-1, attach("busy"));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, ioctl(sp.vcpu_fd, KVM_RUN, 0));
	EXPECT_EQ(0, ioctl(sp.clone_fd, KFORK_CLONE_RESET, &r)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0, ioctl(sp.vcpu_fd, KVM_RUN, 0));
	kf_raw_close(&sp);
	EXPECT_EQ(0, kf_live_settles(self->base_templates, self->base_clones));
}

/*
 * A kept template stays charged to its owner's RLIMIT_MEMLOCK after every fd
 * is closed, and the charge goes with its removal.
 */
static int memlock_kept(void *arg)
{
	struct kf_template *u = arg;
	struct rlimit rl = { u->mem_size + u->mem_size / 2, u->mem_size + u->mem_size / 2 };
	int a, b;

	if (drop_cap_ipc_lock() || setrlimit(RLIMIT_MEMLOCK, &rl))
		return 10;
	a = kf_raw_template(u, 0);
	if (a < 0)
		return 1;
	if (persist(a, "charged"))
		return 2;
	close(a);
	b = kf_raw_template(u, 0);
	if (b >= 0 || errno != ENOMEM)
		return 3;
	if (remove_key("charged") != 1)
		return 4;
	for (int i = 0; i < 100; i++) {		/* the last fput may be deferred */
		b = kf_raw_template(u, 0);
		if (b >= 0 || errno != ENOMEM)
			break;
		usleep(20000);
	}
	if (b < 0)
		return 5;
	close(b);
	return 0;
}

TEST_F(persist, memory_stays_charged_until_removed)
{
	NEED_KMOD();
	EXPECT_EQ(0, in_child(memlock_kept, self->user));
	EXPECT_EQ(0, kf_live_settles(self->base_templates, self->base_clones));
}

/* libkfork: kf_template_persist(), then kf_template_open() attaches and runs code. */
TEST_F(persist, libkfork_open_attaches_to_the_kept_template)
{
	struct kf_exec_req req = { .lang = KF_EXEC_SH, .code = "echo kept", .code_len = 9,
				   .timeout_ms = 60000 };
	struct kf_template *t = NULL, *again = NULL;
	struct kf_exec_result res;
	struct kf_clone *clone;

	NEED_KMOD();
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_KMOD, &t)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_template_is_persistent(t));
	ASSERT_EQ(0, kf_template_persist(t)) TH_LOG("%s", kf_last_error());
	EXPECT_EQ(-EEXIST, kf_template_persist(t));
	kf_template_close(t);
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_KMOD, &again))
		TH_LOG("%s", kf_last_error());
	EXPECT_EQ(1, kf_template_is_persistent(again));
	EXPECT_EQ(-1, again->memfd);	/* the file's pages were not read */
	ASSERT_EQ(0, kf_spawn(again, &clone)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_exec(clone, &req, &res)) TH_LOG("%s", kf_last_error());
	EXPECT_STREQ("kept\n", res.out);
	kf_exec_result_free(&res);
	kf_destroy(clone);
	kf_template_close(again);
	EXPECT_EQ(0, kf_template_unpersist(KF_TPL_PATH));
	EXPECT_EQ(-ENOENT, kf_template_unpersist(KF_TPL_PATH));
	EXPECT_EQ(0, kf_live_settles(self->base_templates, self->base_clones));
}

TEST_HARNESS_MAIN
