// SPDX-License-Identifier: GPL-2.0-only
/* ioctl_fuzz_test.c - /dev/kfork under random ioctls, bad fds and racing threads, seeded; in the lab. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>

#include "kmod_fixture.h"
#include "kselftest_harness.h"

/*
 * Two tests, each with a time budget (KFORK_IOCTL_FUZZ_SECONDS, default 12):
 *   random_ioctls: one thread fires random ioctl numbers (mostly kfork's
 *     type, any nr, direction and size bits) at /dev/kfork, template fds,
 *     clone fds and fds that are none of those (a pipe, /dev/null, a closed
 *     fd, the template's memfd, a VM fd), with argument structs of random
 *     size (0, short, exact, long, > PAGE_SIZE, ~0), flags, pads, fds and
 *     pointers (NULL, unmapped, kernel, straddling a guard page, the real
 *     state blob with bytes flipped). A struct of the exact size with an
 *     unknown flag or a non-zero pad must be refused.
 *   concurrent_calls: four threads share one template fd and eight clone
 *     slots: SET_WSET, SPAWN, SPAWN_BATCH, POOL, INFO, RESET, destroy
 *     (close) a clone, close and recreate the template, all at once.
 * After either: the module's live template and clone counts are back to
 * where they were, a plain spawn still restores the template's registers,
 * and the kernel log gained no BUG, WARNING, general protection or Oops.
 * The seed is printed; KFORK_IOCTL_FUZZ_SEED=N repeats the random choices
 * (the interleaving of the threaded test is the scheduler's).
 */

#define NCLONES		8
#define NTHREADS	4
#define ARG_PAGES	2	/* then one PROT_NONE guard page */

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static int fuzz_seconds(void)
{
	const char *s = getenv("KFORK_IOCTL_FUZZ_SECONDS");
	int n = s ? atoi(s) : 12;

	return n < 1 ? 1 : n > 60 ? 60 : n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A clone spawned through the raw uapi: its three fds and three mappings. */
struct spawned {
	struct kfork_spawn sp;
};

static void spawned_destroy(struct spawned *c)
{
	if (c) {
		kf_raw_close(&c->sp);
		free(c);
	}
}

struct slot {
	_Atomic(struct spawned *) clone;
	atomic_int fd;			/* clone_fd of clone, for ioctls only: may be stale */
};

FIXTURE(fuzz) {
	const char *skip;
	struct kf_template *user;
	uint64_t seed;
	__u64 base_templates, base_clones;
	int kmsg;
	/* fds that are not kfork's own */
	int pipe_fd[2], devnull, closed_fd, vm_fd;
	/* shared by the threads */
	atomic_int tfd;
	struct slot slot[NCLONES];
	uint8_t *state;			/* a mutable copy of the real state blob */
	uint64_t mem_pages;
	atomic_long calls, accepted_bad;
	atomic_long ok_by_nr[0x40];	/* kfork calls that succeeded, by ioctl nr */
	double deadline;
};

/* The kernel log from now on: /dev/kmsg read from its end. */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* Records since kmsg_open() that show a kernel bug; each is printed. *seen: records read. */
static int kmsg_bad_records(int fd, int *seen)
{
	static const char *const bad[] = { "BUG:", "WARNING:", "general protection", "Oops" };
	char rec[8192];
	int found = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on with the next */
		if (n <= 0)
			break;
		rec[n] = 0;
		(*seen)++;
		for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (strstr(rec, bad[i])) {
				fprintf(stderr, "# kernel: %s", rec);
				found++;
				break;
			}
	}
	return found;
}

FIXTURE_SETUP(fuzz)
{
	const char *s = getenv("KFORK_IOCTL_FUZZ_SEED");
	struct kfork_caps caps;
	int kvm;

	memset(self->slot, 0, sizeof(self->slot));
	self->user = NULL;
	self->kmsg = -1;
	atomic_init(&self->tfd, -1);
	self->skip = kf_kmod_missing();
	if (self->skip)
		SKIP(return, "%s", self->skip);
	self->seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) * 2654435761u ^ getpid();
	if (!self->seed)
		self->seed = 1;
	TH_LOG("seed %llu (KFORK_IOCTL_FUZZ_SEED=%llu repeats it)",
	       (unsigned long long)self->seed, (unsigned long long)self->seed);
	ASSERT_EQ(0, kf_tiny_template());
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_USER, &self->user))
		TH_LOG("%s", kf_last_error());
	self->mem_pages = self->user->mem_size / 4096;
	self->state = malloc(self->user->state.len);
	ASSERT_NE(NULL, self->state);
	memcpy(self->state, self->user->state.buf, self->user->state.len);
	ASSERT_EQ(0, kf_raw_caps(&caps));
	self->base_templates = caps.live_templates;
	self->base_clones = caps.live_clones;
	self->kmsg = kmsg_open();
	ASSERT_LE(0, self->kmsg) TH_LOG("/dev/kmsg: %s", strerror(errno));
	/* A record of our own, so the check afterwards proves it reads the log. */
	s = "kfork ioctl_fuzz_test: start\n";
	kvm = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, kvm);
	ASSERT_EQ((ssize_t)strlen(s), write(kvm, s, strlen(s)));
	close(kvm);
	ASSERT_EQ(0, pipe2(self->pipe_fd, O_CLOEXEC));
	self->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	self->closed_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(self->closed_fd);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, kvm);
	self->vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
	close(kvm);
	ASSERT_LE(0, self->vm_fd);
	atomic_init(&self->tfd, kf_raw_template(self->user, 4));
	ASSERT_LE(0, atomic_load(&self->tfd)) TH_LOG("KFORK_TEMPLATE_CREATE: %s", strerror(errno));
	atomic_init(&self->calls, 0);
	atomic_init(&self->accepted_bad, 0);
	for (int i = 0; i < 0x40; i++)
		atomic_init(&self->ok_by_nr[i], 0);
}

FIXTURE_TEARDOWN(fuzz)
{
	if (self->skip)
		return;
	for (int i = 0; i < NCLONES; i++)
		spawned_destroy(atomic_exchange(&self->slot[i].clone, NULL));
	if (atomic_load(&self->tfd) >= 0)
		close(atomic_load(&self->tfd));
	close(self->pipe_fd[0]);
	close(self->pipe_fd[1]);
	close(self->devnull);
	close(self->vm_fd);
	if (self->kmsg >= 0)
		close(self->kmsg);
	free(self->state);
	kf_template_close(self->user);
}

#define NEED_KMOD() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

/* ---- building hostile arguments ------------------------------------------------ */

struct argbuf {
	uint8_t *base;		/* ARG_PAGES pages, then a guard page */
	size_t len;
};

static int argbuf_init(struct argbuf *a)
{
	a->len = ARG_PAGES * 4096;
	a->base = mmap(NULL, a->len + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (a->base == MAP_FAILED)
		return -1;
	return mprotect(a->base + a->len, 4096, PROT_NONE);
}

static void argbuf_free(struct argbuf *a)
{
	munmap(a->base, a->len + 4096);
}

static const uint32_t sizes[] = {
	0, 1, 4, 7, 8, 16, 24, 40, 48, 56, 64, 72, 88, 96, 128, 4095, 4096, 4097, 8192,
	65536, 0x7fffffff, 0xffffffff,
};

static uint32_t pick_size(uint64_t *r, uint32_t exact)
{
	switch (rnd_below(r, 6)) {
	case 0:
	case 1:
		return exact;
	case 2:
		return exact + 8 * (uint32_t)rnd_below(r, 3) - 8;
	case 3:
		return (uint32_t)rnd(r);
	default:
		return sizes[rnd_below(r, sizeof(sizes) / sizeof(sizes[0]))];
	}
}

static int pick_fd(struct _test_data_fuzz *self, uint64_t *r)
{
	switch (rnd_below(r, 9)) {
	case 0: return self->pipe_fd[rnd_below(r, 2)];
	case 1: return self->devnull;
	case 2: return self->closed_fd;
	case 3: return self->user->memfd;	/* the real guest memory */
	case 4: return self->vm_fd;
	case 5: return atomic_load(&self->tfd);
	case 6: return atomic_load(&self->slot[rnd_below(r, NCLONES)].fd);
	case 7: return -1;
	default: return (int)rnd_below(r, 64);
	}
}

static uint64_t pick_ptr(struct _test_data_fuzz *self, struct argbuf *a, uint64_t *r)
{
	switch (rnd_below(r, 8)) {
	case 0: return 0;
	case 1: return (uintptr_t)a->base;
	case 2: return (uintptr_t)(a->base + a->len - 8 * rnd_below(r, 8));	/* runs into the guard */
	case 3: return (uintptr_t)self->state;
	case 4: return 0xffff888000000000ull;	/* the kernel's direct map */
	case 5: return 1;
	case 6: return ~0ull;
	default: return rnd(r);
	}
}

/* Flip a few bytes of the state copy, or put it back. */
static void mutate_state(struct _test_data_fuzz *self, uint64_t *r)
{
	size_t len = self->user->state.len;

	memcpy(self->state, self->user->state.buf, len);
	for (int i = rnd_below(r, 4); i > 0; i--)
		self->state[rnd_below(r, len)] = (uint8_t)rnd(r);
}

static const unsigned int kfork_nrs[] = {
	_IOC_NR(KFORK_GET_VERSION), _IOC_NR(KFORK_TEMPLATE_CREATE), _IOC_NR(KFORK_GET_CAPS),
	_IOC_NR(KFORK_TEMPLATE_INFO), _IOC_NR(KFORK_TEMPLATE_SET_WSET), _IOC_NR(KFORK_SPAWN),
	_IOC_NR(KFORK_SPAWN_BATCH), _IOC_NR(KFORK_TEMPLATE_POOL), _IOC_NR(KFORK_CLONE_RESET),
};

/*
 * Fills *arg for ioctl nr; returns 1 if it is the struct's exact size with
 * an unknown flag or non-zero pad set (the call must then fail).
 */
static int fill_args(struct _test_data_fuzz *self, struct argbuf *a, uint64_t *r,
		     unsigned int nr, uint8_t **argp)
{
	uint8_t *p = a->base;
	int bad = 0, corrupt;
	uint32_t size;

	/* Mostly zeros with real values, sometimes garbage throughout. */
	if (rnd_below(r, 4) == 0)
		for (size_t i = 0; i < a->len; i += 8)
			*(uint64_t *)(a->base + i) = rnd(r);
	else
		memset(a->base, 0, a->len);
	corrupt = rnd_below(r, 4) == 0;
	/* Flags 0 or junk; pads 0 or junk. */
#define SET_FLAGS(s, valid) do {						\
		(s)->flags = corrupt ? (uint32_t)rnd(r) & ~(uint32_t)(valid) : 0;\
		bad |= (s)->flags != 0 && (s)->size == sizeof(*(s));		\
	} while (0)
#define SET_PAD(s, f) do {							\
		if (rnd_below(r, 6) == 0) {					\
			(s)->f = (uint32_t)rnd(r) | 1;				\
			bad |= (s)->size == sizeof(*(s));			\
		}								\
	} while (0)

	switch (nr) {
	case _IOC_NR(KFORK_TEMPLATE_CREATE): {
		struct kfork_template_create *c = (void *)p;

		c->size = pick_size(r, sizeof(*c));
		SET_FLAGS(c, 0);
		if (rnd_below(r, 3)) {	/* real memory and state, perhaps mutated */
			c->mem_fd = self->user->memfd;
			c->mem_size = self->user->mem_size;
			mutate_state(self, r);
			c->state_ptr = (uintptr_t)self->state;
			c->state_len = rnd_below(r, 4) ? self->user->state.len :
				       (uint32_t)rnd_below(r, self->user->state.len + 64);
		} else {
			c->mem_fd = pick_fd(self, r);
			c->mem_size = rnd_below(r, 2) ? rnd(r) : 4096 * rnd_below(r, 1 << 20);
			c->state_ptr = pick_ptr(self, a, r);
			c->state_len = pick_size(r, self->user->state.len);
		}
		c->max_clones = rnd_below(r, 3) ? (uint32_t)rnd_below(r, 4) : (uint32_t)rnd(r);
		SET_PAD(c, pad0);
		break;
	}
	case _IOC_NR(KFORK_GET_CAPS): {
		struct kfork_caps *c = (void *)p;

		c->size = pick_size(r, sizeof(*c));
		SET_FLAGS(c, 0);
		break;
	}
	case _IOC_NR(KFORK_TEMPLATE_INFO): {
		struct kfork_template_info *c = (void *)p;

		c->size = pick_size(r, sizeof(*c));
		SET_FLAGS(c, 0);
		break;
	}
	case _IOC_NR(KFORK_TEMPLATE_SET_WSET): {
		struct kfork_template_wset *c = (void *)p;
		uint64_t *e = (uint64_t *)(p + 4096);
		int junk;

		c->size = pick_size(r, sizeof(*c));
		SET_FLAGS(c, 0);
		junk = rnd_below(r, 2);	/* half the sets are all in range: they get past the checks */
		for (int i = 0; i < 512; i++)	/* gfns in range, past it, with junk bits */
			e[i] = !junk || rnd_below(r, 64) ? rnd_below(r, self->mem_pages) |
				(rnd_below(r, 2) ? KFORK_WSET_WRITE : 0) : rnd(r);
		c->entries_ptr = rnd_below(r, 2) ? (uintptr_t)e : pick_ptr(self, a, r);
		c->nr_entries = rnd_below(r, 2) ? (uint32_t)rnd_below(r, 513) :
				(uint32_t)pick_size(r, 512);
		SET_PAD(c, pad0);
		break;
	}
	case _IOC_NR(KFORK_SPAWN): {
		struct kfork_spawn *c = (void *)p;

		c->size = pick_size(r, sizeof(*c));
		SET_FLAGS(c, KFORK_SPAWN_FLAGS);
		if (!corrupt && rnd_below(r, 2))
			c->flags = KFORK_SPAWN_NO_PREFAULT;
		SET_PAD(c, pad0);
		if (!bad)
			SET_PAD(c, pad1);
		break;
	}
	case _IOC_NR(KFORK_SPAWN_BATCH): {
		struct kfork_spawn_batch *c = (void *)p;
		struct kfork_spawn *e = (void *)(p + 4096);

		c->size = pick_size(r, sizeof(*c));
		SET_FLAGS(c, 0);
		c->nr = rnd_below(r, 3) ? (uint32_t)rnd_below(r, 4) : (uint32_t)rnd(r);
		c->entry_size = rnd_below(r, 3) ? sizeof(*e) : pick_size(r, sizeof(*e));
		for (int i = 0; i < 4; i++) {
			memset(&e[i], 0, sizeof(e[i]));
			e[i].size = rnd_below(r, 4) ? c->entry_size : pick_size(r, sizeof(*e));
			e[i].flags = rnd_below(r, 4) ? 0 : (uint32_t)rnd(r);
		}
		c->clones_ptr = rnd_below(r, 3) ? (uintptr_t)e : pick_ptr(self, a, r);
		break;
	}
	case _IOC_NR(KFORK_TEMPLATE_POOL): {
		struct kfork_template_pool *c = (void *)p;

		c->size = pick_size(r, sizeof(*c));
		SET_FLAGS(c, KFORK_POOL_FLAGS);
		if (!corrupt)
			c->flags = rnd_below(r, 2) ? KFORK_POOL_NO_FILL : 0;
		c->target = rnd_below(r, 3) ? (uint32_t)rnd_below(r, 3) : (uint32_t)rnd(r);
		break;
	}
	case _IOC_NR(KFORK_CLONE_RESET): {
		struct kfork_clone_reset *c = (void *)p;

		c->size = pick_size(r, sizeof(*c));
		SET_FLAGS(c, KFORK_RESET_FLAGS);
		break;
	}
	default:
		break;
	}
#undef SET_FLAGS
#undef SET_PAD
	/* The struct at the page's end sometimes, so a long size runs into the guard. */
	size = *(uint32_t *)p;
	*argp = p;
	if (rnd_below(r, 5) == 0 && size < 4096 && nr != _IOC_NR(KFORK_TEMPLATE_SET_WSET) &&
	    nr != _IOC_NR(KFORK_SPAWN_BATCH)) {
		uint8_t *end = a->base + a->len - 64;

		memmove(end, p, 64);
		*argp = end;
		bad = 0;	/* it may now fault first: EFAULT is as good a refusal */
	}
	return bad;
}

/* ---- what the calls may leave behind ---------------------------------------- */

static int fd_is_known(struct _test_data_fuzz *self, int fd, const int *keep, int nkeep)
{
	if (fd <= 2 || fd == self->pipe_fd[0] || fd == self->pipe_fd[1] || fd == self->devnull ||
	    fd == self->vm_fd || fd == self->kmsg || fd == self->user->memfd ||
	    fd == atomic_load(&self->tfd))
		return 1;
	for (int i = 0; i < nkeep; i++)
		if (keep[i] == fd)
			return 1;
	for (int i = 0; i < NCLONES; i++) {
		struct spawned *c = atomic_load(&self->slot[i].clone);

		if (c && (fd == c->sp.clone_fd || fd == c->sp.vm_fd || fd == c->sp.vcpu_fd))
			return 1;
	}
	return 0;
}

/*
 * A random call that succeeded may have made templates or clones whose fds
 * we never saw (a struct written back short): close every fd that is not
 * one we hold. Single-threaded callers only. Returns how many it closed.
 */
static int sweep_fds(struct _test_data_fuzz *self, const int *keep, int nkeep)
{
	struct dirent *de;
	int closed = 0, dfd;
	DIR *d = opendir("/proc/self/fd");

	if (!d)
		return 0;
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] == '.' || fd == dfd || fd_is_known(self, fd, keep, nkeep))
			continue;
		close(fd);
		closed++;
	}
	closedir(d);
	return closed;
}

/* A clone spawn wrote back: unmap what it mapped (the fds go with sweep_fds). */
static void unmap_spawn_out(const struct kfork_spawn *sp, uint32_t size)
{
	if (size < offsetof(struct kfork_spawn, pad0))
		return;
	if (sp->mem_addr && sp->mem_addr < 0x800000000000ull && sp->mem_size < (4ull << 30))
		munmap((void *)(uintptr_t)sp->mem_addr, sp->mem_size);
	if (sp->run_addr && sp->run_addr < 0x800000000000ull && sp->run_size < (1u << 20))
		munmap((void *)(uintptr_t)sp->run_addr, sp->run_size);
	if (size >= offsetof(struct kfork_spawn, pad1) && sp->scratch_addr &&
	    sp->scratch_addr < 0x800000000000ull && sp->scratch_size < (64u << 20))
		munmap((void *)(uintptr_t)sp->scratch_addr, sp->scratch_size);
}

/* ---- the checks after the storm --------------------------------------------- */

static void check_aftermath(struct __test_metadata *_metadata, struct _test_data_fuzz *self)
{
	struct kfork_spawn sp;
	int tfd, seen = 0;

	for (int i = 0; i < NCLONES; i++) {
		spawned_destroy(atomic_exchange(&self->slot[i].clone, NULL));
		atomic_store(&self->slot[i].fd, -1);
	}
	tfd = atomic_exchange(&self->tfd, -1);
	if (tfd >= 0)
		close(tfd);
	sweep_fds(self, NULL, 0);
	EXPECT_EQ(0, kf_live_settles(self->base_templates, self->base_clones))
		TH_LOG("live templates/clones did not return to %llu/%llu",
		       (unsigned long long)self->base_templates,
		       (unsigned long long)self->base_clones);
	/* A plain spawn still works and restores the template exactly. */
	tfd = kf_raw_template(self->user, 0);
	ASSERT_LE(0, tfd) TH_LOG("KFORK_TEMPLATE_CREATE after fuzzing: %s", strerror(errno));
	ASSERT_EQ(0, kf_raw_spawn(tfd, &sp, 0)) TH_LOG("KFORK_SPAWN after fuzzing: %s",
						       strerror(errno));
	EXPECT_EQ(0, kf_regs_are_template(self->user, &sp));
	kf_raw_close(&sp);
	close(tfd);
	EXPECT_EQ(0, kf_live_settles(self->base_templates, self->base_clones));
	EXPECT_EQ(0, kmsg_bad_records(self->kmsg, &seen)) TH_LOG("the kernel log shows a bug (above)");
	EXPECT_LE(1, seen) TH_LOG("read nothing from /dev/kmsg, not even our own start record");
	EXPECT_EQ(0, atomic_load(&self->accepted_bad))
		TH_LOG("calls with an unknown flag or non-zero pad succeeded");
	TH_LOG("%ld calls; succeeded: create %ld, caps %ld, info %ld, wset %ld, spawn %ld, "
	       "batch %ld, pool %ld, reset %ld", atomic_load(&self->calls),
	       atomic_load(&self->ok_by_nr[_IOC_NR(KFORK_TEMPLATE_CREATE)]),
	       atomic_load(&self->ok_by_nr[_IOC_NR(KFORK_GET_CAPS)]),
	       atomic_load(&self->ok_by_nr[_IOC_NR(KFORK_TEMPLATE_INFO)]),
	       atomic_load(&self->ok_by_nr[_IOC_NR(KFORK_TEMPLATE_SET_WSET)]),
	       atomic_load(&self->ok_by_nr[_IOC_NR(KFORK_SPAWN)]),
	       atomic_load(&self->ok_by_nr[_IOC_NR(KFORK_SPAWN_BATCH)]),
	       atomic_load(&self->ok_by_nr[_IOC_NR(KFORK_TEMPLATE_POOL)]),
	       atomic_load(&self->ok_by_nr[_IOC_NR(KFORK_CLONE_RESET)]));
}

/* Counts a kfork call that succeeded. */
static void count_ok(struct _test_data_fuzz *self, unsigned long cmd, long ret)
{
	if (ret >= 0 && _IOC_TYPE(cmd) == KFORK_IOC)
		atomic_fetch_add(&self->ok_by_nr[_IOC_NR(cmd) & 0x3f], 1);
}

/* ---- single thread: random numbers, random structs, random fds --------------- */

TEST_F_TIMEOUT(fuzz, random_ioctls, 150)
{
	struct argbuf a;
	uint64_t r;
	long n = 0, ok = 0, swept = 0;
	double end;

	NEED_KMOD();
	r = self->seed;
	ASSERT_EQ(0, argbuf_init(&a));
	end = now_s() + fuzz_seconds();
	while (now_s() < end) {
		unsigned int nr, dir;
		unsigned long cmd;
		uint64_t uarg;
		uint8_t *arg;
		int fd, bad, ret, which = rnd_below(&r, 10);

		/* The fd: kfork's own mostly, the others sometimes. */
		if (which < 3)
			fd = atomic_load(&self->tfd);
		else if (which < 5)
			fd = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);
		else if (which < 7)
			fd = atomic_load(&self->slot[rnd_below(&r, NCLONES)].fd);
		else
			fd = pick_fd(self, &r);
		nr = rnd_below(&r, 4) ? kfork_nrs[rnd_below(&r, sizeof(kfork_nrs) / sizeof(kfork_nrs[0]))] :
		     (unsigned int)rnd_below(&r, 0x40);
		bad = fill_args(self, &a, &r, nr, &arg);
		dir = rnd_below(&r, 4);
		if (rnd_below(&r, 8) == 0)	/* any number at all; never another driver's on a non-kfork fd */
			cmd = (which < 7) ? (unsigned long)(uint32_t)rnd(&r) :
			      _IOC(dir, KFORK_IOC, nr, rnd_below(&r, 1 << 14));
		else
			cmd = _IOC(dir, KFORK_IOC, nr, rnd_below(&r, 2) ? 64 : rnd_below(&r, 1 << 14));
		uarg = rnd_below(&r, 16) ? (uintptr_t)arg : pick_ptr(self, &a, &r);
		ret = ioctl(fd, cmd, (unsigned long)uarg);
		count_ok(self, cmd, ret);
		n++;
		if (ret >= 0) {
			ok++;
			/* The struct we built, for the call it was built for. */
			if (bad && uarg == (uintptr_t)arg && _IOC_TYPE(cmd) == KFORK_IOC &&
			    _IOC_NR(cmd) == nr) {
				atomic_fetch_add(&self->accepted_bad, 1);
				TH_LOG("ioctl %#lx (nr %#x) on fd %d took an unknown flag or pad",
				       cmd, nr, fd);
			}
		}
		/* A spawn that worked: keep it in a slot if it was whole, else unmap it. */
		if (ret >= 0 && _IOC_TYPE(cmd) == KFORK_IOC && nr == _IOC_NR(KFORK_SPAWN) &&
		    (fd == atomic_load(&self->tfd))) {
			struct kfork_spawn *sp = (void *)arg;
			uint32_t size = sp->size;

			if (size == sizeof(*sp)) {
				struct spawned *c = malloc(sizeof(*c));
				int i = rnd_below(&r, NCLONES);

				ASSERT_NE(NULL, c);
				c->sp = *sp;
				spawned_destroy(atomic_exchange(&self->slot[i].clone, c));
				atomic_store(&self->slot[i].fd, c->sp.clone_fd);
			} else {
				unmap_spawn_out(sp, size);
			}
		}
		if (ret >= 0 && _IOC_TYPE(cmd) == KFORK_IOC && nr == _IOC_NR(KFORK_SPAWN_BATCH)) {
			struct kfork_spawn_batch *b = (void *)arg;
			struct kfork_spawn *e = (void *)(a.base + 4096);

			if (b->clones_ptr == (uintptr_t)e)
				for (int i = 0; i < 4 && i < (int)b->nr; i++)
					if (!e[i].status && e[i].size == b->entry_size)
						unmap_spawn_out(&e[i], e[i].size);
		}
		if (which >= 3 && which < 5 && fd >= 0)
			close(fd);
		if (n % 64 == 0)
			swept += sweep_fds(self, NULL, 0);
	}
	atomic_store(&self->calls, n);
	TH_LOG("%ld ioctls, %ld succeeded, %ld stray fds closed", n, ok, swept);
	argbuf_free(&a);
	check_aftermath(_metadata, self);
}

/* ---- threads racing on shared fds ------------------------------------------- */

struct racer {
	struct _test_data_fuzz *self;
	uint64_t seed;
	long calls;
};

static void *race(void *arg)
{
	struct racer *rc = arg;
	struct _test_data_fuzz *self = rc->self;
	uint64_t r = rc->seed;
	struct argbuf a;

	if (argbuf_init(&a))
		return NULL;
	while (now_s() < self->deadline) {
		int op = rnd_below(&r, 10), tfd = atomic_load(&self->tfd);
		struct slot *s = &self->slot[rnd_below(&r, NCLONES)];
		uint8_t *p;

		rc->calls++;
		switch (op) {
		case 0:
		case 1: {	/* spawn into a slot; whatever was there goes */
			struct spawned *c = malloc(sizeof(*c));

			if (!c)
				break;
			if (kf_raw_spawn(tfd, &c->sp, rnd_below(&r, 2) ? KFORK_SPAWN_NO_PREFAULT : 0)) {
				free(c);
				break;
			}
			count_ok(self, KFORK_SPAWN, 0);
			atomic_store(&s->fd, c->sp.clone_fd);
			spawned_destroy(atomic_exchange(&s->clone, c));
			break;
		}
		case 2:	/* destroy a clone */
			spawned_destroy(atomic_exchange(&s->clone, NULL));
			break;
		case 3: {	/* close the shared template fd and put a new one there */
			int old = atomic_exchange(&self->tfd, -1), fresh;

			if (old >= 0)
				close(old);
			fresh = kf_raw_template(self->user, 4);
			count_ok(self, KFORK_TEMPLATE_CREATE, fresh);
			if (fresh >= 0) {
				old = atomic_exchange(&self->tfd, fresh);
				if (old >= 0)
					close(old);
			}
			break;
		}
		case 4:	/* the working set, racing the spawns that read it */
			fill_args(self, &a, &r, _IOC_NR(KFORK_TEMPLATE_SET_WSET), &p);
			if (rnd_below(&r, 2)) {	/* mostly well-formed */
				struct kfork_template_wset *w = (void *)p;

				w->size = sizeof(*w);
				w->flags = w->pad0 = 0;
				w->entries_ptr = (uintptr_t)(a.base + 4096);
			}
			count_ok(self, KFORK_TEMPLATE_SET_WSET, ioctl(tfd, KFORK_TEMPLATE_SET_WSET, p));
			break;
		case 5:	/* reset a clone another thread may be destroying */
			fill_args(self, &a, &r, _IOC_NR(KFORK_CLONE_RESET), &p);
			count_ok(self, KFORK_CLONE_RESET, ioctl(atomic_load(&s->fd), KFORK_CLONE_RESET, p));
			break;
		case 6: {	/* a batch, destroyed at once */
			struct kfork_spawn e[2];
			struct kfork_spawn_batch b = {
				.size = sizeof(b), .clones_ptr = (uintptr_t)e, .nr = 2,
				.entry_size = sizeof(e[0]),
			};
			int got;

			memset(e, 0, sizeof(e));
			e[0].size = e[1].size = sizeof(e[0]);
			got = ioctl(tfd, KFORK_SPAWN_BATCH, &b);
			count_ok(self, KFORK_SPAWN_BATCH, got > 0 ? 0 : -1);
			for (int i = 0; got > 0 && i < 2; i++)
				if (!e[i].status && e[i].clone_fd > 0)
					kf_raw_close(&e[i]);
			break;
		}
		case 7:	/* the pool: fill, drain */
			count_ok(self, KFORK_TEMPLATE_POOL,
				 kf_raw_pool(tfd, (unsigned int)rnd_below(&r, 3),
					     rnd_below(&r, 2) ? KFORK_POOL_NO_FILL : 0, NULL));
			break;
		case 8: {
			struct kfork_template_info info;

			count_ok(self, KFORK_TEMPLATE_INFO, kf_raw_info(tfd, &info));
			break;
		}
		default: {	/* any kfork number at any of the shared fds */
			unsigned int nr = kfork_nrs[rnd_below(&r, sizeof(kfork_nrs) /
							     sizeof(kfork_nrs[0]))];
			int fd = rnd_below(&r, 2) ? tfd : atomic_load(&s->fd);

			fill_args(self, &a, &r, nr, &p);
			/* Never a spawn here: its fds would have no owner. */
			if (nr != _IOC_NR(KFORK_SPAWN) && nr != _IOC_NR(KFORK_SPAWN_BATCH) &&
			    nr != _IOC_NR(KFORK_TEMPLATE_CREATE))
				ioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, KFORK_IOC, nr, 64), p);
			break;
		}
		}
	}
	argbuf_free(&a);
	return NULL;
}

TEST_F_TIMEOUT(fuzz, concurrent_calls, 150)
{
	struct racer rc[NTHREADS];
	pthread_t th[NTHREADS];
	long calls = 0;

	NEED_KMOD();
	self->deadline = now_s() + fuzz_seconds();
	for (int i = 0; i < NTHREADS; i++) {
		rc[i] = (struct racer){ .self = self, .seed = self->seed + 0x9e3779b97f4a7c15ull * (i + 1) };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, race, &rc[i]));
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		calls += rc[i].calls;
	}
	atomic_store(&self->calls, calls);
	check_aftermath(_metadata, self);
}

TEST_HARNESS_MAIN
