// SPDX-License-Identifier: LGPL-2.1-or-later
/* mbox.c - host side of the mailbox: header setup, queued h2g bytes, g2h drained on the doorbell. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/error.h"
#include "vmm/mbox.h"

_Static_assert(KF_MBOX_DOORBELL_GPA >= VM_MEM_MAX, "the doorbell page is outside guest RAM");

static void mbox_hdr_fresh(struct kf_mbox_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = KF_MBOX_MAGIC;
	h->version = KF_MBOX_VERSION;
	h->h2g_off = KF_MBOX_H2G_OFF;
	h->h2g_size = KF_MBOX_H2G_SIZE;
	h->g2h_off = KF_MBOX_G2H_OFF;
	h->g2h_size = KF_MBOX_G2H_SIZE;
	h->doorbell_gpa = KF_MBOX_DOORBELL_GPA;
}

int mbox_format(struct vm *vm)
{
	struct kf_mbox_hdr *h;

	if (vm->mem_size < 2 * KF_MBOX_SIZE)
		return kf_reject(-EINVAL, "%s: no room for the mailbox", vm->name);
	h = vm_gpa_ptr(vm, mbox_gpa(vm->mem_size), KF_MBOX_SIZE);
	if (!h)
		return kf_reject(-EINVAL, "%s: no room for the mailbox", vm->name);
	mbox_hdr_fresh(h);	/* the rest is fresh, zeroed memory */
	return 0;
}

int mbox_template_check(const struct kf_mbox_hdr *hdr, const char *what)
{
	struct kf_mbox_hdr want;

	mbox_hdr_fresh(&want);
	if (hdr->magic != KF_MBOX_MAGIC || !(hdr->agent_flags & KF_MBOX_AGENT_ON))
		return 0;	/* older VMM or agent: serial only */
	want.agent_flags = hdr->agent_flags;
	want.h2g_prod = want.h2g_cons = hdr->h2g_prod;
	want.g2h_prod = want.g2h_cons = hdr->g2h_prod;
	/* Same geometry as ours, doorbell where we listen, both rings empty. */
	if (memcmp(hdr, &want, sizeof(want)))
		return kf_reject(-EPROTO, "%s: its agent uses a mailbox this kfork does not know "
			       "(header version %u, ours %u; or rings not empty at freeze): "
			       "rebuild the template with this kfork", what, hdr->version,
			       KF_MBOX_VERSION);
	return 1;
}

int mbox_attach(struct mbox *m, struct vm *vm, const struct kf_mbox_hdr *tmpl_hdr)
{
	uint8_t *base = vm_gpa_ptr(vm, mbox_gpa(vm->mem_size), KF_MBOX_SIZE);
	struct kf_mbox_hdr *h = (struct kf_mbox_hdr *)base;

	if (!base)
		return kf_reject(-EINVAL, "%s: mailbox outside guest RAM", vm->name);
	/* Compare first: an untouched header stays shared with the template. */
	if (memcmp(h, tmpl_hdr, sizeof(*h)))
		memcpy(h, tmpl_hdr, sizeof(*h));
	m->hdr = h;
	/* Geometry from our constants, never from guest memory. */
	kf_ring_init(&m->h2g, base + KF_MBOX_H2G_OFF, KF_MBOX_H2G_SIZE, &h->h2g_prod,
		     &h->h2g_cons, 1);
	kf_ring_init(&m->g2h, base + KF_MBOX_G2H_OFF, KF_MBOX_G2H_SIZE, &h->g2h_prod,
		     &h->g2h_cons, 0);
	m->pend_head = m->pend_len = 0;
	m->on = 1;
	return 0;
}

void mbox_free(struct mbox *m)
{
	free(m->pend);
	m->pend = NULL;
	m->pend_cap = m->pend_head = m->pend_len = 0;
	m->on = 0;
}

static int mbox_broken(struct mbox *m, struct vm *vm, const char *ring)
{
	m->on = 0;	/* until the next spawn or reset re-attaches it */
	return kf_reject(-EPROTO, "%s: mailbox %s ring indices out of bounds (guest protocol error)",
			 vm->name, ring);
}

/* Move queued bytes into h2g; ring the serial doorbell if any moved. */
static int mbox_pump(struct mbox *m, struct vm *vm)
{
	int32_t n = 0;

	if (m->pend_len) {
		n = kf_ring_put(&m->h2g, m->pend + m->pend_head,
				m->pend_len > UINT32_MAX ? UINT32_MAX : (uint32_t)m->pend_len);
		if (n < 0)
			return mbox_broken(m, vm, "h2g");
		m->pend_head += n;
		m->pend_len -= n;
		if (!m->pend_len)
			m->pend_head = 0;
	}
	/* One unread doorbell byte covers everything put before the guest drains. */
	if (n > 0 && !uart_rx_pending(&vm->uart)) {
		uint8_t bell = KF_MBOX_DOORBELL;

		return uart_rx_push(&vm->uart, &bell, 1);
	}
	return 0;
}

int mbox_send(struct mbox *m, struct vm *vm, const void *buf, size_t len)
{
	if (!m->on)
		return kf_reject(-EPROTO, "%s: mailbox is down", vm->name);
	if (!len)	/* nothing to queue, and m->pend may still be NULL */
		return mbox_pump(m, vm);
	if (m->pend_head + m->pend_len + len > m->pend_cap) {
		size_t cap = m->pend_cap ? m->pend_cap : 4096;
		uint8_t *p;

		if (m->pend_head) {
			memmove(m->pend, m->pend + m->pend_head, m->pend_len);
			m->pend_head = 0;
		}
		while (cap < m->pend_len + len)
			cap *= 2;
		if (cap > m->pend_cap) {
			p = realloc(m->pend, cap);
			if (!p)
				return -ENOMEM;
			m->pend = p;
			m->pend_cap = cap;
		}
	}
	memcpy(m->pend + m->pend_head + m->pend_len, buf, len);
	m->pend_len += len;
	return mbox_pump(m, vm);
}

int mbox_doorbell(struct mbox *m, struct vm *vm)
{
	uint8_t buf[4096];
	int32_t n;

	if (!m->on)
		return 0;	/* a guest ringing without a mailbox: nothing to do */
	/* The vCPU is stopped, so the ring only shrinks; the bound is belt and braces. */
	for (uint32_t total = 0; total < KF_MBOX_G2H_SIZE; total += n) {
		n = kf_ring_get(&m->g2h, buf, sizeof(buf));
		if (n < 0)
			return mbox_broken(m, vm, "g2h");
		if (!n)
			break;
		if (m->rx)
			m->rx(m->rx_arg, buf, n);
	}
	return mbox_pump(m, vm);
}
