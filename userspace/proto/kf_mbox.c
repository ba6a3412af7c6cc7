// SPDX-License-Identifier: LGPL-2.1-or-later
/* kf_mbox.c - single-producer/single-consumer byte rings over memory the peer can also write. */
#include "kf_mbox.h"

/*
 * The peer's index is read once per call and bounded before use; the data
 * offsets come only from our private index masked by size, so nothing the
 * peer writes can move an access outside data[0, size). Acquire on the
 * peer's index pairs with its release after it moved the data.
 */
static uint32_t ring_load(const volatile uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void ring_store(volatile uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static void ring_copy(uint8_t *dst, const uint8_t *src, uint32_t n)
{
	while (n--)
		*dst++ = *src++;
}

void kf_ring_init(struct kf_ring *r, uint8_t *data, uint32_t size, volatile uint32_t *prod,
		  volatile uint32_t *cons, int is_producer)
{
	r->data = data;
	r->size = size;
	r->prod = prod;
	r->cons = cons;
	r->mine = ring_load(is_producer ? prod : cons);
}

int32_t kf_ring_space(const struct kf_ring *r)
{
	uint32_t used = r->mine - ring_load(r->cons);

	return used > r->size ? KF_RING_BAD : (int32_t)(r->size - used);
}

int32_t kf_ring_put(struct kf_ring *r, const void *buf, uint32_t len)
{
	int32_t space = kf_ring_space(r);
	uint32_t off, first;

	if (space < 0)
		return space;
	if (len > (uint32_t)space)
		len = space;
	off = r->mine & (r->size - 1);
	first = r->size - off < len ? r->size - off : len;
	ring_copy(r->data + off, buf, first);
	ring_copy(r->data, (const uint8_t *)buf + first, len - first);
	if (len) {	/* no write when idle: a write costs the clone a copied page */
		r->mine += len;
		ring_store(r->prod, r->mine);
	}
	return len;
}

int32_t kf_ring_get(struct kf_ring *r, void *buf, uint32_t cap)
{
	uint32_t avail = ring_load(r->prod) - r->mine;
	uint32_t off, first;

	if (avail > r->size)
		return KF_RING_BAD;
	if (cap > avail)
		cap = avail;
	off = r->mine & (r->size - 1);
	first = r->size - off < cap ? r->size - off : cap;
	ring_copy(buf, r->data + off, first);
	ring_copy((uint8_t *)buf + first, r->data, cap - first);
	if (cap) {
		r->mine += cap;
		ring_store(r->cons, r->mine);
	}
	return cap;
}
