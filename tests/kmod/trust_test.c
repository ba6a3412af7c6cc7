// SPDX-License-Identifier: GPL-2.0-only
/* trust_test.c - /dev/kfork against hostile callers: each finding of the kmod review, one test each; in the lab. */
#include <grp.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kmod_fixture.h"
#include "kselftest_harness.h"

#define NOBODY		65534

FIXTURE(trust) {
	struct kf_template *user;
	int tfd;
	__u64 id;
	const char *skip;
};

FIXTURE_SETUP(trust)
{
	struct kfork_template_info info;

	self->user = NULL;
	self->tfd = -1;
	self->skip = kf_kmod_missing();
	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, kf_tiny_template());
	ASSERT_EQ(0, kf_template_open(KF_TPL_PATH, KF_BACKEND_USER, &self->user))
		TH_LOG("%s", kf_last_error());
	self->tfd = kf_raw_template(self->user, 0);
	ASSERT_LE(0, self->tfd) TH_LOG("KFORK_TEMPLATE_CREATE: %s", strerror(errno));
	ASSERT_EQ(0, kf_raw_info(self->tfd, &info));
	self->id = info.tmpl_id;
}

FIXTURE_TEARDOWN(trust)
{
	if (self->tfd >= 0)
		close(self->tfd);
	kf_template_close(self->user);
}

/* The 6.1 harness runs the body even after SKIP() in the setup. */
#define NEED_TRUST() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

static int become_nobody(void)
{
	return setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY) ? -1 : 0;
}

/* ---- the set-once working set ------------------------------------------- */

struct wset_race {
	int tfd, uffd;
	__u64 *many, one;
	__u32 nr;
	int ret_long, err_long, ret_short, err_short;
};

static int set_wset(int tfd, __u64 *entries, __u32 nr)
{
	struct kfork_template_wset ws = { .size = sizeof(ws), .nr_entries = nr,
					  .entries_ptr = (uintptr_t)entries };

	return ioctl(tfd, KFORK_TEMPLATE_SET_WSET, &ws);
}

static void *wset_long_call(void *p)
{
	struct wset_race *r = p;

	r->ret_long = set_wset(r->tfd, r->many, r->nr);
	r->err_long = errno;
	return NULL;
}

/*
 * Two SET_WSET calls on one template fd: the long one's copy_from_user()
 * stops on a page userfaultfd holds back, the short one runs to the end in
 * that window, then the long one goes on. One wins, whole: the old code let
 * the loser's length stand beside the winner's entries, and every spawn
 * then read past their end.
 */
TEST_F(trust, set_wset_race_publishes_one_whole_set)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct wset_race r = { .tfd = self->tfd, .one = 1, .nr = 4096 };
	struct kfork_template_info info;
	struct uffd_msg msg;
	struct uffdio_copy cp;
	size_t len = r.nr * sizeof(__u64);
	void *src;
	pthread_t t;

	NEED_TRUST();
	r.uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	ASSERT_LE(0, r.uffd) TH_LOG("userfaultfd: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(r.uffd, UFFDIO_API, &api));
	r.many = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r.many);
	src = calloc(1, 4096);
	ASSERT_NE(NULL, src);
	/* All of it but the last page is there; that one waits for us. */
	memset(r.many, 0, len - 4096);
	reg.range.start = (uintptr_t)r.many + len - 4096;
	reg.range.len = 4096;
	ASSERT_EQ(0, ioctl(r.uffd, UFFDIO_REGISTER, &reg));
	ASSERT_EQ(0, pthread_create(&t, NULL, wset_long_call, &r));
	ASSERT_EQ(sizeof(msg), read(r.uffd, &msg, sizeof(msg)));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	r.ret_short = set_wset(self->tfd, &r.one, 1);
	r.err_short = errno;
	cp = (struct uffdio_copy){ .dst = reg.range.start, .src = (uintptr_t)src, .len = 4096 };
	ASSERT_EQ(0, ioctl(r.uffd, UFFDIO_COPY, &cp));
	pthread_join(t, NULL);
	EXPECT_EQ(0, r.ret_short) TH_LOG("short SET_WSET: %s", strerror(r.err_short));
	EXPECT_EQ(-1, r.ret_long);
	EXPECT_EQ(EEXIST, r.err_long);
	ASSERT_EQ(0, kf_raw_info(self->tfd, &info));
	EXPECT_EQ(1, info.wset_pages) TH_LOG("the set holds 1 entry, the template says %llu",
					     (unsigned long long)info.wset_pages);
	close(r.uffd);
	munmap(r.many, len);
	free(src);
}

/* ---- who the module trusts ------------------------------------------------ */

static int create_with_fake_kvm(void *arg)
{
	const char *what = arg;
	struct kf_template *user;
	int tfd;

	if (unshare(CLONE_NEWNS) || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 10;
	if (mount(what, "/dev/kvm", NULL, MS_BIND, NULL))
		return 11;
	if (kf_template_open(KF_TPL_PATH, KF_BACKEND_USER, &user))
		return 12;
	tfd = kf_raw_template(user, 0);
	if (tfd >= 0)
		return 1;	/* registered against a file that is not KVM */
	return errno == ENODEV ? 0 : 2;
}

/* A file bind-mounted over /dev/kvm (any user with a user namespace can) is never called. */
TEST_F(trust, create_refuses_what_is_not_dev_kvm)
{
	int fd;

	NEED_TRUST();
	fd = open("/tmp/kfork-fake-kvm", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(0, in_child(create_with_fake_kvm, "/tmp/kfork-fake-kvm"));
	EXPECT_EQ(0, in_child(create_with_fake_kvm, "/dev/null"));	/* a device, not KVM's */
	unlink("/tmp/kfork-fake-kvm");
}

static int open_dev_as_nobody(void *arg)
{
	(void)arg;
	if (become_nobody())
		return 10;
	if (open(KFORK_DEVICE, O_RDWR | O_CLOEXEC) >= 0)
		return 1;
	return errno == EACCES ? 0 : 2;
}

/* The device is root's and its group's (the udev rule names the group), not everyone's. */
TEST_F(trust, device_is_not_open_to_every_user)
{
	struct stat st;

	NEED_TRUST();
	ASSERT_EQ(0, stat(KFORK_DEVICE, &st));
	EXPECT_EQ(0660, st.st_mode & 0777);
	EXPECT_EQ(0, in_child(open_dev_as_nobody, NULL));
}

static int events_as_nobody(void *arg)
{
	int null = open("/dev/null", O_WRONLY);

	(void)arg;
	if (become_nobody() || null < 0)
		return 10;
	dup2(null, 2);
	alarm(10);	/* a listener that got in would wait here for an event */
	execl("build/kfork", "kfork", "events", "--count", "1", (char *)NULL);
	return 11;
}

/* The events group carries every tenant's timings: joining it takes CAP_NET_ADMIN. */
TEST_F(trust, events_group_refuses_unprivileged_listeners)
{
	int status;

	NEED_TRUST();
	status = in_child(events_as_nobody, NULL);
	EXPECT_NE(0, status);
	EXPECT_NE(128 + SIGALRM, status) TH_LOG("an unprivileged listener joined the events group");
	EXPECT_GT(128, status) TH_LOG("kfork events died: %d", status);
}

static int stats_as_nobody(void *arg)
{
	const __u64 *id = arg;
	char buf[65536], key[64];
	size_t n;
	FILE *f;

	if (become_nobody())
		return 10;
	f = popen("build/kfork stats --json 2>/dev/null", "r");
	if (!f)
		return 11;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	pclose(f);
	snprintf(key, sizeof(key), "\"template\":%llu,", (unsigned long long)*id);
	return strstr(buf, key) ? 1 : 0;
}

/* Another user's templates do not show in the stats dump. */
TEST_F(trust, stats_show_a_user_only_its_own_templates)
{
	NEED_TRUST();
	EXPECT_EQ(0, in_child(stats_as_nobody, &self->id));
}

/* ---- uapi ------------------------------------------------------------------ */

TEST_F(trust, uapi_dispatch_ignores_the_encoded_size_and_bounds_the_struct)
{
	struct {
		struct kfork_caps caps;
		__u8 tail[200];
	} big;
	struct kfork_spawn sp;
	struct kfork_spawn_batch batch = { .size = sizeof(batch), .nr = 1, .entry_size = 16,
					   .clones_ptr = (uintptr_t)&sp };
	int dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);

	NEED_TRUST();
	ASSERT_LE(0, dev);
	/* A newer caller's larger struct changes _IOWR()'s size bits, not the call. */
	memset(&big, 0, sizeof(big));
	big.caps.size = sizeof(big);
	EXPECT_EQ(0, ioctl(dev, _IOWR(KFORK_IOC, 0x02, big), &big)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(KFORK_VERSION, big.caps.version);
	/* ... and a non-zero byte in its tail is something this module lacks. */
	big.tail[100] = 1;
	EXPECT_EQ(-1, ioctl(dev, KFORK_GET_CAPS, &big));
	EXPECT_EQ(E2BIG, errno);
	/* A size no struct has is refused before anything scans it. */
	big.caps.size = 1u << 30;
	EXPECT_EQ(-1, ioctl(dev, KFORK_GET_CAPS, &big));
	EXPECT_EQ(EINVAL, errno);
	close(dev);
	/* A spawn struct without room for the fds and mappings would leak them. */
	memset(&sp, 0, sizeof(sp));
	sp.size = 8;
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_SPAWN, &sp));
	EXPECT_EQ(EINVAL, errno);
	sp.size = 16;
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_SPAWN_BATCH, &batch));
	EXPECT_EQ(EINVAL, errno);
}

/* A spawn whose result cannot reach the caller is undone, counted and announced as failed. */
TEST_F(trust, spawn_undone_is_reported_as_failed)
{
	struct kfork_template_info before, after;
	struct kfork_caps caps0;
	struct kfork_spawn *sp, ok;
	char line[512], want[3][128];
	FILE *f;

	NEED_TRUST();
	ASSERT_EQ(0, kf_raw_caps(&caps0));
	ASSERT_EQ(0, kf_raw_info(self->tfd, &before));
	f = popen("build/kfork events --json --count 3 2>&1", "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(line, sizeof(line), f));
	ASSERT_NE(NULL, strstr(line, "listening")) TH_LOG("%s", line);
	sp = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sp);
	sp->size = sizeof(*sp);
	ASSERT_EQ(0, mprotect(sp, 4096, PROT_READ));
	EXPECT_EQ(-1, ioctl(self->tfd, KFORK_SPAWN, sp));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, kf_raw_spawn(self->tfd, &ok, 0));
	/* The undone clone had the id before ok's: its failure, its destroy, then ok. */
	snprintf(want[0], sizeof(want[0]), "{\"event\":\"spawn\",\"template\":%llu,\"clone\":%llu,\"errno\":%d,",
		 (unsigned long long)self->id, (unsigned long long)ok.clone_id - 1, EFAULT);
	snprintf(want[1], sizeof(want[1]), "{\"event\":\"destroy\",\"template\":%llu,\"clone\":%llu,",
		 (unsigned long long)self->id, (unsigned long long)ok.clone_id - 1);
	snprintf(want[2], sizeof(want[2]), "{\"event\":\"spawn\",\"template\":%llu,\"clone\":%llu,\"errno\":0,",
		 (unsigned long long)self->id, (unsigned long long)ok.clone_id);
	for (int i = 0; i < 3; i++) {
		ASSERT_NE(NULL, fgets(line, sizeof(line), f)) TH_LOG("event %d missing", i);
		EXPECT_EQ(0, strncmp(line, want[i], strlen(want[i]))) TH_LOG("got %s want %s", line, want[i]);
	}
	pclose(f);
	ASSERT_EQ(0, kf_raw_info(self->tfd, &after));
	EXPECT_EQ(before.spawns + 1, after.spawns);
	EXPECT_EQ(before.spawn_failures + 1, after.spawn_failures);
	kf_raw_close(&ok);
	munmap(sp, 4096);
	EXPECT_EQ(0, kf_live_settles(caps0.live_templates, caps0.live_clones));
}

/* A template that freezes a vCPU in SMM is refused: the prefault must never meet one. */
TEST_F(trust, create_refuses_a_vcpu_frozen_in_smm)
{
	struct kf_template *u = self->user;
	uint8_t *state = malloc(u->state.len);
	struct kfork_template_create args = {
		.size = sizeof(args), .mem_fd = u->memfd, .mem_size = u->mem_size,
		.state_ptr = (uintptr_t)state, .state_len = u->state.len,
	};
	int found = 0, dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);

	NEED_TRUST();
	ASSERT_NE(NULL, state);
	ASSERT_LE(0, dev);
	memcpy(state, u->state.buf, u->state.len);
	for (__u32 off = 0; off + 8 <= u->state.len;) {
		struct kfork_state_item *it = (void *)(state + off);

		if (it->tag == KFORK_STATE_VCPU_EVENTS) {
			struct kvm_vcpu_events *ev = (void *)(it + 1);

			ev->flags |= KVM_VCPUEVENT_VALID_SMM;
			ev->smi.smm = 1;
			found = 1;
		}
		off += 8 + ((it->len + 7) & ~7u);
	}
	if (!found)
		SKIP(goto out, "this template has no VCPU_EVENTS item");
	EXPECT_EQ(-1, ioctl(dev, KFORK_TEMPLATE_CREATE, &args));
	EXPECT_EQ(EINVAL, errno);
out:
	close(dev);
	free(state);
}

/* ---- memory ----------------------------------------------------------------- */

/* Every page is present from registration: clones reading holes allocate nothing. */
TEST_F(trust, template_memory_fully_present_at_registration)
{
	struct kfork_template_info info;
	struct kfork_spawn sp;
	volatile uint8_t sum = 0;

	NEED_TRUST();
	ASSERT_EQ(0, kf_raw_info(self->tfd, &info));
	EXPECT_EQ(self->user->mem_size >> 12, info.pages_shared);
	ASSERT_EQ(0, kf_raw_spawn(self->tfd, &sp, 0));
	for (__u64 off = 0; off < sp.mem_size; off += 4096)
		sum += ((volatile uint8_t *)(uintptr_t)sp.mem_addr)[off];
	ASSERT_EQ(0, kf_raw_info(self->tfd, &info));
	EXPECT_EQ(self->user->mem_size >> 12, info.pages_shared);
	kf_raw_close(&sp);
}

static int memlock_limits(void *arg)
{
	struct kf_template *u = arg;
	struct rlimit rl;
	int a, b;

	if (drop_cap_ipc_lock())
		return 10;
	/* Below one template: refused as mlock() would be. */
	rl.rlim_cur = rl.rlim_max = u->mem_size / 2;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 11;
	if (kf_raw_template(u, 0) >= 0 || errno != ENOMEM)
		return 1;
	/* Room for one and a half: the first fits, the second does not, until the first goes. */
	rl.rlim_cur = rl.rlim_max = u->mem_size + u->mem_size / 2;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 12;
	a = kf_raw_template(u, 0);
	if (a < 0)
		return 2;
	b = kf_raw_template(u, 0);
	if (b >= 0 || errno != ENOMEM)
		return 3;
	close(a);
	b = kf_raw_template(u, 0);
	if (b < 0)
		return 4;
	close(b);
	return 0;
}

/* Template pages count against the registering user's RLIMIT_MEMLOCK without CAP_IPC_LOCK. */
TEST_F(trust, template_memory_is_charged_to_rlimit_memlock)
{
	NEED_TRUST();
	EXPECT_EQ(0, in_child(memlock_limits, self->user));
}

static int write_param(const char *name, long v)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/kfork/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "%ld\n", v);
	return fclose(f);
}

/* The module-wide cap on templates holds for root too, and says ENOSPC. */
TEST_F(trust, module_caps_the_number_of_templates)
{
	struct kfork_caps caps;
	int a;

	NEED_TRUST();
	ASSERT_EQ(0, kf_raw_caps(&caps));
	ASSERT_EQ(0, write_param("max_templates", caps.live_templates + 1));
	a = kf_raw_template(self->user, 0);
	EXPECT_LE(0, a);
	EXPECT_EQ(-1, kf_raw_template(self->user, 0));
	EXPECT_EQ(ENOSPC, errno);
	ASSERT_EQ(0, write_param("max_templates", 256));
	if (a >= 0)
		close(a);
}

/* ---- the pool belongs to one process --------------------------------------- */

static int pool_as_other(void *arg)
{
	int *tfd = arg;

	if (kf_raw_pool(*tfd, 1, KFORK_POOL_NO_FILL, NULL) == 0)
		return 1;
	return errno == EBUSY ? 0 : 2;
}

static int pool_fill_and_exit(void *arg)
{
	int *tfd = arg;
	unsigned int ready;

	return kf_raw_pool(*tfd, 2, 0, &ready) == 0 && ready == 2 ? 0 : 1;
}

TEST_F(trust, pool_is_its_owners_and_goes_when_the_owner_exits)
{
	unsigned int ready;

	NEED_TRUST();
	/* An owner that exits leaves nothing listed, and no VM behind. */
	ASSERT_EQ(0, in_child(pool_fill_and_exit, &self->tfd));
	ASSERT_EQ(0, kf_raw_pool(self->tfd, 1, KFORK_POOL_NO_FILL, &ready))
		TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0, ready);
	/* Now this process owns it: another may neither set the target nor build. */
	ASSERT_EQ(0, kf_raw_pool(self->tfd, 1, 0, &ready));
	EXPECT_EQ(1, ready);
	EXPECT_EQ(0, in_child(pool_as_other, &self->tfd));
	ASSERT_EQ(0, kf_raw_pool(self->tfd, 0, 0, &ready));
	EXPECT_EQ(0, ready);
}

/* ---- reset ------------------------------------------------------------------- */

/*
 * The clone's own mapping with its halves swapped (mremap): the same file,
 * private and writable everywhere, but each address at another page of the
 * template than the guest's. Not the clone's memory: a reset refuses it.
 */
TEST_F(trust, reset_refuses_memory_remapped_at_another_offset)
{
	struct kfork_clone_reset rs = { .size = sizeof(rs) };
	struct kfork_spawn sp;
	uint8_t *base, *tmp;
	size_t half;

	NEED_TRUST();
	ASSERT_EQ(0, kf_raw_spawn(self->tfd, &sp, 0));
	base = (void *)(uintptr_t)sp.mem_addr;
	half = sp.mem_size / 2;
	tmp = mmap(NULL, half, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, tmp);
	ASSERT_EQ(tmp, mremap(base, half, half, MREMAP_MAYMOVE | MREMAP_FIXED, tmp));
	ASSERT_EQ(base, mremap(base + half, half, half, MREMAP_MAYMOVE | MREMAP_FIXED, base));
	ASSERT_EQ(base + half, mremap(tmp, half, half, MREMAP_MAYMOVE | MREMAP_FIXED, base + half));
	EXPECT_EQ(-1, ioctl(sp.clone_fd, KFORK_CLONE_RESET, &rs));
	EXPECT_EQ(EFAULT, errno);
	kf_raw_close(&sp);
}

/* Every state item KVM reports for a vCPU, and the VM's irqchips. */
struct vcpu_snapshot {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dbg;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_lapic_state lapic;
	struct kvm_irqchip chip[3];
	__u32 nmsrs;
	struct kvm_msr_entry msrs[512];
};

/*
 * KVM's MSR list, less the TSC (it counts time) and Hyper-V's (some count
 * time too, and a guest without Hyper-V in its CPUID cannot reach any).
 */
static __u32 msr_indices(__u32 *idx, __u32 max)
{
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + max * sizeof(__u32));
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	__u32 n = 0;

	l->nmsrs = max;
	if (kvm >= 0 && !ioctl(kvm, KVM_GET_MSR_INDEX_LIST, l))
		for (__u32 i = 0; i < l->nmsrs; i++)
			if (l->indices[i] != 0x10 &&
			    (l->indices[i] < 0x40000000 || l->indices[i] > 0x400000ff))
				idx[n++] = l->indices[i];
	close(kvm);
	free(l);
	return n;
}

static int snapshot(int vm, int vcpu, struct vcpu_snapshot *s, const __u32 *idx, __u32 nidx)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} one;

	memset(s, 0, sizeof(*s));
	if (ioctl(vcpu, KVM_GET_REGS, &s->regs) || ioctl(vcpu, KVM_GET_SREGS, &s->sregs) ||
	    ioctl(vcpu, KVM_GET_FPU, &s->fpu) || ioctl(vcpu, KVM_GET_XSAVE, &s->xsave) ||
	    ioctl(vcpu, KVM_GET_DEBUGREGS, &s->dbg) || ioctl(vcpu, KVM_GET_VCPU_EVENTS, &s->events) ||
	    ioctl(vcpu, KVM_GET_MP_STATE, &s->mp) || ioctl(vcpu, KVM_GET_LAPIC, &s->lapic))
		return -1;
	ioctl(vcpu, KVM_GET_XCRS, &s->xcrs);	/* none without XSAVE */
	for (int c = 0; c < 3; c++) {
		s->chip[c].chip_id = c;
		if (ioctl(vm, KVM_GET_IRQCHIP, &s->chip[c]))
			return -1;
	}
	for (__u32 i = 0; i < nidx && s->nmsrs < 512; i++) {
		memset(&one, 0, sizeof(one));
		one.h.nmsrs = 1;
		one.e.index = idx[i];
		if (ioctl(vcpu, KVM_GET_MSRS, &one) == 1)
			s->msrs[s->nmsrs++] = one.e;
	}
	return 0;
}

/* Completes what a KVM_RUN would complete first, without running the guest. */
static void run_immediate_exit(const struct kfork_spawn *sp)
{
	struct kvm_run *run = (void *)(uintptr_t)sp->run_addr;

	run->immediate_exit = 1;
	ioctl(sp->vcpu_fd, KVM_RUN, 0);
	run->immediate_exit = 0;
}

#define SAME(field, what) do { \
	if (memcmp(&a->field, &b->field, sizeof(a->field))) { \
		TH_LOG("%s differs after reset", what); \
		diffs++; \
	} \
} while (0)

static int snapshot_diffs(struct __test_metadata *_metadata, const struct vcpu_snapshot *a,
			  const struct vcpu_snapshot *b)
{
	int diffs = 0;

	SAME(regs, "REGS");
	SAME(sregs, "SREGS");
	SAME(fpu, "FPU");
	SAME(xsave, "XSAVE");
	SAME(xcrs, "XCRS");
	SAME(dbg, "DEBUGREGS");
	SAME(events, "VCPU_EVENTS");
	SAME(mp, "MP_STATE");
	SAME(lapic, "LAPIC");
	SAME(chip, "IRQCHIP");
	if (a->nmsrs != b->nmsrs) {
		TH_LOG("%u MSRs readable after reset, %u fresh", a->nmsrs, b->nmsrs);
		diffs++;
	}
	for (__u32 i = 0; i < a->nmsrs && i < b->nmsrs; i++) {
		if (a->msrs[i].index != b->msrs[i].index || a->msrs[i].data != b->msrs[i].data) {
			TH_LOG("MSR %#x: %#llx after reset, %#llx fresh", a->msrs[i].index,
			       (unsigned long long)a->msrs[i].data, (unsigned long long)b->msrs[i].data);
			diffs++;
		}
	}
	return diffs;
}

/*
 * What a previous run may leave in a vCPU: a port read KVM has not completed,
 * breakpoints, FPU contents, a pending NMI, and an MSR outside the
 * template's list (the legacy kvmclock MSR, which makes KVM write guest
 * memory). A reset must undo all of it.
 */
static void dirty_vcpu(struct __test_metadata *_metadata, const struct kfork_spawn *sp)
{
	struct kvm_run *run = (void *)(uintptr_t)sp->run_addr;
	struct kvm_debugregs dbg;
	struct kvm_fpu fpu;
	struct kvm_vcpu_events ev;
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} msr = { .h.nmsrs = 1, .e.index = 0x12, .e.data = 0x3000 | 1 };
	int i;

	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, ioctl(sp->vcpu_fd, KVM_RUN, 0)) TH_LOG("KVM_RUN: %s", strerror(errno));
		if (run->exit_reason == KVM_EXIT_IO)
			break;
	}
	ASSERT_EQ(KVM_EXIT_IO, run->exit_reason);	/* left incomplete on purpose */
	ASSERT_EQ(0, ioctl(sp->vcpu_fd, KVM_GET_DEBUGREGS, &dbg));
	dbg.db[0] = 0x1000;
	dbg.dr7 = 0x401;
	ASSERT_EQ(0, ioctl(sp->vcpu_fd, KVM_SET_DEBUGREGS, &dbg));
	ASSERT_EQ(0, ioctl(sp->vcpu_fd, KVM_GET_FPU, &fpu));
	fpu.fcw ^= 0x0c00;
	fpu.xmm[0][0] ^= 0xa5;
	ASSERT_EQ(0, ioctl(sp->vcpu_fd, KVM_SET_FPU, &fpu));
	ASSERT_EQ(0, ioctl(sp->vcpu_fd, KVM_GET_VCPU_EVENTS, &ev));
	ev.nmi.pending = 1;
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
	ASSERT_EQ(0, ioctl(sp->vcpu_fd, KVM_SET_VCPU_EVENTS, &ev));
	ASSERT_EQ(1, ioctl(sp->vcpu_fd, KVM_SET_MSRS, &msr));
}

/* Drops the optional items (FPU, XSAVE, XCRS, DEBUGREGS, VCPU_EVENTS) from a state blob. */
static __u32 strip_optional(const uint8_t *in, __u32 len, uint8_t *out)
{
	__u32 off = 0, n = 0;

	while (off + 8 <= len) {
		const struct kfork_state_item *it = (const void *)(in + off);
		__u32 step = 8 + ((it->len + 7) & ~7u);

		if (it->tag != KFORK_STATE_FPU && it->tag != KFORK_STATE_XSAVE &&
		    it->tag != KFORK_STATE_XCRS && it->tag != KFORK_STATE_DEBUGREGS &&
		    it->tag != KFORK_STATE_VCPU_EVENTS) {
			memcpy(out + n, it, step);
			n += step;
		}
		off += step;
	}
	return n;
}

static void reset_matches_fresh(struct __test_metadata *_metadata, struct kf_template *u,
				int strip)
{
	struct kfork_clone_reset rs = { .size = sizeof(rs) };
	struct vcpu_snapshot *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	uint8_t *state = malloc(u->state.len);
	struct kfork_template_create args = {
		.size = sizeof(args), .mem_fd = u->memfd, .mem_size = u->mem_size,
		.state_ptr = (uintptr_t)state,
	};
	struct kfork_spawn sa, sb;
	__u32 idx[1024], nidx = msr_indices(idx, 1024);
	int dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC), tfd;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, state);
	ASSERT_LT(0, nidx);
	if (strip) {
		args.state_len = strip_optional(u->state.buf, u->state.len, state);
	} else {
		memcpy(state, u->state.buf, u->state.len);
		args.state_len = u->state.len;
	}
	tfd = ioctl(dev, KFORK_TEMPLATE_CREATE, &args);
	ASSERT_LE(0, tfd) TH_LOG("KFORK_TEMPLATE_CREATE: %s", strerror(errno));
	ASSERT_EQ(0, kf_raw_spawn(tfd, &sa, 0));
	dirty_vcpu(_metadata, &sa);
	ASSERT_EQ(0, ioctl(sa.clone_fd, KFORK_CLONE_RESET, &rs)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, kf_raw_spawn(tfd, &sb, 0));
	run_immediate_exit(&sa);
	run_immediate_exit(&sb);
	ASSERT_EQ(0, snapshot(sa.vm_fd, sa.vcpu_fd, a, idx, nidx));
	ASSERT_EQ(0, snapshot(sb.vm_fd, sb.vcpu_fd, b, idx, nidx));
	EXPECT_EQ(0, snapshot_diffs(_metadata, a, b));
	EXPECT_EQ(0, memcmp((void *)(uintptr_t)sa.mem_addr, (void *)(uintptr_t)sb.mem_addr,
			    sa.mem_size)) TH_LOG("guest memory differs after reset");
	kf_raw_close(&sa);
	kf_raw_close(&sb);
	close(tfd);
	close(dev);
	free(state);
	free(a);
	free(b);
}

TEST_F(trust, reset_leaves_what_a_fresh_spawn_has)
{
	NEED_TRUST();
	reset_matches_fresh(_metadata, self->user, 0);
}

TEST_F(trust, reset_of_a_template_without_optional_items_leaves_nothing_behind)
{
	NEED_TRUST();
	reset_matches_fresh(_metadata, self->user, 1);
}

TEST_HARNESS_MAIN
