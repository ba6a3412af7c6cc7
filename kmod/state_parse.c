// SPDX-License-Identifier: GPL-2.0-only
/* state_parse.c - the frozen machine state blob: item table, parse, size and mode checks. */
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/string.h>

#include "state_parse.h"

/* Indexed by tag; the tags are restored in this order (LAB.md's restore order). */
const struct kfork_state_desc kfork_state_table[KFORK_STATE_MAX] = {
	[KFORK_STATE_CPUID] = { "CPUID", KVM_SET_CPUID2, 0, 0, false, false },
	[KFORK_STATE_PIT2] = { "PIT2", KVM_SET_PIT2, 0, sizeof(struct kvm_pit_state2), true,
			       false },
	[KFORK_STATE_CLOCK] = { "CLOCK", KVM_SET_CLOCK, 0, sizeof(struct kvm_clock_data), true,
				false },
	[KFORK_STATE_PIC_MASTER] = { "PIC master", KVM_SET_IRQCHIP, 0, sizeof(struct kvm_irqchip),
				     true, false },
	[KFORK_STATE_PIC_SLAVE] = { "PIC slave", KVM_SET_IRQCHIP, 0, sizeof(struct kvm_irqchip),
				    true, false },
	[KFORK_STATE_IOAPIC] = { "IOAPIC", KVM_SET_IRQCHIP, 0, sizeof(struct kvm_irqchip), true,
				 false },
	[KFORK_STATE_MP_STATE] = { "MP_STATE", KVM_SET_MP_STATE, 0, sizeof(struct kvm_mp_state),
				   false, false },
	[KFORK_STATE_REGS] = { "REGS", KVM_SET_REGS, 0, sizeof(struct kvm_regs), false, false },
	[KFORK_STATE_SREGS] = { "SREGS", KVM_SET_SREGS, 0, sizeof(struct kvm_sregs), false, false },
	[KFORK_STATE_FPU] = { "FPU", KVM_SET_FPU, KVM_GET_FPU, sizeof(struct kvm_fpu), false,
			      true },
	[KFORK_STATE_XSAVE] = { "XSAVE", KVM_SET_XSAVE, KVM_GET_XSAVE, 0, false, true },
	[KFORK_STATE_XCRS] = { "XCRS", KVM_SET_XCRS, KVM_GET_XCRS, sizeof(struct kvm_xcrs), false,
			       true },
	[KFORK_STATE_DEBUGREGS] = { "DEBUGREGS", KVM_SET_DEBUGREGS, KVM_GET_DEBUGREGS,
				    sizeof(struct kvm_debugregs), false, true },
	[KFORK_STATE_LAPIC] = { "LAPIC", KVM_SET_LAPIC, 0, sizeof(struct kvm_lapic_state), false,
				false },
	[KFORK_STATE_MSRS] = { "MSRS", KVM_SET_MSRS, 0, 0, false, false },
	[KFORK_STATE_VCPU_EVENTS] = { "VCPU_EVENTS", KVM_SET_VCPU_EVENTS, KVM_GET_VCPU_EVENTS,
				      sizeof(struct kvm_vcpu_events), false, true },
	[KFORK_STATE_UART] = { "UART", 0, 0, 0, false, true },
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

/*
 * The prefault must never meet a vCPU in SMM (prefault.c): a template that
 * freezes one is refused. Nested state is never restored, so no guest mode.
 */
static int kfork_state_check_modes(const struct kfork_state *st)
{
	const struct kvm_vcpu_events *ev = st->item[KFORK_STATE_VCPU_EVENTS];

	if (ev && (ev->flags & KVM_VCPUEVENT_VALID_SMM) && ev->smi.smm)
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
	return kfork_state_check_sizes(st) ?: kfork_state_check_modes(st);
}
