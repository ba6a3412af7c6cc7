// SPDX-License-Identifier: GPL-2.0-only
/* state.c - the frozen machine state: parse it once, restore it with KVM's own ioctl handlers. */
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "internal.h"

struct kfork_state_desc {
	const char *name;
	unsigned int set;	/* KVM_SET_* ioctl */
	u32 size;		/* fixed size, 0: variable */
	bool vm_scope;		/* VM ioctl, else vCPU */
	bool optional;
};

/* Indexed by tag; the tags are restored in this order (LAB.md's restore order). */
static const struct kfork_state_desc kfork_state_table[KFORK_STATE_MAX] = {
	[KFORK_STATE_CPUID] = { "CPUID", KVM_SET_CPUID2, 0, false, false },
	[KFORK_STATE_PIT2] = { "PIT2", KVM_SET_PIT2, sizeof(struct kvm_pit_state2), true,
			       false },
	[KFORK_STATE_CLOCK] = { "CLOCK", KVM_SET_CLOCK, sizeof(struct kvm_clock_data), true,
				false },
	[KFORK_STATE_PIC_MASTER] = { "PIC master", KVM_SET_IRQCHIP, sizeof(struct kvm_irqchip),
				     true, false },
	[KFORK_STATE_PIC_SLAVE] = { "PIC slave", KVM_SET_IRQCHIP, sizeof(struct kvm_irqchip),
				    true, false },
	[KFORK_STATE_IOAPIC] = { "IOAPIC", KVM_SET_IRQCHIP, sizeof(struct kvm_irqchip), true,
				 false },
	[KFORK_STATE_MP_STATE] = { "MP_STATE", KVM_SET_MP_STATE, sizeof(struct kvm_mp_state),
				   false, false },
	[KFORK_STATE_REGS] = { "REGS", KVM_SET_REGS, sizeof(struct kvm_regs), false, false },
	[KFORK_STATE_SREGS] = { "SREGS", KVM_SET_SREGS, sizeof(struct kvm_sregs), false, false },
	[KFORK_STATE_FPU] = { "FPU", KVM_SET_FPU, sizeof(struct kvm_fpu), false, true },
	[KFORK_STATE_XSAVE] = { "XSAVE", KVM_SET_XSAVE, 0, false, true },
	[KFORK_STATE_XCRS] = { "XCRS", KVM_SET_XCRS, sizeof(struct kvm_xcrs), false, true },
	[KFORK_STATE_DEBUGREGS] = { "DEBUGREGS", KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs),
				    false, true },
	[KFORK_STATE_LAPIC] = { "LAPIC", KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), false,
				false },
	[KFORK_STATE_MSRS] = { "MSRS", KVM_SET_MSRS, 0, false, false },
	[KFORK_STATE_VCPU_EVENTS] = { "VCPU_EVENTS", KVM_SET_VCPU_EVENTS,
				      sizeof(struct kvm_vcpu_events), false, true },
	[KFORK_STATE_UART] = { "UART", 0, 0, false, true },
};

static int kfork_state_check_sizes(struct kfork_state *st)
{
	const struct kvm_cpuid2 *cpuid = st->item[KFORK_STATE_CPUID];
	const struct kvm_msrs *msrs = st->item[KFORK_STATE_MSRS];
	u32 len;

	len = st->item_len[KFORK_STATE_CPUID];
	if (len < sizeof(*cpuid) ||
	    cpuid->nent > (len - sizeof(*cpuid)) / sizeof(cpuid->entries[0]))
		return -EINVAL;
	len = st->item_len[KFORK_STATE_MSRS];
	if (len < sizeof(*msrs) || msrs->nmsrs > (len - sizeof(*msrs)) / sizeof(msrs->entries[0]))
		return -EINVAL;
	if (st->item[KFORK_STATE_XSAVE] &&
	    st->item_len[KFORK_STATE_XSAVE] < sizeof(struct kvm_xsave))
		return -EINVAL;
	return 0;
}

/* st->buf/len come from user space: every length is checked before use. */
int kfork_state_parse(struct kfork_state *st)
{
	u32 off = 0;
	int tag;

	memset(st->item, 0, sizeof(st->item));
	memset(st->item_len, 0, sizeof(st->item_len));
	st->max_item_len = 0;
	while (off < st->len) {
		struct kfork_state_item *hdr = st->buf + off;
		u64 step;

		if (st->len - off < sizeof(*hdr))
			return -EINVAL;
		step = sizeof(*hdr) + ALIGN((u64)hdr->len, 8);
		if (step > st->len - off || !hdr->tag || hdr->tag >= KFORK_STATE_MAX ||
		    st->item[hdr->tag])
			return -EINVAL;
		if (kfork_state_table[hdr->tag].size &&
		    hdr->len != kfork_state_table[hdr->tag].size)
			return -EINVAL;
		st->item[hdr->tag] = hdr + 1;
		st->item_len[hdr->tag] = hdr->len;
		st->max_item_len = max(st->max_item_len, hdr->len);
		off += step;
	}
	for (tag = 1; tag < KFORK_STATE_MAX; tag++)
		if (!kfork_state_table[tag].optional && !st->item[tag])
			return -EINVAL;
	if (((struct kvm_irqchip *)st->item[KFORK_STATE_PIC_MASTER])->chip_id !=
	    KVM_IRQCHIP_PIC_MASTER ||
	    ((struct kvm_irqchip *)st->item[KFORK_STATE_PIC_SLAVE])->chip_id !=
	    KVM_IRQCHIP_PIC_SLAVE ||
	    ((struct kvm_irqchip *)st->item[KFORK_STATE_IOAPIC])->chip_id != KVM_IRQCHIP_IOAPIC)
		return -EINVAL;
	/* Resume the guest's clock where it stopped: only .clock counts (flags 0). */
	{
		struct kvm_clock_data *clock = (void *)st->item[KFORK_STATE_CLOCK];
		u64 ns = clock->clock;

		memset(clock, 0, sizeof(*clock));
		clock->clock = ns;
	}
	return kfork_state_check_sizes(st);
}

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

static int kfork_state_restore_item(const struct kfork_state *st, int tag, struct file *vm,
				    struct file *vcpu, struct kfork_scratch *s)
{
	const struct kfork_state_desc *d = &kfork_state_table[tag];
	u32 len = st->item_len[tag];
	long ret;

	if (tag == KFORK_STATE_XSAVE) {
		/* Zero what KVM reads past the item (its XSAVE2 size may be larger). */
		if (len + KFORK_XSAVE_SLACK > s->len)
			return -E2BIG;
		if (clear_user((void __user *)s->addr + len, KFORK_XSAVE_SLACK))
			return -EFAULT;
	}
	ret = kfork_kvm_ioctl_buf(d->vm_scope ? vm : vcpu, d->set, s, st->item[tag], len);
	if (ret < 0) {
		pr_debug("kfork: KVM_SET_%s: %ld\n", d->name, ret);
		return ret;
	}
	if (tag == KFORK_STATE_MSRS &&
	    ret != ((const struct kvm_msrs *)st->item[tag])->nmsrs)
		return -EINVAL;	/* KVM refused an MSR */
	return 0;
}

int kfork_state_restore(struct kfork_template *tmpl, struct file *vm, struct file *vcpu,
			struct kfork_scratch *s, bool in_place)
{
	const struct kfork_state *st = &tmpl->state;
	int tag, err;

	/* A vCPU that has run keeps its CPUID: KVM refuses to change it. */
	for (tag = in_place ? KFORK_STATE_CPUID + 1 : KFORK_STATE_CPUID;
	     tag < KFORK_STATE_UART; tag++) {
		if (!st->item[tag])
			continue;
		err = kfork_state_restore_item(st, tag, vm, vcpu, s);
		if (err)
			return err;
	}
	return 0;
}
