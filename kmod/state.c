// SPDX-License-Identifier: GPL-2.0-only
/* state.c - restores the frozen machine state (state_parse.c) with KVM's own ioctl handlers. */
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/msr-index.h>

#include "internal.h"

/*
 * KVM's ioctl handlers are called as the ioctl(2) path calls them, in the
 * caller's task and mm: they do their own locking and validation, and the
 * ones that create objects install the fd in the caller. That keeps kfork on
 * KVM's stable ABI rather than on its internals.
 */
long kfork_kvm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	if (!file->f_op->unlocked_ioctl)
		return -ENOTTY;
	return file->f_op->unlocked_ioctl(file, cmd, arg);
}

/* The handlers copy_from_user() their argument: give them a buffer in the caller's mm. */
int kfork_scratch_map(struct kfork_scratch *s, u32 len)
{
	unsigned long addr;

	len = PAGE_ALIGN(len);
	addr = vm_mmap(NULL, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
	if (IS_ERR_VALUE(addr))
		return (int)addr;
	s->addr = addr;
	s->len = len;
	return 0;
}

void kfork_scratch_unmap(struct kfork_scratch *s)
{
	if (s->addr)
		vm_munmap(s->addr, s->len);
	s->addr = 0;
}

long kfork_kvm_ioctl_buf(struct file *file, unsigned int cmd, struct kfork_scratch *s,
			 const void *arg, u32 len)
{
	if (len > s->len)
		return -E2BIG;
	if (copy_to_user((void __user *)s->addr, arg, len))
		return -EFAULT;
	return kfork_kvm_ioctl(file, cmd, s->addr);
}

static int kfork_state_set(int tag, const void *data, u32 len, struct file *vm, struct file *vcpu,
			   struct kfork_scratch *s)
{
	const struct kfork_state_desc *d = &kfork_state_table[tag];
	long ret;

	if (tag == KFORK_STATE_XSAVE) {
		/* Zero what KVM reads past the item (its XSAVE2 size may be larger). */
		if (len + KFORK_XSAVE_SLACK > s->len)
			return -E2BIG;
		if (clear_user((void __user *)s->addr + len, KFORK_XSAVE_SLACK))
			return -EFAULT;
	}
	ret = kfork_kvm_ioctl_buf(d->vm_scope ? vm : vcpu, d->set, s, data, len);
	if (ret < 0) {
		pr_debug("kfork: KVM_SET_%s: %ld\n", d->name, ret);
		return ret;
	}
	if (tag == KFORK_STATE_MSRS && ret != ((const struct kvm_msrs *)data)->nmsrs)
		return -EINVAL;	/* KVM refused an MSR */
	return 0;
}

/* Hyper-V's MSRs: unreachable by a guest without Hyper-V in its CPUID (vmm/state.c). */
#define KFORK_MSR_HYPERV_FIRST	0x40000000
#define KFORK_MSR_HYPERV_LAST	0x400000ff

static bool kfork_state_has_msr(const struct kfork_state *st, u32 index)
{
	const struct kvm_msrs *msrs = st->item[KFORK_STATE_MSRS];
	u32 i;

	for (i = 0; i < msrs->nmsrs; i++)
		if (msrs->entries[i].index == index)
			return true;
	return false;
}

/* KVM_GET_MSR_INDEX_LIST into a kmalloc'd list; *n entries. */
static u32 *kfork_state_msr_list(struct kfork_template *tmpl, struct kfork_scratch *s, u32 *n)
{
	struct kvm_msr_list head = { .nmsrs = 0 };
	u32 __user *uindices = (u32 __user *)(s->addr + sizeof(head));
	u32 *list;
	long ret;

	ret = kfork_kvm_ioctl_buf(tmpl->kvm_dev, KVM_GET_MSR_INDEX_LIST, s, &head, sizeof(head));
	if (ret != -E2BIG || copy_from_user(&head, (void __user *)s->addr, sizeof(head)))
		return NULL;
	if (!head.nmsrs || sizeof(head) + head.nmsrs * sizeof(u32) > s->len)
		return NULL;
	ret = kfork_kvm_ioctl_buf(tmpl->kvm_dev, KVM_GET_MSR_INDEX_LIST, s, &head, sizeof(head));
	if (ret)
		return NULL;
	list = kmalloc_array(head.nmsrs, sizeof(u32), GFP_KERNEL_ACCOUNT);
	if (list && copy_from_user(list, uindices, head.nmsrs * sizeof(u32))) {
		kfree(list);
		return NULL;
	}
	*n = head.nmsrs;
	return list;
}

/* One MSR of the fresh vCPU that it also takes back: a default worth restoring. */
static bool kfork_state_msr_default(struct file *vcpu, struct kfork_scratch *s, u32 index,
				    struct kvm_msr_entry *out)
{
	struct {
		struct kvm_msrs head;
		struct kvm_msr_entry e;
	} one = { .head.nmsrs = 1, .e.index = index };

	if (kfork_kvm_ioctl_buf(vcpu, KVM_GET_MSRS, s, &one, sizeof(one)) != 1 ||
	    copy_from_user(&one, (void __user *)s->addr, sizeof(one)))
		return false;
	if (kfork_kvm_ioctl_buf(vcpu, KVM_SET_MSRS, s, &one, sizeof(one)) != 1)
		return false;
	*out = one.e;
	return true;
}

/*
 * Every MSR KVM lists that the template does not carry, as a fresh vCPU of
 * this CPUID holds it: a guest may have written one (say the legacy kvmclock
 * MSR, which makes KVM write guest memory) and a reset must undo that. The
 * TSC is left alone (KVM derives it from the clock the template restores).
 */
static int kfork_state_capture_msrs(struct kfork_template *tmpl, struct file *vcpu,
				    struct kfork_scratch *s)
{
	struct kfork_state_defaults *d = &tmpl->defaults;
	u32 *list, n = 0, i, kept = 0;

	list = kfork_state_msr_list(tmpl, s, &n);
	if (!list)
		return 0;	/* nothing listed, nothing to add */
	d->msrs = kzalloc(struct_size(d->msrs, entries, n), GFP_KERNEL_ACCOUNT);
	if (!d->msrs) {
		kfree(list);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		u32 index = list[i];

		if (index == MSR_IA32_TSC || kfork_state_has_msr(&tmpl->state, index) ||
		    (index >= KFORK_MSR_HYPERV_FIRST && index <= KFORK_MSR_HYPERV_LAST))
			continue;
		if (kfork_state_msr_default(vcpu, s, index, &d->msrs->entries[kept]))
			kept++;
	}
	kfree(list);
	d->msrs->nmsrs = kept;
	d->msrs_len = struct_size(d->msrs, entries, kept);
	if (!kept) {
		kfree(d->msrs);
		d->msrs = NULL;
	}
	return 0;
}

/* An optional item the template lacks, read from the fresh vCPU if KVM takes it back. */
static int kfork_state_capture_item(struct kfork_template *tmpl, int tag, struct file *vcpu,
				    struct kfork_scratch *s)
{
	const struct kfork_state_desc *d = &kfork_state_table[tag];
	u32 len = d->size ? d->size : sizeof(struct kvm_xsave);
	void *data;

	if (len > s->len || kfork_kvm_ioctl(vcpu, d->get, s->addr) < 0)
		return 0;	/* KVM lacks it: nothing a run could leave there */
	data = kmalloc(len, GFP_KERNEL_ACCOUNT);
	if (!data)
		return -ENOMEM;
	if (copy_from_user(data, (void __user *)s->addr, len)) {
		kfree(data);
		return -EFAULT;
	}
	/* No XCRs to set (a CPU without XSAVE): KVM_SET_XCRS of none is EINVAL. */
	if ((tag == KFORK_STATE_XCRS && !((struct kvm_xcrs *)data)->nr_xcrs) ||
	    kfork_state_set(tag, data, len, NULL, vcpu, s)) {
		kfree(data);
		return 0;
	}
	tmpl->defaults.item[tag] = data;
	tmpl->defaults.item_len[tag] = len;
	return 0;
}

/*
 * A fresh vCPU's nested state (not in guest mode, GIF set), if KVM does
 * nested virtualisation: a guest given SVM or VMX in its CPUID can enter
 * its own L2, and KVM_SET_REGS/SREGS would then write L2's state, not undo it.
 */
static int kfork_state_capture_nested(struct kfork_template *tmpl, struct file *vcpu,
				      struct kfork_scratch *s)
{
	long size = kfork_kvm_ioctl(tmpl->kvm_dev, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
	struct kvm_nested_state hdr = { .size = size };
	void *data;

	if (size < (long)sizeof(hdr) || size > s->len ||
	    kfork_kvm_ioctl_buf(vcpu, KVM_GET_NESTED_STATE, s, &hdr, sizeof(hdr)) ||
	    copy_from_user(&hdr, (void __user *)s->addr, sizeof(hdr)) ||
	    hdr.size < sizeof(hdr) || hdr.size > size)
		return 0;
	data = kmalloc(hdr.size, GFP_KERNEL_ACCOUNT);
	if (!data)
		return -ENOMEM;
	if (copy_from_user(data, (void __user *)s->addr, hdr.size) ||
	    kfork_kvm_ioctl_buf(vcpu, KVM_SET_NESTED_STATE, s, data, hdr.size)) {
		kfree(data);
		return 0;
	}
	tmpl->defaults.nested = data;
	tmpl->defaults.nested_len = hdr.size;
	return 0;
}

/* Once per template, from a vCPU that has its CPUID and nothing else yet. */
int kfork_state_capture_defaults(struct kfork_template *tmpl, struct file *vcpu,
				 struct kfork_scratch *s)
{
	int tag, err = 0;

	if (mutex_lock_killable(&tmpl->defaults_lock))
		return -EINTR;
	if (tmpl->defaults_ready)
		goto unlock;
	for (tag = KFORK_STATE_CPUID + 1; tag < KFORK_STATE_UART && !err; tag++)
		if (kfork_state_table[tag].get && !tmpl->state.item[tag])
			err = kfork_state_capture_item(tmpl, tag, vcpu, s);
	if (!err)
		err = kfork_state_capture_msrs(tmpl, vcpu, s);
	if (!err)
		err = kfork_state_capture_nested(tmpl, vcpu, s);
	if (err)
		kfork_state_free_defaults(&tmpl->defaults);
	else	/* Pairs with smp_load_acquire() in kfork_state_restore(). */
		smp_store_release(&tmpl->defaults_ready, true);
unlock:
	mutex_unlock(&tmpl->defaults_lock);
	return err;
}

void kfork_state_free_defaults(struct kfork_state_defaults *d)
{
	int tag;

	for (tag = 0; tag < KFORK_STATE_MAX; tag++) {
		kfree(d->item[tag]);
		d->item[tag] = NULL;
	}
	kfree(d->msrs);
	d->msrs = NULL;
	kfree(d->nested);
	d->nested = NULL;
}

/*
 * Before anything else of an in-place restore: out of L2 and out of SMM
 * (VCPU_EVENTS' smm flag), so that what follows lands in the vCPU's own
 * state as it does in a fresh one.
 */
static int kfork_state_leave_modes(struct kfork_template *tmpl, struct file *vcpu,
				   struct kfork_scratch *s)
{
	const struct kfork_state_defaults *d = &tmpl->defaults;
	const struct kfork_state *st = &tmpl->state;
	int tag = KFORK_STATE_VCPU_EVENTS, err = 0;
	long ret;

	if (d->nested) {
		ret = kfork_kvm_ioctl_buf(vcpu, KVM_SET_NESTED_STATE, s, d->nested, d->nested_len);
		if (ret)
			return ret;
	}
	if (st->item[tag])
		err = kfork_state_set(tag, st->item[tag], st->item_len[tag], NULL, vcpu, s);
	else if (d->item[tag])
		err = kfork_state_set(tag, d->item[tag], d->item_len[tag], NULL, vcpu, s);
	return err;
}

/*
 * in_place: the vCPU has run (a reset, or a pool entry built a while ago).
 * It keeps its CPUID (KVM refuses to change it), and whatever the template
 * does not set gets a fresh vCPU's value (defaults), so nothing of the
 * previous run survives. A fresh vCPU has those values already.
 */
int kfork_state_restore(struct kfork_template *tmpl, struct file *vm, struct file *vcpu,
			struct kfork_scratch *s, bool in_place)
{
	const struct kfork_state *st = &tmpl->state;
	const struct kfork_state_defaults *d = &tmpl->defaults;
	int tag, err = 0;

	if (in_place) {
		err = kfork_state_leave_modes(tmpl, vcpu, s);
		if (err)
			return err;
	}
	for (tag = KFORK_STATE_CPUID; tag < KFORK_STATE_UART && !err; tag++) {
		if (tag == KFORK_STATE_CPUID) {
			if (in_place)
				continue;
			err = kfork_state_set(tag, st->item[tag], st->item_len[tag], vm, vcpu, s);
			/* Pairs with smp_store_release() in kfork_state_capture_defaults(). */
			if (!err && !smp_load_acquire(&tmpl->defaults_ready))
				err = kfork_state_capture_defaults(tmpl, vcpu, s);
		} else if (st->item[tag]) {
			err = kfork_state_set(tag, st->item[tag], st->item_len[tag], vm, vcpu, s);
		} else if (in_place && d->item[tag]) {
			err = kfork_state_set(tag, d->item[tag], d->item_len[tag], vm, vcpu, s);
		}
		if (!err && tag == KFORK_STATE_MSRS && in_place && d->msrs)
			err = kfork_state_set(tag, d->msrs, d->msrs_len, vm, vcpu, s);
	}
	return err;
}
