// SPDX-License-Identifier: GPL-2.0-only
/* prefault.c - map the template's working set in a clone's host and stage-2 page tables. */
#include <linux/kvm_host.h>
#include <linux/sched/signal.h>
#include <linux/task_work.h>

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
		get_user_pages(mem_addr + (gfn << PAGE_SHIFT), len, write ? FOLL_WRITE : 0, NULL,
			       NULL);
		mmap_read_unlock(mm);
		cond_resched();
	}
}

/*
 * One kvm_mmu_page_fault() per page does what the guest's first touch would:
 * get_user_pages() on the clone's mapping (host PTE; a write copies the
 * page), then the stage-2 entry. Only gfns inside a memory slot are passed,
 * so KVM never decides to emulate an instruction.
 */
int kfork_prefault(struct kfork_template *tmpl, struct file *vcpu_file, unsigned long mem_addr,
		   u64 *done)
{
	struct kvm_vcpu *vcpu = vcpu_file->private_data;
	/* Pairs with cmpxchg_release() in kfork_template_set_wset(). */
	const u64 *wset = smp_load_acquire(&tmpl->wset);
	u32 i, n;
	int idx, ret = 0;

	*done = 0;
	if (!wset)
		return 0;
	n = READ_ONCE(tmpl->wset_len);
	kfork_prefault_host(wset, n, mem_addr);
	if (!VALID_PAGE(READ_ONCE(vcpu->arch.mmu->root.hpa)))
		kfork_mmu_load(vcpu_file);
	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	vcpu_load(vcpu);
	idx = srcu_read_lock(&vcpu->kvm->srcu);
	/* Halted vCPUs never reach the root load; shadow paging has no gpa faults. */
	if (!VALID_PAGE(vcpu->arch.mmu->root.hpa) || !vcpu->arch.mmu->root_role.direct)
		goto unlock;
	for (i = 0; i < n; i++) {
		bool write = wset[i] & KFORK_WSET_WRITE;
		gfn_t gfn = wset[i] & KFORK_WSET_GFN_MASK;
		struct kvm_memory_slot *slot;

		slot = gfn_to_memslot(vcpu->kvm, gfn);
		if (!slot || (slot->flags & KVM_MEMSLOT_INVALID))
			continue;
		ret = kvm_mmu_page_fault(vcpu, gfn_to_gpa(gfn), write ? PFERR_WRITE_MASK : 0,
					 NULL, 0);
		if (ret < 0)
			break;
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
