// SPDX-License-Identifier: LGPL-2.1-or-later
/* kmod.c - the kmod backend: templates registered with /dev/kfork, clones built by one ioctl. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../kmod/uapi/kfork.h"
#include "lib/error.h"
#include "lib/internal.h"
#include "vmm/run.h"

_Static_assert((int)ST_UART == KFORK_STATE_UART && (int)ST_MAX == KFORK_STATE_MAX &&
	       (int)ST_CPUID == KFORK_STATE_CPUID && (int)ST_VCPU_EVENTS == KFORK_STATE_VCPU_EVENTS,
	       "vmm/state.h tags are the module's KFORK_STATE_* tags");
_Static_assert(sizeof(struct state_hdr) == sizeof(struct kfork_state_item),
	       "state item headers agree");

enum { WSET_NONE, WSET_RECORDING, WSET_SET };

/*
 * The module's pool of pre-built clones for this process (KFORK_KMOD_POOL
 * entries, 0 = none). Nothing is built here: each clone fd closed by the
 * reaper builds one back, off the spawn path. Older modules lack it.
 *
 * Default: 1 where there is a CPU to build on beside the caller's, else 0.
 * On one CPU the rebuild runs in the caller's next exec, and a spawn that
 * comes before it ends waits for it: in the one-vCPU lab, 200 minimal
 * spawn+exec cycles took p50 47.5 ms with the pool and 40.2 ms without.
 */
static void kmod_template_pool(struct kf_template *tmpl)
{
	const char *env = getenv("KFORK_KMOD_POOL");
	struct kfork_template_pool args = {
		.size = sizeof(args), .flags = KFORK_POOL_NO_FILL,
		.target = env ? atoi(env) : sysconf(_SC_NPROCESSORS_ONLN) > 1,
	};

	if (args.target)
		ioctl(tmpl->kmod_fd, KFORK_TEMPLATE_POOL, &args);
}

/* The module copies and seals the pages: our memfd is no longer needed after this. */
int kmod_template_register(struct kf_template *tmpl)
{
	struct kfork_template_create args = {
		.size = sizeof(args),
		.mem_fd = tmpl->memfd,
		.mem_size = tmpl->mem_size,
		.state_ptr = (uintptr_t)tmpl->state.buf,
		.state_len = tmpl->state.len,
	};
	int dev, fd;

	dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return kf_fail(-errno, "open %s", KFORK_DEVICE);
	fd = ioctl(dev, KFORK_TEMPLATE_CREATE, &args);
	if (fd < 0) {
		fd = kf_fail(-errno, "KFORK_TEMPLATE_CREATE for %s", tmpl->name);
		close(dev);
		return fd;
	}
	close(dev);
	tmpl->kmod_fd = fd;
	/*
	 * Opened here, not when the working set is learnt: that happens on the
	 * reaper or a sandboxed thread (kf_sandbox_thread), where open is
	 * refused. Failure only costs the working-set optimisation.
	 */
	tmpl->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	tmpl->pagemap_pid = getpid();
	kmod_template_pool(tmpl);
	close(tmpl->memfd);
	tmpl->memfd = -1;
	atomic_init(&tmpl->kmod_wset_state, WSET_NONE);
	return 0;
}

static int kmod_prefault_wanted(void)
{
	const char *env = getenv("KFORK_KMOD_PREFAULT");

	return !env || strcmp(env, "0");
}

int kmod_clone_build(struct kf_clone *clone, const char *name, uint64_t *t_vm)
{
	struct kf_template *tmpl = clone->tmpl;
	struct kfork_spawn sp = {
		.size = sizeof(sp),
		.flags = kmod_prefault_wanted() ? 0 : KFORK_SPAWN_NO_PREFAULT,
	};
	struct vm *vm = &clone->vm;
	int err;

	if (ioctl(tmpl->kmod_fd, KFORK_SPAWN, &sp) < 0)
		return kf_fail(-errno, "KFORK_SPAWN of %s from %s", name, tmpl->name);
	*t_vm = vm_now_ns();
	memset(vm, 0, sizeof(*vm));
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	uart_init(&vm->uart);
	vm->fd = sp.vm_fd;
	vm->vcpu_fd = sp.vcpu_fd;
	vm->run = (struct kvm_run *)(uintptr_t)sp.run_addr;
	vm->run_size = sp.run_size;
	vm->mem = (uint8_t *)(uintptr_t)sp.mem_addr;
	vm->mem_size = sp.mem_size;
	clone->mem = vm->mem;
	clone->kmod_fd = sp.clone_fd;
	clone->kmod_scratch = (void *)(uintptr_t)sp.scratch_addr;
	clone->kmod_scratch_size = sp.scratch_size;
	/* The UART is ours, not KVM's: restore its registers as state_restore() does. */
	memcpy(&vm->uart.regs, tmpl->state.item[ST_UART], sizeof(vm->uart.regs));
	err = vm_coalesce_uart(vm);
	if (err)
		clone_unbuild(clone);
	return err;
}

int kmod_clone_reset(struct kf_clone *clone)
{
	struct kfork_clone_reset args = {
		.size = sizeof(args),
		.flags = kmod_prefault_wanted() ? 0 : KFORK_RESET_NO_PREFAULT,
	};

	kmod_clone_learn(clone);
	if (ioctl(clone->kmod_fd, KFORK_CLONE_RESET, &args) < 0)
		return kf_fail(-errno, "KFORK_CLONE_RESET on clone %llu",
			       (unsigned long long)clone->id);
	memcpy(&clone->vm.uart.regs, clone->tmpl->state.item[ST_UART],
	       sizeof(clone->vm.uart.regs));
	return 0;
}

#define PM_PRESENT	(1ULL << 63)
#define PM_FILE		(1ULL << 61)	/* file page (or shared anon): not a private copy */
#define PM_CHUNK	4096

/*
 * The template's working set, learnt from the first clone that ran code:
 * every guest page present in its mapping was touched (KVM faulted it in),
 * and the private (anonymous) ones were written. /proc/self/pagemap tells
 * both without privileges. The module maps that set in every later clone.
 */
void kmod_clone_learn(struct kf_clone *clone)
{
	struct kf_template *tmpl = clone->tmpl;
	uint64_t npages = tmpl->mem_size / VM_PAGE_SIZE, n = 0;
	uint64_t *pm = NULL, *wset = NULL;
	int expected = WSET_NONE, fd = tmpl->pagemap_fd;

	if (!clone->vm.exits || fd < 0 || tmpl->pagemap_pid != getpid() ||
	    !atomic_compare_exchange_strong(&tmpl->kmod_wset_state, &expected, WSET_RECORDING))
		return;
	pm = malloc(PM_CHUNK * sizeof(*pm));
	wset = malloc(npages * sizeof(*wset));
	if (!pm || !wset)
		goto out;
	for (uint64_t i = 0; i < npages; i += PM_CHUNK) {
		uint64_t cnt = npages - i < PM_CHUNK ? npages - i : PM_CHUNK;
		off_t off = (off_t)(((uintptr_t)clone->mem / VM_PAGE_SIZE + i) * sizeof(*pm));

		if (pread(fd, pm, cnt * sizeof(*pm), off) != (ssize_t)(cnt * sizeof(*pm)))
			goto out;
		for (uint64_t j = 0; j < cnt; j++)
			if (pm[j] & PM_PRESENT)
				wset[n++] = (i + j) | (pm[j] & PM_FILE ? 0 : KFORK_WSET_WRITE);
	}
	if (n) {
		struct kfork_template_wset args = {
			.size = sizeof(args), .entries_ptr = (uintptr_t)wset, .nr_entries = n,
		};

		if (ioctl(tmpl->kmod_fd, KFORK_TEMPLATE_SET_WSET, &args) == 0 || errno == EEXIST) {
			atomic_store(&tmpl->kmod_wset_state, WSET_SET);
			goto free;
		}
	}
out:
	atomic_store(&tmpl->kmod_wset_state, WSET_NONE);	/* try again with the next clone */
free:
	free(pm);
	free(wset);
}
