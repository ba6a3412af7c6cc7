/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kf_mbox.h - the shared-memory mailbox: two byte rings carrying kf_proto frames, in guest RAM. */
#ifndef KF_MBOX_H
#define KF_MBOX_H

/*
 * The VMM reserves KF_MBOX_SIZE bytes at the top of guest RAM (an e820
 * "reserved" entry, so the guest kernel never uses it as RAM), writes the
 * header below at its start and tells the guest where it is on the kernel
 * command line (kfork.mbox=0xADDR). The agent maps it through /dev/mem.
 *
 * Two single-producer/single-consumer byte rings carry the same byte stream
 * of frames as the serial line would: h2g (host -> guest) and g2h (guest ->
 * host). Indices are free-running u32 byte counts; used = prod - cons, which
 * a well-behaved peer keeps <= size. Each side owns one index of each ring
 * and keeps a private copy of it: the shared copy only informs the peer.
 *
 * Doorbells: guest -> host is a write to doorbell_gpa (outside every memslot,
 * so a KVM_EXIT_MMIO): the host drains g2h and refills h2g before the guest
 * resumes. Host -> guest is one KF_MBOX_DOORBELL byte on the serial line,
 * sent between frames: "h2g has data".
 *
 * Being in guest RAM, the mailbox is part of the template and copy-on-write
 * per clone. The host sets the header back to the template's at every spawn
 * and reset. Everything in it is guest-writable: the host bounds all of it.
 * Freestanding, like kf_proto.
 */
#include <stdint.h>

#include "kf_proto.h"

#define KF_MBOX_MAGIC		0x424d464bu	/* "KFMB" */
#define KF_MBOX_VERSION		1
#define KF_MBOX_SIZE		(256u << 10)	/* reserved at the top of guest RAM */
#define KF_MBOX_H2G_OFF		4096u
#define KF_MBOX_H2G_SIZE	(64u << 10)
#define KF_MBOX_G2H_OFF		(KF_MBOX_H2G_OFF + KF_MBOX_H2G_SIZE)
#define KF_MBOX_G2H_SIZE	(128u << 10)
/* A guest-physical page in the PCI hole: no memslot, no device. */
#define KF_MBOX_DOORBELL_GPA	0xd0000000ull
/* The serial byte meaning "drain h2g"; never 'K', so never a frame start. */
#define KF_MBOX_DOORBELL	0xdb
/* Kernel command line parameter carrying the mailbox's guest-physical address. */
#define KF_MBOX_CMDLINE		"kfork.mbox="

/* agent_flags: set by the agent once it serves frames over the mailbox. */
#define KF_MBOX_AGENT_ON	1u

struct kf_mbox_hdr {
	uint32_t magic;		/* KF_MBOX_MAGIC, host */
	uint32_t version;	/* KF_MBOX_VERSION, host */
	uint32_t h2g_off, h2g_size;	/* host: ring data offsets from the header */
	uint32_t g2h_off, g2h_size;
	uint64_t doorbell_gpa;	/* host */
	uint32_t agent_flags;	/* guest: KF_MBOX_AGENT_ON */
	uint32_t pad[7];
	/* Indices on their own cache lines: each written by one side only. */
	uint32_t h2g_prod;	/* host */
	uint32_t pad1[15];
	uint32_t h2g_cons;	/* guest */
	uint32_t pad2[15];
	uint32_t g2h_prod;	/* guest */
	uint32_t pad3[15];
	uint32_t g2h_cons;	/* host */
	uint32_t pad4[15];
};

_Static_assert(sizeof(struct kf_mbox_hdr) == 320, "kf_mbox_hdr layout");
_Static_assert(KF_MBOX_G2H_OFF + KF_MBOX_G2H_SIZE <= KF_MBOX_SIZE, "mailbox rings fit");
_Static_assert(KF_MBOX_DOORBELL != KF_FRAME_MAGIC0, "doorbell never starts a frame");

/* One side's view of one ring. */
struct kf_ring {
	uint8_t *data;			/* size bytes, shared */
	uint32_t size;			/* power of two */
	volatile uint32_t *prod;	/* shared, written by the producer */
	volatile uint32_t *cons;	/* shared, written by the consumer */
	uint32_t mine;			/* private copy of the index this side owns */
};

/* A peer index that puts more than size bytes in flight: the ring is unusable. */
#define KF_RING_BAD	(-1)

/* Bind a ring view; the owned index starts from whatever is shared now. */
void kf_ring_init(struct kf_ring *r, uint8_t *data, uint32_t size, volatile uint32_t *prod,
		  volatile uint32_t *cons, int is_producer);

/* Producer: copy up to len bytes in; returns bytes copied (0 = full) or KF_RING_BAD. */
int32_t kf_ring_put(struct kf_ring *r, const void *buf, uint32_t len);
/* Consumer: copy up to cap bytes out; returns bytes copied (0 = empty) or KF_RING_BAD. */
int32_t kf_ring_get(struct kf_ring *r, void *buf, uint32_t cap);
/* Bytes the producer could put now, or KF_RING_BAD. */
int32_t kf_ring_space(const struct kf_ring *r);

#endif /* KF_MBOX_H */
