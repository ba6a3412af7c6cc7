/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mbox.h - the host's side of the shared-memory mailbox (proto/kf_mbox.h): frames without UART exits. */
#ifndef KF_VMM_MBOX_H
#define KF_VMM_MBOX_H

#include <stddef.h>
#include <stdint.h>

#include "proto/kf_mbox.h"
#include "vmm/vm.h"

/* Where the mailbox sits in guest RAM of mem_size bytes. */
static inline gpa_t mbox_gpa(uint64_t mem_size)
{
	return mem_size - KF_MBOX_SIZE;
}

/* Boot: write a fresh header (no agent yet) at the top of the VM's RAM. */
int mbox_format(struct vm *vm);

/*
 * Does a template's mailbox header (read from its memory) show an agent
 * serving frames over the mailbox? 1 yes, 0 no (serve over serial), -EPROTO
 * with a message if the agent claims it but the header is inconsistent.
 */
int mbox_template_check(const struct kf_mbox_hdr *hdr, const char *what);

struct mbox {
	int on;				/* frames travel through the rings */
	struct kf_mbox_hdr *hdr;	/* in guest memory: hostile */
	struct kf_ring h2g, g2h;
	/* h2g bytes waiting for ring space, in order */
	uint8_t *pend;
	size_t pend_head, pend_len, pend_cap;
	/* g2h bytes go here on a doorbell */
	void (*rx)(void *arg, const uint8_t *buf, size_t len);
	void *rx_arg;
};

/*
 * Bind the mailbox of a clone whose template has one: put the header back to
 * the template's (tmpl_hdr), drop anything queued. After a spawn or a reset.
 */
int mbox_attach(struct mbox *m, struct vm *vm, const struct kf_mbox_hdr *tmpl_hdr);
void mbox_free(struct mbox *m);

/*
 * Queue bytes for the guest: into h2g as far as they fit, then one doorbell
 * byte into the UART. Both calls leave IRQ 4 to the caller (vm_uart_sync_irq).
 */
int mbox_send(struct mbox *m, struct vm *vm, const void *buf, size_t len);

/* The guest rang (an MMIO write to the doorbell page): drain g2h, refill h2g. */
int mbox_doorbell(struct mbox *m, struct vm *vm);

#endif
