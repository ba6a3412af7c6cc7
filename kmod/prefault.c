// SPDX-License-Identifier: GPL-2.0-only
/* prefault.c - map the template's working set in a clone's host and stage-2 page tables. */
#include <linux/kvm_host.h>
#include <linux/sched/signal.h>
#include <linux/task_work.h>

#include "compat.h"
#include "internal.h"

/*
 * 6.1 has no KVM_PRE_FAULT_MEMORY (6.10) and does not export kvm_mmu_load().
 * What it exports is kvm_mmu_page_fault(), KVM's own #NPF handler, which
 * needs the vCPU's MMU root. KVM loads the root in vcpu_enter_guest() just
 * before it checks for pending work; with TIF_NOTIFY_SIGNAL set (what
 * task_work_add(TWA_SIGNAL) sets) it then backs out with -EINTR and
 * KVM_EXIT_INTR before any guest instruction, exactly like a VMM whose
 * KVM_RUN is interrupted by a signal. The flag is ours to clear unless task
 * work arrived meanwhile.
 */
static void kfork_mmu_load(struct file *vcpu)
{
	bool was_set = test_and_set_thread_flag(TIF_NOTIFY_SIGNAL);

	kfork_kvm_ioctl(vcpu, KVM_RUN, 0);
	if (was_set)
		return;
	clear_thread_flag(TIF_NOTIFY_SIGNAL);
	/* Pairs with task_work_add(): see its work or let it see the flag clear. */
	smp_mb__after_atomic();
	if (task_work_pending(current))
		set_thread_flag(TIF_NOTIFY_SIGNAL);
}

/*
 * Host page tables first, a run of consecutive pages per get_user_pages()
 * call: KVM's fault below then finds each page mapped (its lockless fast
 * path) instead of taking mmap_lock and faulting it in one page at a time.
 * Nothing is pinned; what fails here is KVM's to fault (and report) below.
 */
static void kfork_prefault_host(const u64 *wset, u32 n, unsigned long mem_addr)
{
	struct mm_struct *mm = current->mm;
	u32 i = 0, len;

	for (; i < n && !fatal_signal_pending(current); i += len) {
		gfn_t gfn = wset[i] & KFORK_WSET_GFN_MASK;
		bool write = wset[i] & KFORK_WSET_WRITE;

		for (len = 1; i + len < n; len++)
			if ((wset[i + len] & KFORK_WSET_GFN_MASK) != gfn + len ||
			    !(wset[i + len] & KFORK_WSET_WRITE) != !write)
				break;
		mmap_read_lock(mm);
		kfork_gup_touch(mem_addr + (gfn << PAGE_SHIFT), len, write ? FOLL_WRITE : 0);
		mmap_read_unlock(mm);
		cond_resched();
	}
}

/*
 * The VM must be exactly what kfork_vm_setup() made: one user slot, ours,
 * in address space 0. Its fd was in the caller's table for a moment after
 * KVM_CREATE_VM, so a thread of the caller could have added a read-only or
 * MMIO-backed slot, or an SMM address space, where a fault would make KVM
 * emulate an instruction at a RIP the caller chose. Slots KVM makes for
 * itself (ids past KVM_USER_MEM_SLOTS) are KVM's business.
 */
static bool kfork_vm_is_ours(struct kvm *kvm, unsigned long mem_addr, u64 mem_size)
{
	struct kvm_memory_slot *slot;
	int as_id, bkt;

	for (as_id = 0; as_id < kfork_nr_memslot_as(kvm); as_id++) {
		kvm_for_each_memslot(slot, bkt, __kvm_memslots(kvm, as_id)) {
			if (slot->id >= KVM_USER_MEM_SLOTS)
				continue;
			if (as_id || slot->id || slot->flags != KVM_MEM_LOG_DIRTY_PAGES ||
			    slot->base_gfn || slot->npages != mem_size >> PAGE_SHIFT ||
			    slot->userspace_addr != mem_addr)
				return false;
		}
	}
	return true;
}

/*
 * One kvm_mmu_page_fault() per page does what the guest's first touch would:
 * get_user_pages() on the clone's mapping (host PTE; a write copies the
 * page), then the stage-2 entry. It runs outside KVM_RUN, so nothing may
 * lead KVM into its instruction emulator: only two-dimensional paging, a
 * vCPU neither in SMM nor in guest mode (L2), our own slot with no read-only
 * or invalid flag, and any result but "fixed" (1) stops the prefault and
 * fails the spawn. -EBUSY: the VM was not the one we built.
 */
int kfork_prefault(struct kfork_template *tmpl, struct file *vcpu_file, unsigned long mem_addr,
		   u64 *done)
{
	struct kvm_vcpu *vcpu = vcpu_file->private_data;
	/* Pairs with cmpxchg_release() in kfork_template_set_wset(). */
	const struct kfork_wset *wset = smp_load_acquire(&tmpl->wset);
	u32 i;
	int idx, ret = 0;

	*done = 0;
	if (!wset)
		return 0;
	kfork_prefault_host(wset->entries, wset->len, mem_addr);
	if (!VALID_PAGE(READ_ONCE(vcpu->arch.mmu->root.hpa)))
		kfork_mmu_load(vcpu_file);
	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	vcpu_load(vcpu);
	idx = srcu_read_lock(&vcpu->kvm->srcu);
	if (vcpu->arch.hflags & (HF_SMM_MASK | HF_GUEST_MASK) ||
	    !kfork_vm_is_ours(vcpu->kvm, mem_addr, tmpl->mem_size)) {
		ret = -EBUSY;
		goto unlock;
	}
	/* Halted vCPUs never reach the root load; shadow paging has no gpa faults. */
	if (!VALID_PAGE(vcpu->arch.mmu->root.hpa) || !vcpu->arch.mmu->root_role.direct)
		goto unlock;
	for (i = 0; i < wset->len; i++) {
		bool write = wset->entries[i] & KFORK_WSET_WRITE;
		gfn_t gfn = wset->entries[i] & KFORK_WSET_GFN_MASK;
		struct kvm_memory_slot *slot;

		slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu), gfn);
		if (!slot || slot->id ||
		    (slot->flags & (KVM_MEM_READONLY | KVM_MEMSLOT_INVALID))) {
			ret = -EBUSY;
			break;
		}
		ret = kvm_mmu_page_fault(vcpu, gfn_to_gpa(gfn), write ? PFERR_WRITE_MASK : 0,
					 NULL, 0);
		if (ret != 1) {
			ret = ret < 0 ? ret : -EFAULT;
			break;
		}
		ret = 0;
		(*done)++;
		if (!(i % 64)) {
			if (fatal_signal_pending(current)) {
				ret = -EINTR;
				break;
			}
			cond_resched();
		}
	}
unlock:
	srcu_read_unlock(&vcpu->kvm->srcu, idx);
	vcpu_put(vcpu);
	mutex_unlock(&vcpu->mutex);
	return ret;
}
