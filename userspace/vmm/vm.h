/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vm.h - one KVM VM with one vCPU, its guest memory and its UART. */
#ifndef KF_VMM_VM_H
#define KF_VMM_VM_H

#include <stdint.h>
#include <linux/kvm.h>

#include "vmm/uart.h"

/* Guest-physical addresses are never dereferenced directly: see vm_gpa_ptr(). */
typedef uint64_t gpa_t;

#define VM_PAGE_SIZE	4096ULL
#define VM_TSS_ADDR	0xfffbd000ULL
#define VM_IDMAP_ADDR	0xfffbc000ULL
#define VM_MEM_MAX	(3ULL << 30)	/* below the PCI hole and the IOAPIC/LAPIC */

struct vm {
	char name[32];		/* "clone 17", "template build": used in messages */
	int fd;
	int vcpu_fd;
	struct kvm_run *run;
	int run_size;
	uint8_t *mem;		/* host mapping of guest RAM [0, mem_size) */
	uint64_t mem_size;
	struct uart uart;
	struct kvm_coalesced_mmio_ring *ring;	/* THR writes KVM buffered, or NULL */
	uint64_t exits;		/* KVM_RUN returns to user space */
	/* vm_run(): interrupt KVM_RUN at least every 10 ms so done() can poll limits. */
	int poll;
	/* A guest write to the mailbox doorbell page (KF_MBOX_DOORBELL_GPA), or NULL. */
	int (*doorbell)(void *arg);
	void *doorbell_arg;
};

/*
 * Create VM, memory slot 0 over mem, in-kernel irqchip + PIT, vCPU 0.
 * Memory is registered before the irqchip (7 ms vs 0.1 ms, LAB.md).
 */
int vm_create(struct vm *vm, const char *name, uint8_t *mem, uint64_t mem_size);
void vm_destroy(struct vm *vm);

int vm_set_cpuid(struct vm *vm, const struct kvm_cpuid2 *cpuid);
int vm_irq_line(struct vm *vm, int irq, int level);

/*
 * Map [gpa, gpa + size) in the VM's stage-2 page tables now, as the guest's
 * first reads would (KVM_PRE_FAULT_MEMORY: host page tables too, no page
 * copied). 0; -EOPNOTSUPP where KVM lacks it (before 6.10); -errno.
 */
int vm_pre_fault(struct vm *vm, uint64_t gpa, uint64_t size);

/* Host pointer for [gpa, gpa + len) or NULL if any of it is outside guest RAM. */
void *vm_gpa_ptr(struct vm *vm, gpa_t gpa, uint64_t len);

/*
 * Let KVM buffer the guest's writes to the UART's THR instead of exiting to
 * user space for each byte; vm_run() replays them, in order, before it looks
 * at any exit. A no-op where KVM lacks coalesced PIO.
 */
int vm_coalesce_uart(struct vm *vm);
/* Replay buffered THR writes into the UART (and its IRQ line). */
int vm_drain_coalesced(struct vm *vm);

/* Complete a pending PIO/MMIO and replay buffered writes: the state is then consistent. */
int vm_complete_io(struct vm *vm);

#endif
