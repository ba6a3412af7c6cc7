// SPDX-License-Identifier: LGPL-2.1-or-later
/* clone.c - the user backend: spawn, reset and destroy copy-on-write clones with KVM ioctls. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/error.h"
#include "lib/internal.h"
#include "lib/probes.h"
#include "vmm/run.h"

static int clone_map_memory(struct kf_clone *clone)
{
	struct kf_template *tmpl = clone->tmpl;

	/* Private mapping of the sealed memfd: reads share the template's pages, writes copy. */
	clone->mem = mmap(NULL, tmpl->mem_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_NORESERVE, tmpl->memfd, 0);
	if (clone->mem == MAP_FAILED) {
		clone->mem = NULL;
		return kf_fail(-errno, "mmap template memory for clone %llu",
			       (unsigned long long)clone->id);
	}
	return 0;
}

/* The guest rang: drain g2h, refill h2g; a refill's doorbell byte needs IRQ 4 raised. */
static int clone_doorbell(void *arg)
{
	struct kf_clone *clone = arg;
	struct vm *vm = &clone->vm;
	int err = mbox_doorbell(&clone->mbox, vm);

	if (err || uart_irq_level(&vm->uart) == vm->uart.regs.irq_level)
		return err;
	return vm_uart_sync_irq(vm);
}

/*
 * Fresh seed and wall clock, queued so the agent applies them before anything
 * else. The mailbox header and rings go back to the template's: memory resets
 * do not cover what the host itself wrote (kmod) and must not be trusted anyway.
 */
static int clone_arm(struct kf_clone *clone)
{
	kf_decoder_init(clone->dec);
	uart_rx_clear(&clone->vm.uart);
	clone->needs_reset = 0;
	clone->py_session = KF_SESSION_NONE;	/* the template's interpreter is fresh */
	if (clone->tmpl->has_mbox) {
		int err = mbox_attach(&clone->mbox, &clone->vm, &clone->tmpl->mbox_hdr);

		if (err)
			return err;
		kf_decoder_init(clone->mbox_dec);
	}
	return exec_queue_init(clone);
}

/* KFORK_PRE_FAULT=0: leave stage 2 to the guest's faults (to measure what it buys). */
static int pre_fault_wanted(void)
{
	const char *env = getenv("KFORK_PRE_FAULT");

	return !env || strcmp(env, "0");
}

/*
 * User backend, on kernels with KVM_PRE_FAULT_MEMORY (6.10): map the file's
 * working set in stage 2 before the vCPU first runs, a run of consecutive
 * frames per call, so the guest's first touches of those pages take no
 * nested page fault. Reads only: a page the clone writes is still copied on
 * its first write. Where KVM lacks the ioctl nothing happens (6.1).
 */
static int user_clone_pre_fault(struct kf_clone *clone)
{
	const struct kf_template *tmpl = clone->tmpl;

	if (!tmpl->wset_len || !pre_fault_wanted())
		return 0;
	for (uint64_t i = 0; i < tmpl->wset_len;) {
		uint64_t first = tmpl->wset[i] & KF_WSET_GFN_MASK, n = 1;
		int err;

		while (i + n < tmpl->wset_len && (tmpl->wset[i + n] & KF_WSET_GFN_MASK) == first + n)
			n++;
		err = vm_pre_fault(&clone->vm, first * VM_PAGE_SIZE, n * VM_PAGE_SIZE);
		if (err == -EOPNOTSUPP)
			return 0;
		if (err)
			return err;
		i += n;
	}
	return 0;
}

/* The user backend's clone: KVM ioctls from here; undone by clone_unbuild(). */
static int user_clone_build(struct kf_clone *clone, const char *name, uint64_t *t_vm)
{
	struct kf_template *tmpl = clone->tmpl;
	int err;

	err = clone_map_memory(clone);
	if (err)
		return err;
	err = vm_create(&clone->vm, name, clone->mem, tmpl->mem_size);
	if (err)
		goto unmap;
	*t_vm = vm_now_ns();
	err = state_restore(&clone->vm, &tmpl->state, 0);
	if (!err)
		err = user_clone_pre_fault(clone);
	if (err)
		goto destroy_vm;
	return 0;

destroy_vm:
	vm_destroy(&clone->vm);
unmap:
	munmap(clone->mem, tmpl->mem_size);
	return err;
}

void clone_unbuild(struct kf_clone *clone)
{
	vm_destroy(&clone->vm);
	munmap(clone->mem, clone->tmpl->mem_size);
	if (clone->kmod_scratch)
		munmap(clone->kmod_scratch, clone->kmod_scratch_size);
	if (clone->kmod_fd >= 0)
		close(clone->kmod_fd);
}

int kf_spawn(struct kf_template *tmpl, struct kf_clone **out)
{
	uint64_t t0 = vm_now_ns(), t_vm = 0, t_restored = 0, t_done;
	uint64_t id = atomic_fetch_add(&tmpl->next_id, 1);
	struct kf_clone *clone;
	char name[32];
	int err;

	clone = calloc(1, sizeof(*clone));
	if (!clone) {
		err = kf_fail(-ENOMEM, "spawn from %s", tmpl->name);
		goto probe;
	}
	clone->kmod_fd = -1;
	clone->dec = malloc(sizeof(*clone->dec));
	if (tmpl->has_mbox)
		clone->mbox_dec = malloc(sizeof(*clone->mbox_dec));
	if (!clone->dec || (tmpl->has_mbox && !clone->mbox_dec)) {
		err = kf_fail(-ENOMEM, "spawn from %s", tmpl->name);
		goto free_clone;
	}
	clone->tmpl = tmpl;
	clone->id = id;
	snprintf(name, sizeof(name), "clone %llu", (unsigned long long)clone->id);
	if (tmpl->backend == KF_BACKEND_KMOD)
		err = kmod_clone_build(clone, name, &t_vm);
	else
		err = user_clone_build(clone, name, &t_vm);
	if (err)
		goto free_dec;
	clone->vm.uart.tx = exec_guest_tx;
	clone->vm.uart.tx_arg = clone;
	if (tmpl->has_mbox) {
		clone->vm.doorbell = clone_doorbell;
		clone->vm.doorbell_arg = clone;
		clone->mbox.rx = exec_guest_mbox_rx;
		clone->mbox.rx_arg = clone;
	}
	t_restored = vm_now_ns();
	err = clone_arm(clone);
	if (err)
		goto unbuild;
	atomic_fetch_add(&tmpl->refs, 1);
	t_done = vm_now_ns();
	clone->spawn_ns = t_done - t0;
	KF_PROBE6(spawn_done, id, t0, t_vm, t_restored, t_done, 0);
	*out = clone;
	return 0;

unbuild:
	clone_unbuild(clone);
	mbox_free(&clone->mbox);
free_dec:
	free(clone->mbox_dec);
	free(clone->dec);
free_clone:
	free(clone);
probe:
	KF_PROBE6(spawn_done, id, t0, t_vm, t_restored, 0, err);
	return err;
}

int kf_reset(struct kf_clone *clone)
{
	uint64_t t0 = vm_now_ns(), t_done;
	int err;

	/* A half-done PIO would otherwise complete into the restored registers. */
	err = vm_complete_io(&clone->vm);
	if (err)
		goto probe;
	if (clone->tmpl->backend == KF_BACKEND_KMOD) {
		err = kmod_clone_reset(clone);
		if (err)
			goto probe;
	} else {
		/* Drop every private (copied) page: the mapping falls back to the template's. */
		if (madvise(clone->mem, clone->tmpl->mem_size, MADV_DONTNEED) < 0) {
			err = kf_fail(-errno, "madvise(DONTNEED) resetting clone %llu",
				      (unsigned long long)clone->id);
			goto probe;
		}
		err = state_restore(&clone->vm, &clone->tmpl->state, 1);
		if (!err)
			err = user_clone_pre_fault(clone);
		if (err)
			goto probe;
	}
	err = clone_arm(clone);
	if (err)
		goto probe;
	t_done = vm_now_ns();
	clone->spawn_ns = t_done - t0;
	KF_PROBE4(reset_done, clone->id, t0, t_done, 0);
	return 0;

probe:
	KF_PROBE4(reset_done, clone->id, t0, 0, err);
	return err;
}

#define PM_PRESENT	(1ULL << 63)
#define PM_FILE		(1ULL << 61)	/* file page (or shared anon): not a private copy */
#define PM_CHUNK	4096

/*
 * This process's /proc/self/pagemap: the template's, opened with it (a
 * sandboxed thread may not open files), or, in a child fork()ed after the
 * open, one of its own (*own: close it after).
 */
static int clone_pagemap_fd(struct kf_clone *clone, int *own)
{
	const struct kf_template *tmpl = clone->tmpl;

	*own = tmpl->pagemap_fd < 0 || tmpl->pagemap_pid != getpid();
	return *own ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) : tmpl->pagemap_fd;
}

/*
 * Calls fn(arg, frame, present, private) for every guest frame of the clone,
 * from /proc/self/pagemap (no privilege needed for these flags): a present
 * frame was touched (KVM faulted it in), a private one is the clone's own
 * copy (written), the same for both backends' mappings.
 */
int clone_pagemap_scan(struct kf_clone *clone,
		       void (*fn)(void *arg, uint64_t frame, int present, int private), void *arg)
{
	uint64_t npages = clone->tmpl->mem_size / VM_PAGE_SIZE;
	uint64_t *pm = malloc(PM_CHUNK * sizeof(*pm));
	int own, fd = clone_pagemap_fd(clone, &own), err = 0;

	if (fd < 0 || !pm) {
		err = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < npages; i += PM_CHUNK) {
		uint64_t cnt = npages - i < PM_CHUNK ? npages - i : PM_CHUNK;
		off_t off = (off_t)(((uintptr_t)clone->mem / VM_PAGE_SIZE + i) * sizeof(*pm));

		if (pread(fd, pm, cnt * sizeof(*pm), off) != (ssize_t)(cnt * sizeof(*pm))) {
			err = -EIO;
			goto out;
		}
		for (uint64_t j = 0; j < cnt; j++)
			fn(arg, i + j, !!(pm[j] & PM_PRESENT),
			   (pm[j] & (PM_PRESENT | PM_FILE)) == PM_PRESENT);
	}
out:
	if (own && fd >= 0)
		close(fd);
	free(pm);
	return err;
}

struct wset_acc {
	uint64_t *wset, n;
};

static void wset_add(void *arg, uint64_t frame, int present, int private)
{
	struct wset_acc *a = arg;

	if (present)
		a->wset[a->n++] = frame | (private ? KF_WSET_WRITE : 0);
}

/* The pages a clone has touched so far, as working-set entries; *out is malloc'd. */
int clone_working_set(struct kf_clone *clone, uint64_t **out, uint64_t *n_out)
{
	struct wset_acc a = { .wset = malloc(clone->tmpl->mem_size / VM_PAGE_SIZE * sizeof(uint64_t)) };
	int err = a.wset ? clone_pagemap_scan(clone, wset_add, &a) : -ENOMEM;

	if (!err && !a.n)
		err = -ENODATA;
	if (err) {
		free(a.wset);
		return err;
	}
	*out = a.wset;
	*n_out = a.n;
	return 0;
}

void clone_teardown(struct kf_clone *clone)
{
	struct kf_template *tmpl = clone->tmpl;

	if (tmpl->backend == KF_BACKEND_KMOD)
		kmod_clone_learn(clone);
	clone_unbuild(clone);
	mbox_free(&clone->mbox);
	free(clone->mbox_dec);
	free(clone->dec);
	free(clone);
	kf_template_put(tmpl);
}

void kf_destroy(struct kf_clone *clone)
{
	if (clone)
		reaper_push(clone);
}

uint64_t kf_clone_id(const struct kf_clone *clone)
{
	return clone->id;
}

uint64_t kf_clone_spawn_ns(const struct kf_clone *clone)
{
	return clone->spawn_ns;
}

int kf_clone_read_mem(struct kf_clone *clone, uint64_t gpa, void *buf, size_t len)
{
	const void *src = vm_gpa_ptr(&clone->vm, gpa, len);

	if (!src)
		return kf_reject(-EFAULT, "clone %llu: read of %zu bytes at %#llx outside guest RAM",
			       (unsigned long long)clone->id, len, (unsigned long long)gpa);
	memcpy(buf, src, len);
	return 0;
}
