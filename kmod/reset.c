// SPDX-License-Identifier: GPL-2.0-only
/* reset.c - return a clone to the template in place: drop only its dirtied pages. */
#include <linux/bitmap.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

#include "internal.h"
#include "trace.h"

/*
 * Zap [first, last) guest pages of the clone's mapping: the copies go, the
 * next touch maps the template's page again, and KVM's MMU notifier drops
 * the stage-2 entries of just this range. The range must still be our
 * mapping: the caller may have unmapped or replaced any part of it.
 */
static int kfork_reset_zap(struct kfork_clone *clone, unsigned long first, unsigned long last)
{
	unsigned long addr = clone->kv->mem_addr + (first << PAGE_SHIFT);
	unsigned long end = clone->kv->mem_addr + (last << PAGE_SHIFT);
	struct mm_struct *mm = clone->kv->mm;
	int err = 0;

	mmap_read_lock(mm);
	while (addr < end) {
		struct vm_area_struct *vma = vma_lookup(mm, addr);
		unsigned long len;

		if (!vma || vma->vm_file != clone->tmpl->mem || !(vma->vm_flags & VM_WRITE) ||
		    (vma->vm_flags & VM_SHARED)) {
			err = -EFAULT;
			break;
		}
		len = min(end, vma->vm_end) - addr;
		zap_page_range(vma, addr, len);
		addr += len;
	}
	mmap_read_unlock(mm);
	return err;
}

/* KVM_GET_DIRTY_LOG returns and clears the slot's log: the pages dirtied since the last call. */
static int kfork_reset_dirty_log(struct kfork_clone *clone, struct kfork_scratch *s,
				 unsigned long *bitmap, size_t bytes)
{
	struct kvm_dirty_log log = { .slot = 0, .padding2 = s->addr + 64 };
	long err;

	if (64 + bytes > s->len)
		return -E2BIG;
	err = kfork_kvm_ioctl_buf(clone->kv->vm, KVM_GET_DIRTY_LOG, s, &log, sizeof(log));
	if (err)
		return err;
	if (copy_from_user(bitmap, (void __user *)s->addr + 64, bytes))
		return -EFAULT;
	return 0;
}

static long kfork_clone_reset_pages(struct kfork_clone *clone, void __user *uarg, u64 *pages)
{
	struct kfork_template *tmpl = clone->tmpl;
	unsigned long npages = tmpl->mem_size >> PAGE_SHIFT;
	size_t bytes = BITS_TO_LONGS(npages) * sizeof(long);
	struct kfork_clone_reset args;
	struct kfork_scratch s = {};
	unsigned long *bitmap, first, last;
	u32 usize;
	int err;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	if (usize < offsetofend(struct kfork_clone_reset, flags) || usize > PAGE_SIZE)
		return -EINVAL;
	err = copy_struct_from_user(&args, sizeof(args), uarg, usize);
	if (err)
		return err == -E2BIG ? -EINVAL : err;
	if (args.flags & ~KFORK_RESET_FLAGS)
		return -EINVAL;
	/* KVM refuses VM ioctls from another mm anyway; say so first. */
	if (current->mm != clone->kv->mm)
		return -EPERM;

	bitmap = kvzalloc(bytes, GFP_KERNEL_ACCOUNT);
	if (!bitmap)
		return -ENOMEM;
	err = kfork_scratch_map(&s, tmpl->scratch_len);
	if (err)
		goto free_bitmap;
	err = kfork_reset_dirty_log(clone, &s, bitmap, bytes);
	if (err)
		goto unmap_scratch;
	args.pages_reset = bitmap_weight(bitmap, npages);
	*pages = args.pages_reset;
	for_each_set_bitrange(first, last, bitmap, npages) {
		err = kfork_reset_zap(clone, first, last);
		if (err)
			goto unmap_scratch;
	}
	err = kfork_state_restore(tmpl, clone->kv->vm, clone->kv->vcpu, &s, true);
	if (err)
		goto unmap_scratch;
	args.prefaulted = 0;
	if (!(args.flags & KFORK_RESET_NO_PREFAULT)) {
		err = kfork_prefault(tmpl, clone->kv->vcpu, bitmap, &args.prefaulted);
		if (err)
			goto unmap_scratch;
	}
	atomic64_inc(&tmpl->resets);
	atomic64_add(args.pages_reset, &tmpl->pages_copied);
	if (copy_to_user(uarg, &args, min_t(u32, usize, sizeof(args))))
		err = -EFAULT;

unmap_scratch:
	kfork_scratch_unmap(&s);
free_bitmap:
	kvfree(bitmap);
	return err;
}

long kfork_clone_reset(struct kfork_clone *clone, void __user *uarg)
{
	struct kfork_template *tmpl = clone->tmpl;
	u64 t0 = ktime_get_ns(), pages = 0;
	long err;

	err = kfork_clone_reset_pages(clone, uarg, &pages);
	if (err)
		kfork_template_count_failure(tmpl, err);
	trace_kfork_reset(tmpl->id, clone->id, err, pages, ktime_get_ns() - t0);
	kfork_netlink_event(tmpl, KFORK_EVENT_RESET, clone->id, err, ktime_get_ns() - t0, pages);
	return err;
}
