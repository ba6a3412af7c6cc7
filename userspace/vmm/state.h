/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* state.h - the full machine state of a VM, saved as a list of tagged items. */
#ifndef KF_VMM_STATE_H
#define KF_VMM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/vm.h"

/* Items in restore order (LAB.md); the tag values are part of the template file format. */
enum state_item {
	ST_CPUID = 1,
	ST_PIT2,
	ST_CLOCK,
	ST_PIC_MASTER,
	ST_PIC_SLAVE,
	ST_IOAPIC,
	ST_MP_STATE,
	ST_REGS,
	ST_SREGS,
	ST_FPU,
	ST_XSAVE,
	ST_XCRS,
	ST_DEBUGREGS,
	ST_LAPIC,
	ST_MSRS,
	ST_VCPU_EVENTS,
	ST_UART,
	ST_MAX,
};

struct state_hdr {
	uint32_t tag;		/* enum state_item */
	uint32_t len;		/* bytes of data after this header */
};

/* A serialised state: items each aligned to 8 bytes, in enum order. */
struct vm_state {
	uint8_t *buf;
	size_t len;
	const void *item[ST_MAX];	/* parsed: data of each item or NULL */
	uint32_t item_len[ST_MAX];
};

const char *state_item_name(enum state_item item);

/* Save everything; the vCPU must be out of KVM_RUN with I/O completed. */
int state_save(struct vm *vm, const struct kvm_cpuid2 *cpuid, struct vm_state *st);
/* Check a state read from a file: known tags, sane sizes, required items present. */
int state_parse(struct vm_state *st, const char *what);
/* Restore into a freshly created VM, or in place into one being reset. */
int state_restore(struct vm *vm, const struct vm_state *st, int in_place);
void state_free(struct vm_state *st);

#endif
