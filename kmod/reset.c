// SPDX-License-Identifier: GPL-2.0-only
/* reset.c - return a clone to the template in place: rewrite only the pages it dirtied. */
#include <linux/bitmap.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/sched.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "internal.h"
#include "trace.h"

#define KFORK_RESET_BATCH	64	/* pages pinned at a time */

/*
 * Guest memory must still be our private writable mapping of the template;
 * otherwise the caller remapped it and the reset writes nowhere. The check is
 * advisory: the caller can remap it right after, and then only gets template
 * bytes written into its own writable memory (GUP honours the page tables).
 */
static int kfork_reset_check_mapping(struct kfork_clone *clone)
{
	struct mm_struct *mm = clone->kv->mm;
	unsigned long a = clone->kv->mem_addr, end = a + clone->tmpl->mem_size;
	int err = 0;

	mmap_read_lock(mm);
	while (a < end) {
		struct vm_area_struct *vma = vma_lookup(mm, a);

		/* Also at the right offset: a remap of another part of the file is not ours. */
		if (!vma || vma->vm_file != clone->tmpl->mem || !(vma->vm_flags & VM_WRITE) ||
		    (vma->vm_flags & VM_SHARED) ||
		    vma->vm_pgoff + ((a - vma->vm_start) >> PAGE_SHIFT) !=
		    (a - clone->kv->mem_addr) >> PAGE_SHIFT) {
			err = -EFAULT;
			break;
		}
		a = vma->vm_end;
	}
	mmap_read_unlock(mm);
	return err;
}

/*
 * Give guest pages [first, last) the template's contents again, in place:
 * copy each template page (from the template's page index) over the clone's
 * private copy, kernel to kernel. The pages stay mapped: no MMU-notifier
 * zap, no stage-2 or TLB flush, no refault and copy when the guest writes
 * them again, which a reused clone usually does. The clone's pages are
 * pinned in batches (FOLL_WRITE: a page still shared with the template is
 * copied first, never written) and unpinned dirty, since we wrote them.
 */
static int kfork_reset_restore(struct kfork_clone *clone, unsigned long first, unsigned long last)
{
	struct page *pages[KFORK_RESET_BATCH];

	while (first < last) {
		unsigned long addr = clone->kv->mem_addr + (first << PAGE_SHIFT);
		unsigned int nr = min_t(unsigned long, last - first, KFORK_RESET_BATCH);
		int got, i;

		got = pin_user_pages_fast(addr, nr, FOLL_WRITE, pages);
		if (got <= 0)
			return got ? got : -EFAULT;
		for (i = 0; i < got; i++)
			copy_highpage(pages[i], clone->tmpl->pages[first + i]);
		unpin_user_pages_dirty_lock(pages, got, true);
		first += got;
		cond_resched();
	}
	return 0;
}

/*
 * A vCPU stopped at a port or MMIO exit still has KVM's completion of that
 * exit pending (complete_userspace_io): the next KVM_RUN would first finish
 * the old instruction (write RAX, advance RIP) over the state we restore.
 * KVM_RUN with immediate_exit runs that completion and returns -EINTR before
 * any guest instruction (KVM's own recipe for a consistent state to save).
 * A multi-part MMIO completion returns 0 to ask for more; a few rounds end it.
 */
static int kfork_reset_complete_io(struct kfork_clone *clone)
{
	struct kvm_vcpu *vcpu = clone->kv->vcpu->private_data;
	long ret = 0;
	int round;

	WRITE_ONCE(kfork_run_immediate_exit(vcpu->run), 1);
	for (round = 0; round < 8; round++) {
		ret = kfork_kvm_ioctl(clone->kv->vcpu, KVM_RUN, 0);
		if (ret)
			break;
	}
	WRITE_ONCE(kfork_run_immediate_exit(vcpu->run), 0);
	if (ret == -EINTR)
		return 0;
	return ret ? ret : -EBUSY;
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
	struct kfork_scratch tmp = {}, *s = &clone->kv->scratch;
	unsigned long *bitmap, first, last;
	u32 usize;
	int err;

	err = kfork_copy_args(&args, sizeof(args), uarg,
			      offsetofend(struct kfork_clone_reset, flags), &usize);
	if (err)
		return err;
	if (args.flags & ~KFORK_RESET_FLAGS)
		return -EINVAL;
	/* KVM refuses VM ioctls from another mm anyway; say so first. */
	if (current->mm != clone->kv->mm)
		return -EPERM;

	bitmap = kvzalloc(bytes, GFP_KERNEL_ACCOUNT);
	if (!bitmap)
		return -ENOMEM;
	/* A clone whose caller could not be told of its scratch buffer gets one per reset. */
	if (!s->addr) {
		s = &tmp;
		err = kfork_scratch_map(s, tmpl->scratch_len);
		if (err)
			goto free_bitmap;
	}
	err = kfork_reset_complete_io(clone);
	if (err)
		goto unmap_scratch;
	err = kfork_reset_dirty_log(clone, s, bitmap, bytes);
	if (err)
		goto unmap_scratch;
	err = kfork_reset_check_mapping(clone);
	if (err)
		goto unmap_scratch;
	args.pages_reset = bitmap_weight(bitmap, npages);
	*pages = args.pages_reset;
	for_each_set_bitrange(first, last, bitmap, npages) {
		err = kfork_reset_restore(clone, first, last);
		if (err)
			goto unmap_scratch;
	}
	err = kfork_state_restore(tmpl, clone->kv->vm, clone->kv->vcpu, s, true);
	if (err)
		goto unmap_scratch;
	/* Every mapping survived: nothing to prefault. */
	args.prefaulted = 0;
	atomic64_inc(&tmpl->resets);
	atomic64_inc(&kfork_total_resets);
	atomic64_add(args.pages_reset, &tmpl->pages_copied);
	if (copy_to_user(uarg, &args, min_t(u32, usize, sizeof(args))))
		err = -EFAULT;

unmap_scratch:
	kfork_scratch_unmap(&tmp);
free_bitmap:
	kvfree(bitmap);
	return err;
}

long kfork_clone_reset(struct kfork_clone *clone, void __user *uarg)
{
	struct kfork_template *tmpl = clone->tmpl;
	u64 t0 = ktime_get_ns(), pages = 0;
	long err;

	if (mutex_lock_killable(&clone->reset_lock))
		return -EINTR;
	err = kfork_clone_reset_pages(clone, uarg, &pages);
	mutex_unlock(&clone->reset_lock);
	if (err)
		kfork_template_count_failure(tmpl, err);
	trace_kfork_reset(tmpl->id, clone->id, err, pages, ktime_get_ns() - t0);
	kfork_netlink_event(tmpl, KFORK_EVENT_RESET, clone->id, err, ktime_get_ns() - t0, pages);
	return err;
}
