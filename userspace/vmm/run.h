/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* run.h - the vCPU run loop: KVM_RUN, exit dispatch, deadline. */
#ifndef KF_VMM_RUN_H
#define KF_VMM_RUN_H

#include <stdint.h>

#include "vmm/vm.h"

uint64_t vm_now_ns(void);

/*
 * Run the vCPU until done(arg) returns non-zero after an exit, the deadline
 * (CLOCK_MONOTONIC ns, 0 = none) passes (-ETIMEDOUT), or the guest fails.
 * With vm->poll set, done() also runs every 10 ms while the guest computes.
 */
int vm_run(struct vm *vm, uint64_t deadline_ns, int (*done)(void *arg), void *arg);

/* Raise or lower IRQ 4 to match the UART after the host queued input. */
int vm_uart_sync_irq(struct vm *vm);

#endif
