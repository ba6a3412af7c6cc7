/* SPDX-License-Identifier: GPL-2.0-only */
/* kmod_fixture.h - what the /dev/kfork tests share: skip reasons, the tiny template, raw ioctls. */
#ifndef KF_TESTS_KMOD_FIXTURE_H
#define KF_TESTS_KMOD_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../kmod/uapi/kfork.h"
#include "kfork.h"
#include "lib/internal.h"

#define KF_TPL_PATH	"/tmp/kfork-kmod-test-tiny.tmpl"

static inline const char *kf_kmod_missing(void)
{
	if (access(KFORK_DEVICE, R_OK | W_OK))
		return "no /dev/kfork: kfork.ko not loaded (run under make lab / make check)";
	if (access("/dev/kvm", R_OK | W_OK))
		return "/dev/kvm not available";
	if (access("build/tests/tiny.bin", R_OK))
		return "build/tests/tiny.bin not built (run make)";
	return NULL;
}

/* The tiny template, built once per boot (tmpfs /tmp) under a lock; kmod_test.c shares it. */
static inline int kf_tiny_template(void)
{
	struct kf_build_opts opts = { .kind = KF_KIND_TINY, .kernel = "build/tests/tiny.bin" };
	int lock, err = 0;

	lock = open("/tmp/kfork-kmod-test.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	flock(lock, LOCK_EX);
	if (access(KF_TPL_PATH, R_OK))
		err = kf_template_build(&opts, KF_TPL_PATH);
	close(lock);
	if (err)
		fprintf(stderr, "# kf_template_build: %s\n", kf_last_error());
	return err;
}

/* Registers the user-backend template's memory and state raw; returns the template fd. */
static inline int kf_raw_template(struct kf_template *user, unsigned int max_clones)
{
	struct kfork_template_create args = {
		.size = sizeof(args), .mem_fd = user->memfd, .mem_size = user->mem_size,
		.state_ptr = (uintptr_t)user->state.buf, .state_len = user->state.len,
		.max_clones = max_clones,
	};
	int dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC), fd;

	if (dev < 0)
		return -1;
	fd = ioctl(dev, KFORK_TEMPLATE_CREATE, &args);
	close(dev);
	return fd;
}

static inline int kf_raw_spawn(int tfd, struct kfork_spawn *sp, unsigned int flags)
{
	memset(sp, 0, sizeof(*sp));
	sp->size = sizeof(*sp);
	sp->flags = flags;
	return ioctl(tfd, KFORK_SPAWN, sp);
}

static inline void kf_raw_close(const struct kfork_spawn *sp)
{
	munmap((void *)(uintptr_t)sp->run_addr, sp->run_size);
	munmap((void *)(uintptr_t)sp->mem_addr, sp->mem_size);
	if (sp->scratch_addr)
		munmap((void *)(uintptr_t)sp->scratch_addr, sp->scratch_size);
	close(sp->vcpu_fd);
	close(sp->vm_fd);
	close(sp->clone_fd);
}

/*
 * 0 if the clone's registers are the template's REGS item: no guest
 * instruction ran at spawn (prefault's MMU load included), 1 if they differ.
 */
static inline int kf_regs_are_template(const struct kf_template *user, const struct kfork_spawn *sp)
{
	const uint8_t *st = user->state.buf;
	struct kvm_regs regs;

	if (ioctl(sp->vcpu_fd, KVM_GET_REGS, &regs))
		return -1;
	for (uint32_t off = 0; off + 8 <= user->state.len;) {
		const struct kfork_state_item *it = (const void *)(st + off);

		if (it->tag == KFORK_STATE_REGS)
			return it->len == sizeof(regs) && !memcmp(it + 1, &regs, sizeof(regs)) ? 0 : 1;
		off += 8 + ((it->len + 7) & ~7u);
	}
	return -1;
}

static inline int kf_raw_info(int tfd, struct kfork_template_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return ioctl(tfd, KFORK_TEMPLATE_INFO, info);
}

static inline int kf_raw_caps(struct kfork_caps *caps)
{
	int dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC), ret;

	memset(caps, 0, sizeof(*caps));
	caps->size = sizeof(*caps);
	ret = ioctl(dev, KFORK_GET_CAPS, caps);
	close(dev);
	return ret;
}

static inline int kf_raw_pool(int tfd, unsigned int target, unsigned int flags,
			      unsigned int *ready)
{
	struct kfork_template_pool p = { .size = sizeof(p), .flags = flags, .target = target };
	int ret = ioctl(tfd, KFORK_TEMPLATE_POOL, &p);

	if (ready)
		*ready = p.ready;
	return ret;
}

/*
 * Module-wide live objects back to what they were: the last fput of a clone
 * or template may be deferred (task work, or a dying process), so wait a bit.
 */
static inline int kf_live_settles(__u64 templates, __u64 clones)
{
	struct kfork_caps caps;

	for (int i = 0; i < 200; i++) {
		if (kf_raw_caps(&caps) == 0 && caps.live_templates == templates &&
		    caps.live_clones == clones)
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "# live templates %llu (want %llu), clones %llu (want %llu)\n",
		(unsigned long long)caps.live_templates, (unsigned long long)templates,
		(unsigned long long)caps.live_clones, (unsigned long long)clones);
	return -1;
}

/*
 * Kernel memory in use, kB: Slab + VmallocUsed. A VM with its vCPU costs
 * ~100-200 kB of both (struct kvm is vmalloc'd), so leaked VMs show here.
 * (KVM's debugfs has a directory per VM, but named after the creating fd,
 * which the module closes and reuses: it undercounts.)
 */
static inline long kf_kernel_kb(void)
{
	char line[256];
	long kb = 0, v;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Slab: %ld", &v) == 1 || sscanf(line, "VmallocUsed: %ld", &v) == 1)
			kb += v;
	fclose(f);
	return kb;
}

/*
 * Writes 1 to every /sys/kernel/slab/<cache>/shrink. Under KASAN freed objects
 * wait in its quarantine, still counted in Slab, until it is drained: shrinking
 * a cache drains that cache's share (kasan_cache_shrink). Elsewhere it only
 * returns empty slabs, which the bounds below do not depend on.
 */
static inline void kf_slab_shrink_all(void)
{
	char path[320];
	struct dirent *de;
	DIR *d = opendir("/sys/kernel/slab");

	if (!d)
		return;
	while ((de = readdir(d))) {
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", de->d_name);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = write(fd, "1", 1);	/* one that cannot shrink keeps its count */
		(void)n;
		close(fd);
	}
	closedir(d);
}

/*
 * vCPUs alive on this host: the objects of KVM's kvm_vcpu slab cache (one per
 * vCPU, unmerged: it has a usercopy region), after draining KASAN's quarantine,
 * which would still count freed ones. Exact where memory totals are not: -1 if
 * the cache is not visible in sysfs.
 */
static inline long kf_kvm_vcpus(void)
{
	const char *dir = "/sys/kernel/slab/kvm_vcpu";
	char path[64], buf[64];
	long n = -1;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/shrink", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t w = write(fd, "1", 1);

		(void)w;
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/objects", dir);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f) || sscanf(buf, "%ld", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

/* kf_kernel_kb() without what KASAN's quarantine still holds: a baseline. */
static inline long kf_kernel_kb_drained(void)
{
	kf_slab_shrink_all();
	return kf_kernel_kb();
}

/*
 * Kernel memory back below limit_kb (frees may be deferred: fput, RCU, KASAN's
 * quarantine); the last value.
 */
static inline long kf_kernel_kb_settle(long limit_kb)
{
	long kb = kf_kernel_kb();

	/* One drain, half a second in: each walks KASAN's whole quarantine per cache. */
	for (int i = 0; i < 100 && kb > limit_kb; i++) {
		if (i == 10)
			kf_slab_shrink_all();
		usleep(50000);
		kb = kf_kernel_kb();
	}
	return kb;
}

/* Runs fn in a child and returns its exit status (or 128 + signal). */
static inline int in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid)
		_exit(fn(arg));
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Root without CAP_IPC_LOCK: template memory counts against RLIMIT_MEMLOCK. */
static inline int drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	data[0].effective &= ~(1u << CAP_IPC_LOCK);
	data[0].permitted &= ~(1u << CAP_IPC_LOCK);
	data[0].inheritable &= ~(1u << CAP_IPC_LOCK);
	return syscall(SYS_capset, &hdr, data);
}

#endif
