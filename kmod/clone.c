// SPDX-License-Identifier: GPL-2.0-only
/* clone.c - spawn: VM, CoW memory, vCPU and state in the caller, in one ioctl; the clone fd. */
#include <linux/anon_inodes.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

#include "internal.h"
#include "trace.h"

/* Where libkfork's VMM puts them (vmm/vm.h): below 4 GiB, outside RAM. */
#define KFORK_TSS_ADDR		0xfffbd000UL
#define KFORK_IDMAP_ADDR	0xfffbc000ULL

static long kfork_clone_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	/* By number alone, as kfork_dev_ioctl(): the struct's size field versions it. */
	if (_IOC_TYPE(cmd) != KFORK_IOC)
		return -ENOTTY;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(KFORK_CLONE_RESET):
		return kfork_clone_reset(file->private_data, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

/*
 * The caller's mappings and fds stay the caller's. A release in the process
 * that spawned the clone (not at its exit: the mm is gone by then) builds a
 * pool entry in its place, off the next spawn's path.
 */
static int kfork_clone_release(struct inode *inode, struct file *file)
{
	struct kfork_clone *clone = file->private_data;
	struct kfork_template *tmpl = clone->tmpl;
	bool refill = current->mm == clone->kv->mm;

	trace_kfork_clone_destroy(tmpl->id, clone->id);
	kfork_vm_put(clone->kv);
	atomic_dec(&tmpl->live_clones);
	atomic64_dec(&kfork_live_clones);
	kfork_netlink_event(tmpl, KFORK_EVENT_DESTROY, clone->id, 0, 0, 0);
	kfree(clone);
	if (refill)
		kfork_pool_refill(tmpl);
	kfork_template_put(tmpl);
	return 0;
}

static const struct file_operations kfork_clone_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = kfork_clone_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = kfork_clone_release,
	.llseek = noop_llseek,
};

/*
 * Runs an object-creating KVM ioctl, which installs a new fd in the caller's
 * table, takes our own reference to the file behind it and closes the fd:
 * the caller gets fresh fds only once the clone is complete. While the fd is
 * in the table another thread of the caller can reach it; if it still holds
 * the file once the fd is closed (a dup, pidfd_getfd, an ioctl in flight),
 * the build is refused. What such a thread did and dropped already cannot be
 * seen here: prefault.c checks the VM before it relies on it.
 */
static int kfork_kvm_create(struct file *parent, unsigned int cmd, const char *name,
			    bool prefix, struct file **filep)
{
	struct file *file;
	long fd;

	fd = kfork_kvm_ioctl(parent, cmd, 0);
	if (fd < 0)
		return fd;
	file = fget(fd);
	if (!file)
		return -EBADF;	/* another thread closed it already: not ours to close */
	if (!kfork_file_is_kvm(file, name, prefix)) {
		fput(file);
		return -EBUSY;	/* replaced by another thread: leave it alone */
	}
	close_fd(fd);
	if (file_count(file) != 1) {
		fput(file);
		return -EBUSY;
	}
	*filep = file;
	return 0;
}

/* The VM-wide setup libkfork's vm_create() does, in the same order (memory before irqchip). */
static int kfork_vm_setup(struct kfork_template *tmpl, struct file *vm, unsigned long mem_addr,
			  struct kfork_scratch *s)
{
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		/* The dirty log tells reset which pages to drop. */
		.flags = KVM_MEM_LOG_DIRTY_PAGES,
		.guest_phys_addr = 0,
		.memory_size = tmpl->mem_size,
		.userspace_addr = mem_addr,
	};
	struct kvm_pit_config pit = {};
	u64 idmap = KFORK_IDMAP_ADDR;
	long err;

	err = kfork_kvm_ioctl_buf(vm, KVM_SET_USER_MEMORY_REGION, s, &region, sizeof(region));
	if (!err)
		err = kfork_kvm_ioctl(vm, KVM_SET_TSS_ADDR, KFORK_TSS_ADDR);
	if (!err)
		err = kfork_kvm_ioctl_buf(vm, KVM_SET_IDENTITY_MAP_ADDR, s, &idmap, sizeof(idmap));
	if (!err)
		err = kfork_kvm_ioctl(vm, KVM_CREATE_IRQCHIP, 0);
	if (!err)
		err = kfork_kvm_ioctl_buf(vm, KVM_CREATE_PIT2, s, &pit, sizeof(pit));
	return err;
}

/* Drop our references; the mappings, if any are left, are the mm owner's. */
void kfork_vm_put(struct kfork_vm *kv)
{
	fput(kv->vcpu);
	fput(kv->vm);
	mmdrop(kv->mm);
	kfree(kv);
}

/* Free a VM nobody was handed: unmap what we mapped if we still can, then put. */
void kfork_vm_free(struct kfork_vm *kv, u64 mem_size)
{
	if (current->mm == kv->mm) {
		vm_munmap(kv->run_addr, kv->run_size);
		vm_munmap(kv->mem_addr, mem_size);
		kfork_scratch_unmap(&kv->scratch);
	}
	kfork_vm_put(kv);
}

/*
 * Build a clone's body in the calling process: scratch buffer, CoW mapping,
 * VM, vCPU, kvm_run mapping, machine state, working set. No fd of it is left
 * in the caller's table. t0: when the spawn began (tracepoints), 0 for a
 * pool fill.
 */
int kfork_vm_build(struct kfork_template *tmpl, u32 flags, struct kfork_vm *kv, u64 t0)
{
	struct kfork_scratch *s = &kv->scratch;
	long run_size;
	int err;

	err = kfork_scratch_map(s, tmpl->scratch_len);
	if (err)
		return err;
	/* Private mapping of the sealed template: reads share its pages, writes copy. */
	kv->mem_addr = vm_mmap(tmpl->mem, 0, tmpl->mem_size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_NORESERVE, 0);
	if (IS_ERR_VALUE(kv->mem_addr)) {
		err = (int)kv->mem_addr;
		goto unmap_scratch;
	}
	if (t0)
		trace_kfork_spawn_mem(tmpl->id, ktime_get_ns() - t0, 0);
	err = kfork_kvm_create(tmpl->kvm_dev, KVM_CREATE_VM, "kvm-vm", false, &kv->vm);
	if (err)
		goto unmap_mem;
	err = kfork_vm_setup(tmpl, kv->vm, kv->mem_addr, s);
	if (err)
		goto put_vm;
	if (t0)
		trace_kfork_spawn_vm(tmpl->id, ktime_get_ns() - t0, 0);
	err = kfork_kvm_create(kv->vm, KVM_CREATE_VCPU, "kvm-vcpu:", true, &kv->vcpu);
	if (err)
		goto put_vm;
	if (((struct kvm_vcpu *)kv->vcpu->private_data)->kvm != kv->vm->private_data) {
		err = -EBUSY;
		goto put_vcpu;
	}
	run_size = kfork_kvm_ioctl(tmpl->kvm_dev, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0) {
		err = run_size ? run_size : -EINVAL;
		goto put_vcpu;
	}
	kv->run_size = run_size;
	kv->run_addr = vm_mmap(kv->vcpu, 0, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	if (IS_ERR_VALUE(kv->run_addr)) {
		err = (int)kv->run_addr;
		goto put_vcpu;
	}
	if (t0)
		trace_kfork_spawn_vcpu(tmpl->id, ktime_get_ns() - t0, 0);
	err = kfork_state_restore(tmpl, kv->vm, kv->vcpu, s, false);
	if (err)
		goto unmap_run;
	if (t0)
		trace_kfork_spawn_state(tmpl->id, ktime_get_ns() - t0, 0);
	kv->prefaulted = 0;
	if (!(flags & KFORK_SPAWN_NO_PREFAULT)) {
		err = kfork_prefault(tmpl, kv->vcpu, kv->mem_addr, &kv->prefaulted);
		if (err)
			goto unmap_run;
		if (t0)
			trace_kfork_spawn_prefault(tmpl->id, ktime_get_ns() - t0, kv->prefaulted);
	}
	kv->mm = current->mm;
	mmgrab(kv->mm);
	return 0;

unmap_run:
	vm_munmap(kv->run_addr, kv->run_size);
put_vcpu:
	fput(kv->vcpu);
put_vm:
	fput(kv->vm);
unmap_mem:
	vm_munmap(kv->mem_addr, tmpl->mem_size);
unmap_scratch:
	kfork_scratch_unmap(s);
	return err;
}

/* A pool entry was built a while ago: bring its state (timers, clock) back to the template's. */
static struct kfork_vm *kfork_clone_take_pooled(struct kfork_template *tmpl, u32 flags, u64 t0)
{
	struct kfork_vm *kv;
	int err;

	/* Pool entries are prefaulted; a spawn without prefault wants what it asked for. */
	if (flags & KFORK_SPAWN_NO_PREFAULT)
		return NULL;
	kv = kfork_pool_take(tmpl);
	if (IS_ERR_OR_NULL(kv))
		return kv;
	err = kfork_state_restore(tmpl, kv->vm, kv->vcpu, &kv->scratch, true);
	if (err) {
		kfork_vm_free(kv, tmpl->mem_size);
		return ERR_PTR(err);
	}
	atomic64_inc(&tmpl->pool_hits);
	trace_kfork_spawn_pool(tmpl->id, ktime_get_ns() - t0, kv->prefaulted);
	return kv;
}

/*
 * give_scratch: the caller learns the scratch buffer's address and unmaps it
 * with the rest; otherwise it goes now and each reset maps its own.
 */
int kfork_clone_spawn(struct kfork_template *tmpl, u32 flags, bool give_scratch,
		      struct kfork_spawn_out *out)
{
	struct kfork_clone *clone;
	struct kfork_vm *kv;
	struct file *cfile;
	u64 t0 = out->t0;
	int err;

	trace_kfork_spawn_start(tmpl->id, 0, 0);
	if (atomic_inc_return(&tmpl->live_clones) > tmpl->max_clones) {
		err = -ENOSPC;
		goto uncount;
	}
	clone = kzalloc(sizeof(*clone), GFP_KERNEL_ACCOUNT);
	if (!clone) {
		err = -ENOMEM;
		goto uncount;
	}
	kv = kfork_clone_take_pooled(tmpl, flags, t0);
	if (IS_ERR(kv)) {
		err = PTR_ERR(kv);
		goto free_clone;
	}
	out->pooled = kv;
	if (!kv) {
		kv = kzalloc(sizeof(*kv), GFP_KERNEL_ACCOUNT);
		if (!kv) {
			err = -ENOMEM;
			goto free_clone;
		}
		err = kfork_vm_build(tmpl, flags, kv, t0);
		if (err) {
			kfree(kv);
			goto free_clone;
		}
	}
	/* Reserve every fd first: once one is installed it is the caller's for good. */
	out->vm_fd = get_unused_fd_flags(O_CLOEXEC);
	if (out->vm_fd < 0) {
		err = out->vm_fd;
		goto free_vm;
	}
	out->vcpu_fd = get_unused_fd_flags(O_CLOEXEC);
	if (out->vcpu_fd < 0) {
		err = out->vcpu_fd;
		goto put_vm_fd;
	}
	out->clone_fd = get_unused_fd_flags(O_CLOEXEC);
	if (out->clone_fd < 0) {
		err = out->clone_fd;
		goto put_vcpu_fd;
	}
	clone->tmpl = tmpl;
	clone->kv = kv;
	mutex_init(&clone->reset_lock);
	clone->id = atomic64_inc_return(&tmpl->next_id);
	cfile = anon_inode_getfile("kfork-clone", &kfork_clone_fops, clone, O_RDWR | O_CLOEXEC);
	if (IS_ERR(cfile)) {
		err = PTR_ERR(cfile);
		goto put_clone_fd;
	}
	if (!give_scratch)
		kfork_scratch_unmap(&kv->scratch);
	/* Never the last reference: the caller's template fd holds one. */
	kref_get(&tmpl->ref);
	atomic64_inc(&kfork_live_clones);
	fd_install(out->vm_fd, get_file(kv->vm));
	fd_install(out->vcpu_fd, get_file(kv->vcpu));
	fd_install(out->clone_fd, cfile);
	out->mem_addr = kv->mem_addr;
	out->run_addr = kv->run_addr;
	out->run_size = kv->run_size;
	out->scratch_addr = kv->scratch.addr;
	out->scratch_size = kv->scratch.len;
	out->prefaulted = kv->prefaulted;
	out->clone_id = clone->id;
	return 0;

put_clone_fd:
	put_unused_fd(out->clone_fd);
put_vcpu_fd:
	put_unused_fd(out->vcpu_fd);
put_vm_fd:
	put_unused_fd(out->vm_fd);
free_vm:
	kfork_vm_free(kv, tmpl->mem_size);
free_clone:
	kfree(clone);
uncount:
	atomic_dec(&tmpl->live_clones);
	return err;
}

/* Count, trace and announce a spawn once its outcome is final: the caller has it, or not. */
void kfork_clone_spawn_report(struct kfork_template *tmpl, const struct kfork_spawn_out *out,
			      int err)
{
	u64 ns = ktime_get_ns() - out->t0;

	/* An undone clone keeps its id here: its destroy event follows. */
	if (err) {
		atomic64_inc(&tmpl->spawn_failures);
		atomic64_inc(&kfork_total_spawn_failures);
		kfork_template_count_failure(tmpl, err);
		trace_kfork_spawn_done(tmpl->id, out->clone_id, err, ns, false);
		kfork_netlink_event(tmpl, KFORK_EVENT_SPAWN, out->clone_id, err, ns, 0);
		return;
	}
	atomic64_inc(&tmpl->spawns);
	atomic64_inc(&kfork_total_spawns);
	trace_kfork_spawn_done(tmpl->id, out->clone_id, 0, ns, out->pooled);
	kfork_netlink_event(tmpl, KFORK_EVENT_SPAWN, out->clone_id, 0, ns, out->prefaulted);
}
