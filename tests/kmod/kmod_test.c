// SPDX-License-Identifier: GPL-2.0-only
/* kmod_test.c - /dev/kfork: uapi refusals, isolation, reset, batch, caps, leaks, unload; tiny guest, in the lab. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../kmod/uapi/kfork.h"
#include "kfork.h"
#include "kselftest_harness.h"
#include "lib/internal.h"
#include "kmod_fixture.h"

/* The ABI's layout, as the module asserts it (kmod/chardev.c). */
_Static_assert(sizeof(struct kfork_caps) == 88, "caps");
_Static_assert(sizeof(struct kfork_template_create) == 40, "template_create");
_Static_assert(offsetof(struct kfork_template_create, state_ptr) == 24, "state_ptr");
_Static_assert(sizeof(struct kfork_template_info) == 88, "template_info");
_Static_assert(sizeof(struct kfork_template_wset) == 24, "wset");
_Static_assert(sizeof(struct kfork_spawn) == 88, "spawn");
_Static_assert(offsetof(struct kfork_spawn, scratch_addr) == 72, "spawn.scratch_addr");
_Static_assert(offsetof(struct kfork_spawn, mem_addr) == 24, "spawn.mem_addr");
_Static_assert(offsetof(struct kfork_spawn, prefaulted) == 56, "spawn.prefaulted");
_Static_assert(sizeof(struct kfork_spawn_batch) == 24, "batch");
_Static_assert(sizeof(struct kfork_clone_reset) == 24, "reset");

#define PROBE_ADDR	0x200000

static int dev_open(void)
{
	return open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);
}

static int caps_get(struct kfork_caps *caps)
{
	int dev = dev_open(), ret;

	memset(caps, 0, sizeof(*caps));
	caps->size = sizeof(*caps);
	ret = ioctl(dev, KFORK_GET_CAPS, caps);
	close(dev);
	return ret;
}

static int spawn_raw(int tfd, struct kfork_spawn *sp)
{
	memset(sp, 0, sizeof(*sp));
	sp->size = sizeof(*sp);
	return ioctl(tfd, KFORK_SPAWN, sp);
}

static void spawn_close(const struct kfork_spawn *sp)
{
	munmap((void *)(uintptr_t)sp->run_addr, sp->run_size);
	munmap((void *)(uintptr_t)sp->mem_addr, sp->mem_size);
	if (sp->scratch_addr)
		munmap((void *)(uintptr_t)sp->scratch_addr, sp->scratch_size);
	close(sp->vcpu_fd);
	close(sp->vm_fd);
	close(sp->clone_fd);
}

static int info_get(int tfd, struct kfork_template_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return ioctl(tfd, KFORK_TEMPLATE_INFO, info);
}

/* ---- /dev/kfork itself: no template needed ------------------------------ */

#define NEED_KFORK() do { \
	const char *why = kf_kmod_missing(); \
	if (why) \
		SKIP(return, "%s", why); \
} while (0)

TEST(version_and_caps)
{
	struct kfork_caps caps;
	int dev;

	NEED_KFORK();
	dev = dev_open();
	ASSERT_LE(0, dev);
	EXPECT_EQ(KFORK_VERSION, ioctl(dev, KFORK_GET_VERSION, 0));
	close(dev);
	ASSERT_EQ(0, caps_get(&caps));
	EXPECT_EQ(KFORK_VERSION, caps.version);
	EXPECT_TRUE(caps.caps & KFORK_CAP_SPAWN);
	EXPECT_TRUE(caps.caps & KFORK_CAP_SPAWN_BATCH);
	EXPECT_TRUE(caps.caps & KFORK_CAP_RESET);
	EXPECT_LT(0, caps.max_clones);
}

TEST(caps_refuses_bad_size_flags_and_tail)
{
	struct {
		struct kfork_caps caps;
		__u64 tail;
	} big;
	int dev;

	NEED_KFORK();
	dev = dev_open();
	ASSERT_LE(0, dev);
	memset(&big, 0, sizeof(big));
	big.caps.size = 4;
	EXPECT_EQ(-1, ioctl(dev, KFORK_GET_CAPS, &big));
	EXPECT_EQ(EINVAL, errno);
	big.caps.size = sizeof(big.caps);
	big.caps.flags = 1;
	EXPECT_EQ(-1, ioctl(dev, KFORK_GET_CAPS, &big));
	EXPECT_EQ(EINVAL, errno);
	/* A newer caller's larger struct: fine if the extra bytes are zero. */
	big.caps.flags = 0;
	big.caps.size = sizeof(big);
	EXPECT_EQ(0, ioctl(dev, KFORK_GET_CAPS, &big));
	big.tail = 1;
	EXPECT_EQ(-1, ioctl(dev, KFORK_GET_CAPS, &big));
	EXPECT_EQ(E2BIG, errno);	/* asks for something this module lacks */
	EXPECT_EQ(-1, ioctl(dev, KFORK_GET_CAPS, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(dev, KFORK_SPAWN, &big));	/* a template fd's ioctl */
	EXPECT_EQ(ENOTTY, errno);
	close(dev);
}

/* ---- a template: the tiny guest ------------------------------------------ */

FIXTURE(tmpl) {
	struct kf_template *user;	/* user backend: memfd + state for raw registration */
	struct kf_template *kmod;	/* kmod backend, through libkfork */
	int dev;
	int tfd;			/* a raw template fd */
	const char *skip;
};

static int tmpl_create(FIXTURE_DATA(tmpl) *self, struct kfork_template_create *args)
{
	return ioctl(self->dev, KFORK_TEMPLATE_CREATE, args);
}

static void create_args(FIXTURE_DATA(tmpl) *self, struct kfork_template_create *args)
{
	memset(args, 0, sizeof(*args));
	args->size = sizeof(*args);
	args->mem_fd = self->user->memfd;
	args->mem_size = self->user->mem_size;
	args->state_ptr = (uintptr_t)self->user->state.buf;
	args->state_len = self->user->state.len;
}

FIXTURE_SETUP(tmpl)
{
	struct kfork_template_create args;

	self->user = self->kmod = NULL;
	self->dev = self->tfd = -1;
	self->skip = kf_kmod_missing();
	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, kf_tiny_template());
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_USER, &self->user))
		TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_KMOD, &self->kmod))
		TH_LOG("%s", kf_last_error());
	self->dev = dev_open();
	ASSERT_LE(0, self->dev);
	create_args(self, &args);
	self->tfd = tmpl_create(self, &args);
	ASSERT_LE(0, self->tfd) TH_LOG("KFORK_TEMPLATE_CREATE: %s", strerror(errno));
}

FIXTURE_TEARDOWN(tmpl)
{
	if (self->tfd >= 0)
		close(self->tfd);
	if (self->dev >= 0)
		close(self->dev);
	kf_template_close(self->kmod);
	kf_template_close(self->user);
}

/* The 6.1 harness runs the body even after SKIP() in the setup. */
#define NEED_TMPL() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

#define EXPECT_CREATE_FAILS(err_, ...) do { \
	struct kfork_template_create a_; \
	create_args(self, &a_); \
	__VA_ARGS__; \
	EXPECT_EQ(-1, tmpl_create(self, &a_)); \
	EXPECT_EQ(err_, errno); \
} while (0)

TEST_F(tmpl, create_refuses_bad_arguments)
{
	int pipefd[2];
	uint8_t *junk;

	NEED_TMPL();
	EXPECT_CREATE_FAILS(EINVAL, a_.size = 8);
	EXPECT_CREATE_FAILS(EINVAL, a_.flags = 1);
	EXPECT_CREATE_FAILS(EINVAL, a_.pad0 = 1);
	EXPECT_CREATE_FAILS(EINVAL, a_.mem_size = 0);
	EXPECT_CREATE_FAILS(EINVAL, a_.mem_size = 4097);
	EXPECT_CREATE_FAILS(EINVAL, a_.mem_size = 64ULL << 30);
	EXPECT_CREATE_FAILS(EINVAL, a_.max_clones = 1u << 30);
	EXPECT_CREATE_FAILS(E2BIG, a_.state_len = 64u << 20);
	EXPECT_CREATE_FAILS(EINVAL, a_.state_len = 12);
	EXPECT_CREATE_FAILS(EFAULT, a_.state_ptr = 8);
	EXPECT_CREATE_FAILS(EBADF, a_.mem_fd = -1);
	ASSERT_EQ(0, pipe(pipefd));
	EXPECT_CREATE_FAILS(EBADF, a_.mem_fd = pipefd[0]);
	close(pipefd[0]);
	close(pipefd[1]);
	/* A state the module cannot parse: a truncated item, an unknown tag. */
	EXPECT_CREATE_FAILS(EINVAL, a_.state_len = 16);
	junk = calloc(1, self->user->state.len);
	ASSERT_NE(NULL, junk);
	memcpy(junk, self->user->state.buf, self->user->state.len);
	((struct kfork_state_item *)junk)->tag = 99;
	EXPECT_CREATE_FAILS(EINVAL, a_.state_ptr = (uintptr_t)junk);
	((struct kfork_state_item *)junk)->tag = KFORK_STATE_CPUID;
	((struct kfork_state_item *)junk)->len = 1u << 30;
	EXPECT_CREATE_FAILS(EINVAL, a_.state_ptr = (uintptr_t)junk);
	free(junk);
}

TEST_F(tmpl, template_fd_refuses_bad_arguments)
{
	struct kfork_spawn sp = { .size = sizeof(sp) };
	struct kfork_template_info info = { .size = sizeof(info), .flags = 2 };
	struct kfork_spawn_batch batch = { .size = sizeof(batch), .nr = 0,
					   .entry_size = sizeof(sp) };
	struct kfork_template_wset ws = { .size = sizeof(ws), .nr_entries = 1 };
	__u64 entry = 1ULL << 40;	/* past the end of guest memory */

	NEED_TMPL();
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_TEMPLATE_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	sp.flags = 1u << 31;
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_SPAWN, &sp));
	EXPECT_EQ(EINVAL, errno);
	sp.flags = 0;
	sp.pad0 = 1;
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_SPAWN, &sp));
	EXPECT_EQ(EINVAL, errno);
	sp.pad0 = 0;
	sp.pad1 = 1;
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_SPAWN, &sp));
	EXPECT_EQ(EINVAL, errno);
	sp.pad1 = 0;
	sp.size = 4;
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_SPAWN, &sp));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_SPAWN_BATCH, &batch));
	EXPECT_EQ(EINVAL, errno);
	ws.entries_ptr = (uintptr_t)&entry;
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_TEMPLATE_SET_WSET, &ws));
	EXPECT_EQ(EINVAL, errno);
	entry = 0;
	ws.pad0 = 1;
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_TEMPLATE_SET_WSET, &ws));
	EXPECT_EQ(EINVAL, errno);
	/* Wrong fd types: each object answers only its own ioctls. */
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_CLONE_RESET, &sp));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_TEMPLATE_CREATE, &sp));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(tmpl, spawn_gives_a_clone_and_info_counts_it)
{
	struct kfork_template_info info;
	struct kfork_spawn sp;
	struct kfork_clone_reset rs = { .size = sizeof(rs), .flags = 1u << 30 };

	__u64 wset[16];
	struct kfork_template_wset ws = { .size = sizeof(ws), .nr_entries = 16,
					  .entries_ptr = (uintptr_t)wset };

	NEED_TMPL();
	/* With a working set, so that the prefault (and its MMU load) runs. */
	for (int i = 0; i < 16; i++)
		wset[i] = i | (i % 2 ? KFORK_WSET_WRITE : 0);
	ASSERT_EQ(0, ioctl(self->tfd, KFORK_TEMPLATE_SET_WSET, &ws)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, spawn_raw(self->tfd, &sp)) TH_LOG("KFORK_SPAWN: %s", strerror(errno));
	TH_LOG("%llu working-set pages prefaulted", (unsigned long long)sp.prefaulted);
	EXPECT_LE(0, sp.vm_fd);
	EXPECT_LE(0, sp.vcpu_fd);
	EXPECT_LE(0, sp.clone_fd);
	EXPECT_EQ(self->user->mem_size, sp.mem_size);
	EXPECT_EQ(0, kf_regs_are_template(self->user, &sp)) TH_LOG("the clone ran guest code at spawn");
	ASSERT_EQ(0, info_get(self->tfd, &info));
	EXPECT_EQ(1, info.live_clones);
	EXPECT_EQ(1, info.spawns);
	EXPECT_LT(0, info.pages_shared);
	EXPECT_EQ(self->user->mem_size, info.mem_size);
	/* A clone fd answers reset only, with known flags only. */
	EXPECT_EQ(-1, ioctl(sp.clone_fd, KFORK_CLONE_RESET, &rs));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(sp.clone_fd, KFORK_SPAWN, &sp));
	EXPECT_EQ(ENOTTY, errno);
	spawn_close(&sp);
	ASSERT_EQ(0, info_get(self->tfd, &info));
	EXPECT_EQ(0, info.live_clones);
}

/* Guest memory as a fresh clone sees it equals the template file's pages. */
TEST_F(tmpl, clone_memory_is_the_template)
{
	struct kfork_spawn sp;
	uint8_t *want;

	NEED_TMPL();
	want = mmap(NULL, self->user->mem_size, PROT_READ, MAP_PRIVATE, self->user->memfd, 0);
	ASSERT_NE(MAP_FAILED, want);
	ASSERT_EQ(0, spawn_raw(self->tfd, &sp));
	EXPECT_EQ(0, memcmp(want, (void *)(uintptr_t)sp.mem_addr, sp.mem_size));
	spawn_close(&sp);
	munmap(want, self->user->mem_size);
}

/* Nobody can change a registered template: not its source, not through a clone, not root. */
TEST_F(tmpl, template_pages_immutable)
{
	struct kfork_template_create args;
	struct kfork_spawn a, b;
	uint32_t word = 0xdeadbeef;
	char link[128];
	uint8_t *src;
	uint64_t size;
	int memfd, tfd, fd;

	NEED_TMPL();
	size = self->user->mem_size;
	/* An unsealed copy of the template memory, changed after registration. */
	memfd = memfd_create("kmod-test", MFD_CLOEXEC);
	ASSERT_LE(0, memfd);
	ASSERT_EQ(0, ftruncate(memfd, size));
	src = mmap(NULL, size, PROT_READ, MAP_PRIVATE, self->user->memfd, 0);
	ASSERT_NE(MAP_FAILED, src);
	ASSERT_EQ((ssize_t)size, pwrite(memfd, src, size, 0));
	munmap(src, size);
	create_args(self, &args);
	args.mem_fd = memfd;
	tfd = tmpl_create(self, &args);
	ASSERT_LE(0, tfd);
	ASSERT_EQ(sizeof(word), pwrite(memfd, &word, sizeof(word), PROBE_ADDR));
	ASSERT_EQ(0, spawn_raw(tfd, &a));
	EXPECT_EQ(0, *(uint32_t *)(uintptr_t)(a.mem_addr + PROBE_ADDR));
	*(volatile uint32_t *)(uintptr_t)(a.mem_addr + PROBE_ADDR) = word;	/* CoW */
	/* Even root re-opening the module's file through the mapping cannot write it. */
	snprintf(link, sizeof(link), "/proc/self/map_files/%llx-%llx",
		 (unsigned long long)a.mem_addr, (unsigned long long)(a.mem_addr + a.mem_size));
	fd = open(link, O_RDWR);
	if (fd >= 0) {
		EXPECT_EQ(-1, pwrite(fd, &word, sizeof(word), PROBE_ADDR));
		EXPECT_EQ(EPERM, errno);
		EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
		EXPECT_EQ(-1, ftruncate(fd, 0));
		close(fd);
	} else {
		TH_LOG("open %s: %s (not checked)", link, strerror(errno));
	}
	ASSERT_EQ(0, spawn_raw(tfd, &b));
	EXPECT_EQ(0, *(uint32_t *)(uintptr_t)(b.mem_addr + PROBE_ADDR));
	spawn_close(&a);
	spawn_close(&b);
	close(tfd);
	close(memfd);
}

static char *run_out(struct kf_clone *clone, const char *code)
{
	struct kf_exec_req req = {
		.lang = KF_EXEC_SH, .code = code, .code_len = strlen(code), .timeout_ms = 60000,
	};
	struct kf_exec_result res;
	char *out = NULL;

	if (kf_exec(clone, &req, &res) == 0 && res.exit_code == 0)
		out = strdup(res.out ? res.out : "");
	else
		fprintf(stderr, "# exec '%s': %s\n", code, kf_last_error());
	kf_exec_result_free(&res);
	return out;
}

TEST_F(tmpl, clones_isolated_from_each_other)
{
	struct kf_clone *a, *b;
	char *out;

	NEED_TMPL();
	ASSERT_EQ(KF_BACKEND_KMOD, kf_template_backend(self->kmod));
	ASSERT_EQ(0, kf_spawn(self->kmod, &a)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_spawn(self->kmod, &b)) TH_LOG("%s", kf_last_error());
	free(run_out(a, "poke 200000 deadbeef"));
	out = run_out(a, "peek 200000");
	ASSERT_NE(NULL, out);
	EXPECT_STREQ("efbeadde\n", out);
	free(out);
	out = run_out(b, "peek 200000");
	ASSERT_NE(NULL, out);
	EXPECT_STREQ("00000000\n", out);
	free(out);
	kf_destroy(a);
	kf_destroy(b);
}

/* Every page the guest dirtied is the template's again after reset: all of memory compared. */
TEST_F(tmpl, reset_restores_every_dirtied_page)
{
	struct kf_clone *clone;
	uint8_t *want, *got;
	uint64_t size;
	char *out;

	NEED_TMPL();
	size = self->user->mem_size;
	want = mmap(NULL, size, PROT_READ, MAP_PRIVATE, self->user->memfd, 0);
	got = malloc(size);
	ASSERT_NE(MAP_FAILED, want);
	ASSERT_NE(NULL, got);
	ASSERT_EQ(0, kf_spawn(self->kmod, &clone));
	for (int round = 0; round < 3; round++) {
		free(run_out(clone, "poke 200000 12345678"));
		free(run_out(clone, "dirty 256"));
		out = run_out(clone, "peek 200000");
		ASSERT_NE(NULL, out);
		EXPECT_STREQ("78563412\n", out);
		free(out);
		ASSERT_EQ(0, kf_reset(clone)) TH_LOG("%s", kf_last_error());
		ASSERT_EQ(0, kf_clone_read_mem(clone, 0, got, size));
		EXPECT_EQ(0, memcmp(want, got, size)) TH_LOG("round %d", round);
		out = run_out(clone, "peek 200000");
		ASSERT_NE(NULL, out);
		EXPECT_STREQ("00000000\n", out);
		free(out);
		ASSERT_EQ(0, kf_reset(clone));
	}
	kf_destroy(clone);
	free(got);
	munmap(want, size);
}

/* Lines of /proc/self/maps: the mappings this process has. */
static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0, c;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Two resets of a raw clone, then its close: 0, or the errno of the reset that failed. */
static int reset_twice_and_close(struct kfork_spawn *sp)
{
	struct kfork_clone_reset rs = { .size = sizeof(rs) };
	int err = 0;

	for (int i = 0; i < 2 && !err; i++)
		if (ioctl(sp->clone_fd, KFORK_CLONE_RESET, &rs))
			err = errno;
	spawn_close(sp);
	return err;
}

/* The scratch buffer is reported and mapped; the caller's munmap of it is the only one needed. */
TEST_F(tmpl, spawn_reports_the_scratch_buffer)
{
	struct kfork_spawn sp;
	int maps0 = count_maps();

	NEED_TMPL();
	ASSERT_EQ(0, spawn_raw(self->tfd, &sp));
	ASSERT_NE(0, sp.scratch_addr);
	ASSERT_LT(0, sp.scratch_size);
	EXPECT_EQ(0, sp.scratch_size % getpagesize());
	/* Mapped, writable, the caller's: */
	*(volatile uint8_t *)(uintptr_t)sp.scratch_addr = 1;
	EXPECT_EQ(0, reset_twice_and_close(&sp));
	EXPECT_EQ(maps0, count_maps());
}

/* A caller built before scratch_addr existed gets no buffer to leak, and its resets still work. */
TEST_F(tmpl, spawn_struct_without_scratch_fields_leaks_no_mapping)
{
	struct kfork_spawn sp;
	int maps0 = count_maps();

	NEED_TMPL();
	memset(&sp, 0, sizeof(sp));
	sp.size = offsetof(struct kfork_spawn, scratch_addr);
	ASSERT_EQ(0, ioctl(self->tfd, KFORK_SPAWN, &sp)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0, sp.scratch_addr);	/* not written back: past the caller's size */
	EXPECT_EQ(0, reset_twice_and_close(&sp));
	EXPECT_EQ(maps0, count_maps());
}

/* A caller that unmaps its clone's scratch buffer gets EFAULT; the template and other clones go on. */
TEST_F(tmpl, reset_without_the_scratch_buffer_fails_that_clone_only)
{
	struct kfork_clone_reset rs = { .size = sizeof(rs) };
	struct kf_clone *other;
	struct kfork_spawn sp;
	char *out;

	NEED_TMPL();
	ASSERT_EQ(0, kf_spawn(self->kmod, &other));
	ASSERT_EQ(0, spawn_raw(self->tfd, &sp));
	ASSERT_EQ(0, munmap((void *)(uintptr_t)sp.scratch_addr, sp.scratch_size));
	EXPECT_EQ(-1, ioctl(sp.clone_fd, KFORK_CLONE_RESET, &rs));
	EXPECT_EQ(EFAULT, errno);
	sp.scratch_addr = 0;
	spawn_close(&sp);
	free(run_out(other, "poke 200000 12345678"));
	ASSERT_EQ(0, kf_reset(other)) TH_LOG("%s", kf_last_error());
	out = run_out(other, "peek 200000");
	ASSERT_NE(NULL, out);
	EXPECT_STREQ("00000000\n", out);
	free(out);
	kf_destroy(other);
}

TEST_F(tmpl, reset_only_from_the_spawning_process)
{
	struct kfork_clone_reset rs = { .size = sizeof(rs) };
	struct kfork_spawn sp;
	int status;
	pid_t pid;

	NEED_TMPL();
	ASSERT_EQ(0, spawn_raw(self->tfd, &sp));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(ioctl(sp.clone_fd, KFORK_CLONE_RESET, &rs) == -1 && errno == EPERM ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, ioctl(sp.clone_fd, KFORK_CLONE_RESET, &rs)) TH_LOG("%s", strerror(errno));
	spawn_close(&sp);
}

/*
 * Entry 37 sits alone on a read-only page: the module builds its clone, then
 * cannot hand it over and must undo it, while the other 99 go through.
 */
TEST_F(tmpl, batch_of_100_with_one_injected_failure)
{
	struct kfork_spawn_batch batch = { .size = sizeof(batch), .nr = 100, .entry_size = 4096 };
	struct kfork_template_info before, info;
	struct kfork_caps caps0;
	uint8_t *area;
	int ret;

	NEED_TMPL();
	ASSERT_EQ(0, caps_get(&caps0));
	ASSERT_EQ(0, info_get(self->tfd, &before));
	area = mmap(NULL, 100 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	for (int i = 0; i < 100; i++) {
		struct kfork_spawn *e = (void *)(area + i * 4096);

		e->size = 4096;
		e->status = 1;
	}
	ASSERT_EQ(0, mprotect(area + 37 * 4096, 4096, PROT_READ));
	batch.clones_ptr = (uintptr_t)area;
	ret = ioctl(self->tfd, KFORK_SPAWN_BATCH, &batch);
	EXPECT_EQ(99, ret) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(1, ((struct kfork_spawn *)(area + 37 * 4096))->status);	/* never written */
	ASSERT_EQ(0, info_get(self->tfd, &info));
	EXPECT_EQ(99, info.live_clones);
	EXPECT_EQ(before.spawns + 99, info.spawns);
	EXPECT_EQ(before.spawn_failures + 1, info.spawn_failures);
	for (int i = 0; i < 100; i++) {
		struct kfork_spawn *e = (void *)(area + i * 4096);

		if (i == 37)
			continue;
		EXPECT_EQ(0, e->status) TH_LOG("clone %d", i);
		if (!e->status)
			spawn_close(e);
	}
	ASSERT_EQ(0, info_get(self->tfd, &info));
	EXPECT_EQ(0, info.live_clones);
	munmap(area, 100 * 4096);
	EXPECT_EQ(0, kf_live_settles(caps0.live_templates, caps0.live_clones));
}

TEST_F(tmpl, cap_on_live_clones)
{
	struct kfork_template_create args;
	struct kfork_spawn a, b, c;
	int tfd;

	NEED_TMPL();
	create_args(self, &args);
	args.max_clones = 2;
	tfd = tmpl_create(self, &args);
	ASSERT_LE(0, tfd);
	ASSERT_EQ(0, spawn_raw(tfd, &a));
	ASSERT_EQ(0, spawn_raw(tfd, &b));
	EXPECT_EQ(-1, spawn_raw(tfd, &c));
	EXPECT_EQ(ENOSPC, errno);
	spawn_close(&a);
	EXPECT_EQ(0, spawn_raw(tfd, &c));
	spawn_close(&b);
	spawn_close(&c);
	close(tfd);
}

static long meminfo_kb(const char *key)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			kb = strtol(line + strlen(key), NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/*
 * Free memory, kB: MemAvailable plus the pages waiting on the per-CPU free
 * lists (/proc/zoneinfo's pageset "count:"), which MemAvailable leaves out.
 * 6.12 lets those lists grow to tens of MiB (the lab's: 15896 + 8031 pages
 * high), so without them a freed template can look leaked.
 */
static long free_kb(void)
{
	char line[256];
	long pages = 0, n;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %ld", &n) == 1)
			pages += n;
	fclose(f);
	return meminfo_kb("MemAvailable:") + pages * (getpagesize() / 1024);
}

static int count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Kernel memory one live clone costs (Slab + VmallocUsed: struct kvm is vmalloc'd), kB. */
static long clone_cost_kb(int tfd)
{
	struct kfork_spawn sp[10];
	long kb0 = kf_kernel_kb_drained(), kb1;

	for (int i = 0; i < 10; i++)
		if (spawn_raw(tfd, &sp[i]))
			return -1;
	kb1 = kf_kernel_kb();
	for (int i = 0; i < 10; i++)
		spawn_close(&sp[i]);
	return (kb1 - kb0) / 10;
}

/*
 * Spawn, run, reset and close 50 clones (and a template): objects, fds and
 * kernel memory come back. Two leaked VMs would show: the bound is two
 * clones' worth of Slab + VmallocUsed, measured in the same run.
 */
/* 50 templates and clones under KASAN in the lab take longer than the harness's 30 s. */
TEST_F_TIMEOUT(tmpl, no_leaks_after_50_clones, 180)
{
	struct kfork_caps before, after;
	long kb0, kb1, avail0, avail1, cost;
	int fds0, tfd;

	NEED_TMPL();
	for (int warm = 0; warm < 5; warm++) {
		struct kfork_spawn sp;

		ASSERT_EQ(0, spawn_raw(self->tfd, &sp));
		spawn_close(&sp);
	}
	cost = clone_cost_kb(self->tfd);
	ASSERT_LT(16, cost) TH_LOG("a live clone costs %ld kB of Slab + VmallocUsed?", cost);
	ASSERT_EQ(0, caps_get(&before));
	fds0 = count_fds();
	kb0 = kf_kernel_kb_drained();
	avail0 = free_kb();
	for (int i = 0; i < 50; i++) {
		struct kfork_clone_reset rs = { .size = sizeof(rs) };
		struct kfork_template_create args;
		struct kfork_spawn sp;

		create_args(self, &args);
		tfd = tmpl_create(self, &args);
		ASSERT_LE(0, tfd);
		ASSERT_EQ(0, spawn_raw(tfd, &sp));
		*(volatile uint32_t *)(uintptr_t)(sp.mem_addr + PROBE_ADDR) = i;
		ASSERT_EQ(0, ioctl(sp.clone_fd, KFORK_CLONE_RESET, &rs));
		close(tfd);	/* the clone keeps the template alive */
		spawn_close(&sp);
	}
	ASSERT_EQ(0, caps_get(&after));
	EXPECT_EQ(before.live_templates, after.live_templates);
	EXPECT_EQ(before.live_clones, after.live_clones);
	EXPECT_EQ(fds0, count_fds());
	kb1 = kf_kernel_kb_settle(kb0 + cost);
	avail1 = free_kb();
	TH_LOG("Slab+VmallocUsed %ld -> %ld kB (one clone: %ld kB), MemAvailable + per-CPU free %ld -> %ld kB",
	       kb0, kb1, cost, avail0, avail1);
	EXPECT_GT(2 * cost, kb1 - kb0);
	EXPECT_GT(16384, avail0 - avail1);
}

TEST_HARNESS_MAIN
