// SPDX-License-Identifier: GPL-2.0-only
/* mbox_test.c - the frame mailbox: byte rings (wraparound, full, hostile indices) and the host side. */
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#include "kfork.h"
#include "proto/kf_mbox.h"
#include "vmm/mbox.h"

/* --- the ring alone ------------------------------------------------------------ */

#define RSIZE	16u
#define GUARD	64u

/* data[RSIZE] between two guard areas that no ring operation may touch. */
struct ring_mem {
	uint8_t below[GUARD];
	uint8_t data[RSIZE];
	uint8_t above[GUARD];
	uint32_t prod, cons;
};

static void ring_mem_init(struct ring_mem *m, uint32_t start)
{
	memset(m->below, 0xa5, GUARD);
	memset(m->above, 0xa5, GUARD);
	memset(m->data, 0, RSIZE);
	m->prod = m->cons = start;
}

static int guards_intact(const struct ring_mem *m)
{
	for (unsigned int i = 0; i < GUARD; i++)
		if (m->below[i] != 0xa5 || m->above[i] != 0xa5)
			return 0;
	return 1;
}

static void ring_pair(struct ring_mem *m, struct kf_ring *prod, struct kf_ring *cons)
{
	kf_ring_init(prod, m->data, RSIZE, &m->prod, &m->cons, 1);
	kf_ring_init(cons, m->data, RSIZE, &m->prod, &m->cons, 0);
}

TEST(ring_round_trips_across_the_end_and_index_overflow)
{
	struct ring_mem m;
	struct kf_ring p, c;
	uint8_t out[RSIZE];

	ring_mem_init(&m, UINT32_MAX - 5);	/* the u32 indices wrap mid-test */
	ring_pair(&m, &p, &c);
	ASSERT_EQ(10, kf_ring_put(&p, "0123456789", 10));
	ASSERT_EQ(10, kf_ring_get(&c, out, sizeof(out)));
	EXPECT_EQ(0, memcmp(out, "0123456789", 10));
	/* Offset is now 4 into the data: 12 bytes run past the end and wrap. */
	ASSERT_EQ(12, kf_ring_put(&p, "abcdefghijkl", 12));
	ASSERT_EQ(5, kf_ring_get(&c, out, 5));
	ASSERT_EQ(7, kf_ring_get(&c, out + 5, sizeof(out) - 5));
	EXPECT_EQ(0, memcmp(out, "abcdefghijkl", 12));
	EXPECT_EQ(0, kf_ring_get(&c, out, sizeof(out)));
	EXPECT_EQ(m.prod, m.cons);
	EXPECT_EQ((uint32_t)(UINT32_MAX - 5 + 22), m.prod);
	EXPECT_TRUE(guards_intact(&m));
}

TEST(ring_full_takes_what_fits_then_nothing)
{
	static const char src[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	struct ring_mem m;
	struct kf_ring p, c;
	uint8_t out[32];

	ring_mem_init(&m, 0);
	ring_pair(&m, &p, &c);
	ASSERT_EQ(RSIZE, kf_ring_put(&p, src, 20));
	EXPECT_EQ(0, kf_ring_space(&p));
	EXPECT_EQ(0, kf_ring_put(&p, "x", 1));
	ASSERT_EQ(5, kf_ring_get(&c, out, 5));
	EXPECT_EQ(5, kf_ring_space(&p));
	ASSERT_EQ(5, kf_ring_put(&p, src + RSIZE, 10));
	ASSERT_EQ(RSIZE, kf_ring_get(&c, out, sizeof(out)));
	/* Nothing lost, nothing reordered: F..Z, the 21 bytes that were accepted. */
	EXPECT_EQ(0, memcmp(out, src + 5, RSIZE));
	EXPECT_TRUE(guards_intact(&m));
}

TEST(ring_idle_calls_leave_shared_indices_alone)
{
	struct ring_mem m;
	struct kf_ring p, c;
	uint8_t out[4];

	ring_mem_init(&m, 7);
	ring_pair(&m, &p, &c);
	m.cons = 3;	/* a stale shared copy: an empty get must not rewrite it */
	c.mine = 7;
	EXPECT_EQ(0, kf_ring_get(&c, out, sizeof(out)));
	EXPECT_EQ(3, m.cons);
	m.cons = 7;
	EXPECT_EQ(0, kf_ring_put(&p, "x", 0));
	EXPECT_EQ(7, m.prod);
}

TEST(ring_hostile_consumer_index_is_refused)
{
	/* Consumer index 0 - 17 would mean 17 bytes in flight in a 16-byte ring. */
	static const uint32_t bad[] = { 1, 100, RSIZE + 1, 0x80000000u, (uint32_t)-RSIZE - 1 };
	struct ring_mem m;
	struct kf_ring p, c;

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ring_mem_init(&m, 0);
		ring_pair(&m, &p, &c);
		/* The consumer claims to be ahead of the producer, or too far behind. */
		m.cons = bad[i];
		EXPECT_EQ(KF_RING_BAD, kf_ring_space(&p));
		EXPECT_EQ(KF_RING_BAD, kf_ring_put(&p, "0123456789abcdef", RSIZE));
		EXPECT_EQ(0, m.prod);
		EXPECT_TRUE(guards_intact(&m));
	}
}

TEST(ring_hostile_producer_index_is_refused)
{
	static const uint32_t bad[] = { RSIZE + 1, 0x80000000u, UINT32_MAX };
	struct ring_mem m;
	struct kf_ring p, c;
	uint8_t out[GUARD];

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ring_mem_init(&m, 0);
		ring_pair(&m, &p, &c);
		m.prod = bad[i];	/* claims more bytes in flight than the ring holds */
		memset(out, 0x5a, sizeof(out));
		EXPECT_EQ(KF_RING_BAD, kf_ring_get(&c, out, sizeof(out)));
		EXPECT_EQ(0x5a, out[0]);
		EXPECT_EQ(0, m.cons);
		EXPECT_TRUE(guards_intact(&m));
	}
	/* Exactly full is legal. */
	ring_mem_init(&m, 0);
	ring_pair(&m, &p, &c);
	m.prod = RSIZE;
	EXPECT_EQ(RSIZE, kf_ring_get(&c, out, sizeof(out)));
	EXPECT_TRUE(guards_intact(&m));
}

/* --- the host side: a VM's memory without KVM ------------------------------------- */

#define MEM_SIZE	(4u << 20)

struct rx_log {
	uint8_t buf[1 << 20];
	size_t len;
};

static void rx_collect(void *arg, const uint8_t *buf, size_t len)
{
	struct rx_log *log = arg;

	if (log->len + len <= sizeof(log->buf)) {
		memcpy(log->buf + log->len, buf, len);
		log->len += len;
	}
}

FIXTURE(host) {
	struct vm vm;
	struct kf_mbox_hdr tmpl;
	struct mbox m;
	struct kf_mbox_hdr *hdr;	/* the guest's view */
	struct kf_ring guest_h2g, guest_g2h;
	struct rx_log *log;
};

static void guest_rings(struct _test_data_host *self)
{
	uint8_t *base = (uint8_t *)self->hdr;

	kf_ring_init(&self->guest_h2g, base + KF_MBOX_H2G_OFF, KF_MBOX_H2G_SIZE,
		     &self->hdr->h2g_prod, &self->hdr->h2g_cons, 0);
	kf_ring_init(&self->guest_g2h, base + KF_MBOX_G2H_OFF, KF_MBOX_G2H_SIZE,
		     &self->hdr->g2h_prod, &self->hdr->g2h_cons, 1);
}

FIXTURE_SETUP(host)
{
	memset(&self->vm, 0, sizeof(self->vm));
	memset(&self->m, 0, sizeof(self->m));
	snprintf(self->vm.name, sizeof(self->vm.name), "clone 1");
	uart_init(&self->vm.uart);
	self->vm.mem = calloc(1, MEM_SIZE);
	self->vm.mem_size = MEM_SIZE;
	self->log = calloc(1, sizeof(*self->log));
	ASSERT_NE(NULL, self->vm.mem);
	ASSERT_NE(NULL, self->log);
	/* What boot and the agent leave in the template. */
	ASSERT_EQ(0, mbox_format(&self->vm));
	self->hdr = (struct kf_mbox_hdr *)(self->vm.mem + mbox_gpa(MEM_SIZE));
	self->hdr->agent_flags = KF_MBOX_AGENT_ON;
	self->tmpl = *self->hdr;
	ASSERT_EQ(1, mbox_template_check(&self->tmpl, "test template"));
	self->m.rx = rx_collect;
	self->m.rx_arg = self->log;
	ASSERT_EQ(0, mbox_attach(&self->m, &self->vm, &self->tmpl));
	guest_rings(self);
}

FIXTURE_TEARDOWN(host)
{
	mbox_free(&self->m);
	uart_free(&self->vm.uart);
	free(self->vm.mem);
	free(self->log);
}

TEST_F(host, template_check_tells_serial_mailbox_and_mismatch_apart)
{
	struct kf_mbox_hdr h = self->tmpl;

	h.agent_flags = 0;
	EXPECT_EQ(0, mbox_template_check(&h, "t"));	/* agent without a mailbox */
	h = self->tmpl;
	h.magic = 0;
	EXPECT_EQ(0, mbox_template_check(&h, "t"));	/* VMM without a mailbox */
	h = self->tmpl;
	h.g2h_size = 1u << 30;
	EXPECT_EQ(-EPROTO, mbox_template_check(&h, "t"));
	h = self->tmpl;
	h.h2g_prod = 5;		/* frozen with bytes in flight */
	EXPECT_EQ(-EPROTO, mbox_template_check(&h, "t"));
	EXPECT_NE(NULL, strstr(kf_last_error(), "rebuild the template"));
}

TEST_F(host, attach_puts_a_scribbled_header_back)
{
	self->hdr->magic = 0;
	self->hdr->h2g_cons = 12345;
	self->hdr->g2h_prod = 777;
	self->hdr->agent_flags = 0;
	ASSERT_EQ(0, mbox_attach(&self->m, &self->vm, &self->tmpl));
	EXPECT_EQ(0, memcmp(self->hdr, &self->tmpl, sizeof(self->tmpl)));
}

TEST_F(host, doorbell_delivers_g2h_in_order_and_leaves_it_empty)
{
	uint8_t chunk[3000];
	size_t sent = 0;

	for (int round = 0; round < 100; round++) {
		int32_t n;

		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (uint8_t)(sent + i);
		n = kf_ring_put(&self->guest_g2h, chunk, sizeof(chunk));
		ASSERT_EQ(sizeof(chunk), n);
		sent += n;
		ASSERT_EQ(0, mbox_doorbell(&self->m, &self->vm));
		EXPECT_EQ(self->hdr->g2h_prod, self->hdr->g2h_cons);
	}
	ASSERT_EQ(sent, self->log->len);
	for (size_t i = 0; i < sent; i++)
		ASSERT_EQ((uint8_t)i, self->log->buf[i]);
}

TEST_F(host, send_beyond_the_ring_queues_and_refills_on_doorbells)
{
	const size_t total = 3 * KF_MBOX_H2G_SIZE + 1234;
	uint8_t *src = malloc(total), *got = malloc(total);
	size_t got_len = 0;
	int bells = 0;

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, got);
	for (size_t i = 0; i < total; i++)
		src[i] = (uint8_t)(i * 13 + (i >> 9));
	/* Two sends before the guest runs: one doorbell byte covers both. */
	ASSERT_EQ(0, mbox_send(&self->m, &self->vm, src, 100));
	ASSERT_EQ(0, mbox_send(&self->m, &self->vm, src + 100, total - 100));
	EXPECT_EQ(1, uart_rx_pending(&self->vm.uart));
	while (got_len < total && bells < 100) {
		uint8_t bell;
		int32_t n;

		/* The guest reads the doorbell byte, drains h2g, rings back. */
		uart_io(&self->vm.uart, 0, 0, &bell);
		ASSERT_EQ(KF_MBOX_DOORBELL, bell);
		while ((n = kf_ring_get(&self->guest_h2g, got + got_len, total - got_len)) > 0)
			got_len += n;
		ASSERT_EQ(0, n);
		ASSERT_EQ(0, mbox_doorbell(&self->m, &self->vm));
		bells++;
		if (got_len < total)
			ASSERT_EQ(1, uart_rx_pending(&self->vm.uart));
	}
	EXPECT_EQ(total, got_len);
	EXPECT_EQ(0, memcmp(src, got, total));
	EXPECT_EQ(4, bells);
	EXPECT_EQ(0, uart_rx_pending(&self->vm.uart));	/* nothing left: no stray doorbell */
	free(src);
	free(got);
}

TEST_F(host, hostile_g2h_index_is_a_protocol_error_of_that_clone)
{
	static const uint32_t bad[] = { KF_MBOX_G2H_SIZE + 1, 0x80000000u, UINT32_MAX };

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(0, mbox_attach(&self->m, &self->vm, &self->tmpl));
		self->hdr->g2h_prod = self->hdr->g2h_cons + bad[i];
		EXPECT_EQ(-EPROTO, mbox_doorbell(&self->m, &self->vm));
		EXPECT_NE(NULL, strstr(kf_last_error(), "g2h"));
		EXPECT_EQ(0, self->log->len);
		/* Down until the next spawn or reset re-attaches it. */
		EXPECT_EQ(-EPROTO, mbox_send(&self->m, &self->vm, "x", 1));
	}
	ASSERT_EQ(0, mbox_attach(&self->m, &self->vm, &self->tmpl));
	EXPECT_EQ(0, mbox_send(&self->m, &self->vm, "x", 1));
}

TEST_F(host, hostile_h2g_index_is_a_protocol_error_of_that_clone)
{
	self->hdr->h2g_cons = self->hdr->h2g_prod + 1;	/* consumer ahead of us */
	EXPECT_EQ(-EPROTO, mbox_send(&self->m, &self->vm, "hello", 5));
	EXPECT_NE(NULL, strstr(kf_last_error(), "h2g"));
	EXPECT_EQ(0, uart_rx_pending(&self->vm.uart));
}

TEST_HARNESS_MAIN
