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
#include <linux/uaccess.h>

#include "internal.h"

/* Where libkfork's VMM puts them (vmm/vm.h): below 4 GiB, outside RAM. */
#define KFORK_TSS_ADDR		0xfffbd000UL
#define KFORK_IDMAP_ADDR	0xfffbc000ULL

static long kfork_clone_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case KFORK_CLONE_RESET:
		return kfork_clone_reset(file->private_data, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static int kfork_clone_release(struct inode *inode, struct file *file)
{
	struct kfork_clone *clone = file->private_data;
	struct kfork_template *tmpl = clone->tmpl;

	fput(clone->vcpu);
	fput(clone->vm);
	mmdrop(clone->mm);
	kfree(clone);
	atomic_dec(&tmpl->live_clones);
	atomic64_dec(&kfork_live_clones);
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
 * table, and takes our own reference to the file behind it.
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
	*filep = file;
	return fd;
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

int kfork_clone_spawn(struct kfork_template *tmpl, u32 flags, struct kfork_scratch *s,
		      struct kfork_spawn_out *out)
{
	struct kfork_clone *clone;
	long run_size;
	int err;

	if (atomic_inc_return(&tmpl->live_clones) > tmpl->max_clones) {
		err = -ENOSPC;
		goto uncount;
	}
	clone = kzalloc(sizeof(*clone), GFP_KERNEL_ACCOUNT);
	if (!clone) {
		err = -ENOMEM;
		goto uncount;
	}
	/* Private mapping of the sealed template: reads share its pages, writes copy. */
	out->mem_addr = vm_mmap(tmpl->mem, 0, tmpl->mem_size, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_NORESERVE, 0);
	if (IS_ERR_VALUE(out->mem_addr)) {
		err = (int)out->mem_addr;
		goto free_clone;
	}
	err = kfork_kvm_create(tmpl->kvm_dev, KVM_CREATE_VM, "kvm-vm", false, &clone->vm);
	if (err < 0)
		goto unmap_mem;
	out->vm_fd = err;
	err = kfork_vm_setup(tmpl, clone->vm, out->mem_addr, s);
	if (err)
		goto close_vm;
	err = kfork_kvm_create(clone->vm, KVM_CREATE_VCPU, "kvm-vcpu:", true, &clone->vcpu);
	if (err < 0)
		goto close_vm;
	out->vcpu_fd = err;
	if (((struct kvm_vcpu *)clone->vcpu->private_data)->kvm != clone->vm->private_data) {
		err = -EBUSY;
		goto close_vcpu;
	}
	run_size = kfork_kvm_ioctl(tmpl->kvm_dev, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0) {
		err = run_size ? run_size : -EINVAL;
		goto close_vcpu;
	}
	out->run_size = run_size;
	out->run_addr = vm_mmap(clone->vcpu, 0, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	if (IS_ERR_VALUE(out->run_addr)) {
		err = (int)out->run_addr;
		goto close_vcpu;
	}
	err = kfork_state_restore(tmpl, clone->vm, clone->vcpu, s, false);
	if (err)
		goto unmap_run;
	out->prefaulted = 0;
	if (!(flags & KFORK_SPAWN_NO_PREFAULT)) {
		err = kfork_prefault(tmpl, clone->vcpu, NULL, &out->prefaulted);
		if (err)
			goto unmap_run;
	}

	clone->tmpl = tmpl;
	clone->mm = current->mm;
	clone->mem_addr = out->mem_addr;
	clone->id = atomic64_inc_return(&tmpl->next_id);
	out->clone_id = clone->id;
	kref_get(&tmpl->ref);
	mmgrab(clone->mm);
	atomic64_inc(&kfork_live_clones);
	/* Last: once installed, the fd is the caller's and cannot be taken back. */
	err = anon_inode_getfd("kfork-clone", &kfork_clone_fops, clone, O_RDWR | O_CLOEXEC);
	if (err < 0) {
		atomic64_dec(&kfork_live_clones);
		mmdrop(clone->mm);
		/* Never the last reference: the caller's template fd holds one. */
		kfork_template_put(tmpl);
		goto unmap_run;
	}
	out->clone_fd = err;
	return 0;

unmap_run:
	vm_munmap(out->run_addr, out->run_size);
close_vcpu:
	fput(clone->vcpu);
	close_fd(out->vcpu_fd);
close_vm:
	fput(clone->vm);
	close_fd(out->vm_fd);
unmap_mem:
	vm_munmap(out->mem_addr, tmpl->mem_size);
free_clone:
	kfree(clone);
uncount:
	atomic_dec(&tmpl->live_clones);
	return err;
}
