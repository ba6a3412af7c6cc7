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

_Static_assert(KF_WSET_WRITE == KFORK_WSET_WRITE && KF_WSET_GFN_MASK == KFORK_WSET_GFN_MASK,
	       "working-set entries are the module's");

/* 0, or -EEXIST if the module has one (another process set it first), or -errno. */
static int kmod_template_set_wset(struct kf_template *tmpl, const uint64_t *wset, uint64_t n)
{
	struct kfork_template_wset args = {
		.size = sizeof(args), .entries_ptr = (uintptr_t)wset, .nr_entries = n,
	};

	if (!n || n > UINT32_MAX)
		return -EINVAL;
	return ioctl(tmpl->kmod_fd, KFORK_TEMPLATE_SET_WSET, &args) ? -errno : 0;
}

/*
 * The module copies and seals the pages: our memfd is no longer needed after
 * this. A working set from the file is the module's at once, so the first
 * clone is prefaulted too.
 */
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
	kmod_template_pool(tmpl);
	close(tmpl->memfd);
	tmpl->memfd = -1;
	atomic_init(&tmpl->kmod_wset_state, WSET_NONE);
	if (tmpl->wset_len && !kmod_template_set_wset(tmpl, tmpl->wset, tmpl->wset_len))
		atomic_init(&tmpl->kmod_wset_state, WSET_SET);
	return 0;
}

_Static_assert(KF_TPL_KEY_SIZE == KFORK_KEY_SIZE, "template file keys are the module's");

static int kmod_key_ioctl(unsigned long cmd, unsigned int flags, const uint8_t *key)
{
	struct kfork_template_key args = { .size = sizeof(args), .flags = flags };
	int dev, ret, err;

	if (key)
		memcpy(args.key, key, sizeof(args.key));
	dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	ret = ioctl(dev, cmd, &args);
	err = errno;
	close(dev);
	return ret < 0 ? -err : ret;
}

/*
 * The module's persistent template for this file, if it keeps one
 * (kf_template_persist): -ENOENT if not, or if the module predates them.
 * Its working set, if the module has one, is not learnt again.
 */
int kmod_template_attach(struct kf_template *tmpl)
{
	struct kfork_template_info info = { .size = sizeof(info) };
	int fd;

	fd = kmod_key_ioctl(KFORK_TEMPLATE_ATTACH, 0, tmpl->file_key);
	if (fd == -ENOENT || fd == -ENOTTY)
		return -ENOENT;
	if (fd < 0)
		return kf_fail(fd, "KFORK_TEMPLATE_ATTACH for %s", tmpl->name);
	if (ioctl(fd, KFORK_TEMPLATE_INFO, &info) < 0 || info.mem_size != tmpl->mem_size) {
		close(fd);
		return kf_reject(-EINVAL, "%s: the module's template has %llu bytes of memory, the file %llu",
				 tmpl->name, (unsigned long long)info.mem_size,
				 (unsigned long long)tmpl->mem_size);
	}
	tmpl->kmod_fd = fd;
	tmpl->attached = 1;
	atomic_init(&tmpl->kmod_wset_state, info.wset_pages ? WSET_SET : WSET_NONE);
	kmod_template_pool(tmpl);
	return 0;
}

int kmod_template_persist(struct kf_template *tmpl)
{
	struct kfork_template_key args = { .size = sizeof(args) };

	memcpy(args.key, tmpl->file_key, sizeof(args.key));
	if (ioctl(tmpl->kmod_fd, KFORK_TEMPLATE_PERSIST, &args) < 0) {
		if (errno == EEXIST || errno == EBUSY)
			return kf_reject(-EEXIST, "kfork.ko keeps %s already", tmpl->name);
		if (errno == ENOTTY)
			return kf_reject(-ENOTSUP, "kfork.ko is too old to keep templates (no KFORK_TEMPLATE_PERSIST)");
		return kf_fail(-errno, "KFORK_TEMPLATE_PERSIST of %s", tmpl->name);
	}
	tmpl->attached = 1;
	return 0;
}

/* key NULL: every persistent template of this user. Returns how many went. */
int kmod_template_remove(const uint8_t *key, const char *name)
{
	int ret = kmod_key_ioctl(KFORK_TEMPLATE_REMOVE, key ? 0 : KFORK_REMOVE_ALL, key);

	if (ret == -ENOENT)
		return kf_reject(ret, "kfork.ko keeps no template for %s", name);
	if (ret == -ENOTTY)
		return kf_reject(-ENOTSUP, "kfork.ko is too old to keep templates (no KFORK_TEMPLATE_REMOVE)");
	if (ret < 0)
		return kf_fail(ret, "KFORK_TEMPLATE_REMOVE of %s", name);
	return ret;
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

/*
 * The template's working set, learnt from the first clone that ran code
 * (clone_working_set()), unless the template file brought one. The module
 * maps that set in every later clone.
 */
void kmod_clone_learn(struct kf_clone *clone)
{
	struct kf_template *tmpl = clone->tmpl;
	int expected = WSET_NONE;
	uint64_t *wset, n;

	/*
	 * Not in a child fork()ed after the open: it may be sandboxed, and the
	 * pagemap the template opened is its parent's.
	 */
	if (!clone->vm.exits || tmpl->pagemap_fd < 0 || tmpl->pagemap_pid != getpid() ||
	    !atomic_compare_exchange_strong(&tmpl->kmod_wset_state, &expected, WSET_RECORDING))
		return;
	if (!clone_working_set(clone, &wset, &n)) {
		int err = kmod_template_set_wset(tmpl, wset, n);

		free(wset);
		if (!err || err == -EEXIST) {
			atomic_store(&tmpl->kmod_wset_state, WSET_SET);
			return;
		}
	}
	atomic_store(&tmpl->kmod_wset_state, WSET_NONE);	/* try again with the next clone */
}
