// SPDX-License-Identifier: LGPL-2.1-or-later
/* state.c - table-driven save/restore of vCPU, irqchip, PIT, clock and UART state. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <asm/kvm_para.h>

#include "lib/error.h"
#include "vmm/kvm.h"
#include "vmm/state.h"

enum scope { VM_SCOPE, VCPU_SCOPE, DEV_SCOPE };

struct state_desc {
	const char *name;
	enum scope scope;
	unsigned long get, set;	/* ioctls; 0: handled by a special case */
	uint32_t size;		/* fixed size; 0: variable */
	uint32_t chip_id;	/* for irqchip items */
	int optional;		/* may be absent (host lacks the capability) */
};

static const struct state_desc state_table[ST_MAX] = {
	[ST_CPUID]	 = { "CPUID", VCPU_SCOPE, 0, KVM_SET_CPUID2, 0, 0, 0 },
	[ST_PIT2]	 = { "PIT2", VM_SCOPE, KVM_GET_PIT2, KVM_SET_PIT2,
			     sizeof(struct kvm_pit_state2), 0, 0 },
	[ST_CLOCK]	 = { "CLOCK", VM_SCOPE, KVM_GET_CLOCK, KVM_SET_CLOCK,
			     sizeof(struct kvm_clock_data), 0, 0 },
	[ST_PIC_MASTER]	 = { "IRQCHIP(PIC master)", VM_SCOPE, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP,
			     sizeof(struct kvm_irqchip), KVM_IRQCHIP_PIC_MASTER, 0 },
	[ST_PIC_SLAVE]	 = { "IRQCHIP(PIC slave)", VM_SCOPE, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP,
			     sizeof(struct kvm_irqchip), KVM_IRQCHIP_PIC_SLAVE, 0 },
	[ST_IOAPIC]	 = { "IRQCHIP(IOAPIC)", VM_SCOPE, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP,
			     sizeof(struct kvm_irqchip), KVM_IRQCHIP_IOAPIC, 0 },
	[ST_MP_STATE]	 = { "MP_STATE", VCPU_SCOPE, KVM_GET_MP_STATE, KVM_SET_MP_STATE,
			     sizeof(struct kvm_mp_state), 0, 0 },
	[ST_REGS]	 = { "REGS", VCPU_SCOPE, KVM_GET_REGS, KVM_SET_REGS,
			     sizeof(struct kvm_regs), 0, 0 },
	[ST_SREGS]	 = { "SREGS", VCPU_SCOPE, KVM_GET_SREGS, KVM_SET_SREGS,
			     sizeof(struct kvm_sregs), 0, 0 },
	[ST_FPU]	 = { "FPU", VCPU_SCOPE, KVM_GET_FPU, KVM_SET_FPU,
			     sizeof(struct kvm_fpu), 0, 1 },
	[ST_XSAVE]	 = { "XSAVE", VCPU_SCOPE, 0, KVM_SET_XSAVE, 0, 0, 1 },
	[ST_XCRS]	 = { "XCRS", VCPU_SCOPE, KVM_GET_XCRS, KVM_SET_XCRS,
			     sizeof(struct kvm_xcrs), 0, 1 },
	[ST_DEBUGREGS]	 = { "DEBUGREGS", VCPU_SCOPE, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS,
			     sizeof(struct kvm_debugregs), 0, 1 },
	[ST_LAPIC]	 = { "LAPIC", VCPU_SCOPE, KVM_GET_LAPIC, KVM_SET_LAPIC,
			     sizeof(struct kvm_lapic_state), 0, 0 },
	[ST_MSRS]	 = { "MSRS", VCPU_SCOPE, 0, KVM_SET_MSRS, 0, 0, 0 },
	[ST_VCPU_EVENTS] = { "VCPU_EVENTS", VCPU_SCOPE, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,
			     sizeof(struct kvm_vcpu_events), 0, 1 },
	[ST_UART]	 = { "UART", DEV_SCOPE, 0, 0, sizeof(struct uart_regs), 0, 0 },
};

const char *state_item_name(enum state_item item)
{
	if (item <= 0 || item >= ST_MAX)
		return "unknown";
	return state_table[item].name;
}

struct state_builder {
	uint8_t *buf;
	size_t len, cap;
};

static void *state_append(struct state_builder *b, enum state_item tag, uint32_t len)
{
	size_t need = sizeof(struct state_hdr) + ((len + 7) & ~7u);
	struct state_hdr *hdr;

	if (b->len + need > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		uint8_t *buf;

		while (cap < b->len + need)
			cap *= 2;
		buf = realloc(b->buf, cap);
		if (!buf)
			return NULL;
		b->buf = buf;
		b->cap = cap;
	}
	hdr = (struct state_hdr *)(b->buf + b->len);
	hdr->tag = tag;
	hdr->len = len;
	memset(hdr + 1, 0, need - sizeof(*hdr));
	b->len += need;
	return hdr + 1;
}

/*
 * KVM's legacy kvmclock MSRs are aliases of the _NEW ones: both read back the
 * same VM/vCPU field, and a host-initiated write of either does the same
 * thing. Restoring both wrote the wall clock into guest memory twice and
 * re-activated the clock page twice: ~0.4 ms of every restore in the lab.
 */
static int state_msr_is_alias(const struct kvm_msrs *msrs, uint32_t n, uint32_t i)
{
	static const uint32_t alias[][2] = {
		{ MSR_KVM_WALL_CLOCK, MSR_KVM_WALL_CLOCK_NEW },
		{ MSR_KVM_SYSTEM_TIME, MSR_KVM_SYSTEM_TIME_NEW },
	};

	for (size_t a = 0; a < sizeof(alias) / sizeof(alias[0]); a++) {
		if (msrs->entries[i].index != alias[a][0])
			continue;
		for (uint32_t j = 0; j < n; j++)
			if (msrs->entries[j].index == alias[a][1])
				return msrs->entries[j].data == msrs->entries[i].data;
	}
	return 0;
}

#define HV_MSR_FIRST	0x40000000u	/* Hyper-V's synthetic MSRs (HV_X64_MSR_*) */
#define HV_MSR_LAST	0x400001ffu
#define HV_CPUID_INTERFACE	0x40000001u
#define HV_CPUID_SIGNATURE_EAX	0x31237648u	/* "Hv#1" */

/* Whether KVM lets this guest use Hyper-V's MSRs (its kvm_cpuid_has_hyperv()). */
static int state_cpuid_has_hyperv(const struct kvm_cpuid2 *cpuid)
{
	for (uint32_t i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == HV_CPUID_INTERFACE)
			return cpuid->entries[i].eax == HV_CPUID_SIGNATURE_EAX;
	return 0;
}

/*
 * Without Hyper-V in its CPUID the guest can neither read nor write Hyper-V's
 * MSRs (KVM refuses it), so they hold KVM's defaults in the template and in
 * any fresh vCPU alike. Restoring them cost 28 host-initiated writes per
 * restore, and the first one allocates KVM's per-vCPU Hyper-V context in
 * every clone.
 */
static int state_msr_is_unused(const struct kvm_msr_entry *e, int hyperv)
{
	return !hyperv && e->index >= HV_MSR_FIRST && e->index <= HV_MSR_LAST;
}

/* Read every MSR KVM lists, skipping the few a given host refuses to read, aliases and unused ones. */
static int state_save_msrs(struct vm *vm, const struct kvm_cpuid2 *cpuid,
			   struct state_builder *b)
{
	const struct kvm_host *host;
	struct kvm_msrs *msrs;
	uint32_t n = 0, total;
	void *dst;
	int err = kvm_host_get(&host), hyperv = state_cpuid_has_hyperv(cpuid);

	if (err)
		return err;
	total = host->msrs->nmsrs;
	msrs = calloc(1, sizeof(*msrs) + total * sizeof(struct kvm_msr_entry));
	if (!msrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < total; i++) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e;
		} one = { .hdr.nmsrs = 1, .e.index = host->msrs->indices[i] };

		if (!state_msr_is_unused(&one.e, hyperv) &&
		    ioctl(vm->vcpu_fd, KVM_GET_MSRS, &one) == 1)
			msrs->entries[n++] = one.e;
	}
	/* Only legacy aliases go, never a _NEW one: drop them in place. */
	for (uint32_t i = 0; i < n; ) {
		if (!state_msr_is_alias(msrs, n, i)) {
			i++;
			continue;
		}
		memmove(&msrs->entries[i], &msrs->entries[i + 1],
			(n - i - 1) * sizeof(msrs->entries[0]));
		n--;
	}
	msrs->nmsrs = n;
	dst = state_append(b, ST_MSRS, sizeof(*msrs) + n * sizeof(struct kvm_msr_entry));
	if (dst)
		memcpy(dst, msrs, sizeof(*msrs) + n * sizeof(struct kvm_msr_entry));
	free(msrs);
	return dst ? 0 : -ENOMEM;
}

static int state_save_xsave(struct vm *vm, struct state_builder *b)
{
	const struct kvm_host *host;
	uint32_t size;
	unsigned long get = KVM_GET_XSAVE;
	void *dst;
	int err = kvm_host_get(&host);

	if (err)
		return err;
	size = sizeof(struct kvm_xsave);
	if (host->xsave2_size > (int)size) {
		size = host->xsave2_size;
		get = KVM_GET_XSAVE2;
	}
	dst = state_append(b, ST_XSAVE, size);
	if (!dst)
		return -ENOMEM;
	if (ioctl(vm->vcpu_fd, get, dst) < 0)
		return kf_fail(-errno, "KVM_GET_XSAVE on %s", vm->name);
	return 0;
}

static int state_save_item(struct vm *vm, const struct kvm_cpuid2 *cpuid,
			   struct state_builder *b, enum state_item item)
{
	const struct state_desc *d = &state_table[item];
	const struct kvm_host *host;
	void *dst;
	int fd = d->scope == VM_SCOPE ? vm->fd : vm->vcpu_fd;
	int err = kvm_host_get(&host);

	if (err)
		return err;
	switch (item) {
	case ST_CPUID: {
		uint32_t len = sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]);

		dst = state_append(b, item, len);
		if (dst)
			memcpy(dst, cpuid, len);
		return dst ? 0 : -ENOMEM;
	}
	case ST_MSRS:
		return state_save_msrs(vm, cpuid, b);
	case ST_XSAVE:
		return host->has_xsave ? state_save_xsave(vm, b) : 0;
	case ST_FPU:
		if (host->has_xsave)
			return 0;	/* XSAVE carries the FPU */
		break;
	case ST_XCRS:
		if (!host->has_xcrs)
			return 0;
		break;
	case ST_DEBUGREGS:
		if (!host->has_debugregs)
			return 0;
		break;
	case ST_VCPU_EVENTS:
		if (!host->has_vcpu_events)
			return 0;
		break;
	case ST_UART:
		dst = state_append(b, item, d->size);
		if (dst)
			memcpy(dst, &vm->uart.regs, d->size);
		return dst ? 0 : -ENOMEM;
	default:
		break;
	}
	dst = state_append(b, item, d->size);
	if (!dst)
		return -ENOMEM;
	if (d->chip_id || item == ST_PIC_MASTER)
		((struct kvm_irqchip *)dst)->chip_id = d->chip_id;
	if (ioctl(fd, d->get, dst) < 0)
		return kf_fail(-errno, "KVM_GET_%s on %s", d->name, vm->name);
	if (item == ST_XCRS && ((struct kvm_xcrs *)dst)->nr_xcrs == 0)
		b->len -= sizeof(struct state_hdr) + ((d->size + 7) & ~7u);	/* none to restore */
	return 0;
}

int state_save(struct vm *vm, const struct kvm_cpuid2 *cpuid, struct vm_state *st)
{
	struct state_builder b = { 0 };
	int err;

	memset(st, 0, sizeof(*st));
	for (int item = 1; item < ST_MAX; item++) {
		err = state_save_item(vm, cpuid, &b, item);
		if (err) {
			free(b.buf);
			return err == -ENOMEM ? kf_fail(err, "saving %s of %s",
							 state_item_name(item), vm->name) : err;
		}
	}
	st->buf = b.buf;
	st->len = b.len;
	return state_parse(st, vm->name);
}

int state_parse(struct vm_state *st, const char *what)
{
	size_t off = 0;

	memset(st->item, 0, sizeof(st->item));
	memset(st->item_len, 0, sizeof(st->item_len));
	while (off < st->len) {
		const struct state_hdr *hdr = (const void *)(st->buf + off);
		const struct state_desc *d;
		size_t step;

		if (st->len - off < sizeof(*hdr))
			return kf_reject(-EINVAL, "%s: state truncated", what);
		step = sizeof(*hdr) + (((size_t)hdr->len + 7) & ~(size_t)7);
		if (hdr->tag == 0 || hdr->tag >= ST_MAX || step > st->len - off)
			return kf_reject(-EINVAL, "%s: bad state item (tag %u, %u bytes)",
				       what, hdr->tag, hdr->len);
		d = &state_table[hdr->tag];
		if (st->item[hdr->tag] || (d->size && hdr->len != d->size))
			return kf_reject(-EINVAL, "%s: state item %s has %u bytes, expected %u",
				       what, d->name, hdr->len, d->size);
		st->item[hdr->tag] = hdr + 1;
		st->item_len[hdr->tag] = hdr->len;
		off += step;
	}
	for (int item = 1; item < ST_MAX; item++)
		if (!state_table[item].optional && !st->item[item])
			return kf_reject(-EINVAL, "%s: state item %s missing", what,
				       state_table[item].name);
	/* Variable-size items must agree with their own counts. */
	if (st->item_len[ST_CPUID] < sizeof(struct kvm_cpuid2) ||
	    ((const struct kvm_cpuid2 *)st->item[ST_CPUID])->nent >
	    (st->item_len[ST_CPUID] - sizeof(struct kvm_cpuid2)) / sizeof(struct kvm_cpuid_entry2))
		return kf_reject(-EINVAL, "%s: CPUID item inconsistent", what);
	if (st->item_len[ST_MSRS] < sizeof(struct kvm_msrs) ||
	    ((const struct kvm_msrs *)st->item[ST_MSRS])->nmsrs >
	    (st->item_len[ST_MSRS] - sizeof(struct kvm_msrs)) / sizeof(struct kvm_msr_entry))
		return kf_reject(-EINVAL, "%s: MSRS item inconsistent", what);
	if (st->item[ST_XSAVE] && st->item_len[ST_XSAVE] < sizeof(struct kvm_xsave))
		return kf_reject(-EINVAL, "%s: XSAVE item too small", what);
	return 0;
}

static int state_restore_item(struct vm *vm, const struct vm_state *st, enum state_item item)
{
	const struct state_desc *d = &state_table[item];
	int fd = d->scope == VM_SCOPE ? vm->fd : vm->vcpu_fd;
	const void *src = st->item[item];
	int ret;

	if (!src)
		return 0;
	switch (item) {
	case ST_CLOCK: {
		struct kvm_clock_data clock = { .clock = ((const struct kvm_clock_data *)src)->clock };

		/* Flags 0: resume the guest's clock where it stopped, not at host time. */
		ret = ioctl(fd, d->set, &clock);
		break;
	}
	case ST_MSRS: {
		const struct kvm_msrs *msrs = src;

		ret = ioctl(fd, d->set, src);
		if (ret >= 0 && (uint32_t)ret != msrs->nmsrs)
			return kf_reject(-EINVAL, "KVM_SET_MSRS on %s: MSR %#x refused", vm->name,
				       msrs->entries[ret].index);
		break;
	}
	case ST_UART:
		memcpy(&vm->uart.regs, src, sizeof(vm->uart.regs));
		return 0;
	default:
		ret = ioctl(fd, d->set, src);
		break;
	}
	if (ret < 0)
		return kf_fail(-errno, "KVM_SET_%s on %s", d->name, vm->name);
	return 0;
}

int state_restore(struct vm *vm, const struct vm_state *st, int in_place)
{
	/* A vCPU that has run keeps its CPUID: KVM refuses to change it. */
	for (int item = in_place ? ST_CPUID + 1 : 1; item < ST_MAX; item++) {
		int err = state_restore_item(vm, st, item);

		if (err)
			return err;
	}
	return 0;
}

void state_free(struct vm_state *st)
{
	free(st->buf);
	memset(st, 0, sizeof(*st));
}
