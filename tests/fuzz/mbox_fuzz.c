// SPDX-License-Identifier: GPL-2.0-only
/* mbox_fuzz.c - libFuzzer target: the host side of the mailbox against a guest that writes anything. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sanitizer/asan_interface.h>

#include "fuzz.h"
#include "proto/kf_mbox.h"
#include "vmm/mbox.h"

/*
 * The input is a script of guest moves (scribble an index, a header field
 * or ring bytes; consume h2g like a real agent; read the UART) and host
 * calls (send, doorbell, re-attach). Guest RAM outside the mailbox's header
 * and its two rings is ASan-poisoned, so any host access there, or past the
 * end of RAM, is a crash; so is a send touching g2h, or a doorbell writing
 * it (read-only meanwhile). After each host call: the host wrote nothing
 * else the guest owns (h2g_cons, g2h_prod, agent_flags), a refused ring
 * left the mailbox down, and a doorbell
 * delivered at most one ring's worth. A scribbled header also goes through
 * mbox_template_check(), as a template frozen with it would.
 */

#define MEM_SIZE	(2 * KF_MBOX_SIZE)	/* the least mbox_format() takes */

struct rx_state {
	struct kf_decoder *dec;
	size_t got;	/* bytes delivered by the current doorbell */
};

static void rx_decode(void *arg, const uint8_t *buf, size_t len)
{
	struct rx_state *rx = arg;
	size_t used;

	FUZZ_CHECK(len > 0 && len <= 4096);
	rx->got += len;
	/* What exec.c does with g2h bytes: frames out of them. */
	while (len) {
		kf_decoder_feed(rx->dec, buf, len, &used);
		buf += used;
		len -= used;
	}
}

struct input {
	const uint8_t *p;
	size_t left;
};

static uint32_t take(struct input *in, unsigned int bytes)
{
	uint32_t v = 0;

	for (unsigned int i = 0; i < bytes && in->left; i++, in->left--)
		v |= (uint32_t)*in->p++ << (8 * i);
	return v;
}

static void poison_outside_mailbox(uint8_t *mem, int on)
{
	uint8_t *mb = mem + mbox_gpa(MEM_SIZE);
	void (*f)(const volatile void *, size_t) = on ? __asan_poison_memory_region :
							__asan_unpoison_memory_region;

	f(mem, mbox_gpa(MEM_SIZE));
	f(mb + sizeof(struct kf_mbox_hdr), KF_MBOX_H2G_OFF - sizeof(struct kf_mbox_hdr));
	f(mb + KF_MBOX_G2H_OFF + KF_MBOX_G2H_SIZE, KF_MBOX_SIZE - KF_MBOX_G2H_OFF - KF_MBOX_G2H_SIZE);
}

/* What the guest owns in the header, to check the host left it alone. */
struct guest_owned {
	uint32_t h2g_cons, g2h_prod, agent_flags;
};

static void guest_owned_get(const struct kf_mbox_hdr *h, struct guest_owned *g)
{
	g->h2g_cons = h->h2g_cons;
	g->g2h_prod = h->g2h_prod;
	g->agent_flags = h->agent_flags;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct kf_mbox_hdr tmpl, *hdr;
	uint8_t *g2h;
	struct kf_ring guest_h2g;
	struct guest_owned before, after;
	struct rx_state rx = { 0 };
	struct vm vm;
	struct mbox m;
	static uint8_t *mem, *buf;
	static struct kf_decoder *rx_dec;
	int steps = 0;

	/* Allocated once: fresh 512 KiB per input made this the slowest target. */
	if (!mem) {
		mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		rx_dec = malloc(sizeof(*rx_dec));
		buf = malloc(2 * KF_MBOX_H2G_SIZE);
		FUZZ_CHECK(mem != MAP_FAILED && rx_dec && buf);
	}
	memset(&vm, 0, sizeof(vm));
	memset(&m, 0, sizeof(m));
	snprintf(vm.name, sizeof(vm.name), "fuzz clone");
	uart_init(&vm.uart);
	vm.mem = mem;
	vm.mem_size = MEM_SIZE;
	memset(mem + mbox_gpa(MEM_SIZE), 0, KF_MBOX_SIZE);	/* what the rest of RAM holds is poisoned */
	rx.dec = rx_dec;
	kf_decoder_init(rx.dec);

	FUZZ_CHECK(mbox_format(&vm) == 0);
	hdr = (struct kf_mbox_hdr *)(vm.mem + mbox_gpa(MEM_SIZE));
	g2h = (uint8_t *)hdr + KF_MBOX_G2H_OFF;	/* page-aligned: mem is a mapping */
	hdr->agent_flags = KF_MBOX_AGENT_ON;
	/* A template frozen with the rings at some offset (input's choice). */
	hdr->h2g_prod = hdr->h2g_cons = take(&in, 4);
	hdr->g2h_prod = hdr->g2h_cons = take(&in, 4);
	tmpl = *hdr;
	FUZZ_CHECK(mbox_template_check(&tmpl, "fuzz template") == 1);
	m.rx = rx_decode;
	m.rx_arg = &rx;
	poison_outside_mailbox(vm.mem, 1);
	FUZZ_CHECK(mbox_attach(&m, &vm, &tmpl) == 0);
	kf_ring_init(&guest_h2g, (uint8_t *)hdr + KF_MBOX_H2G_OFF, KF_MBOX_H2G_SIZE,
		     &hdr->h2g_prod, &hdr->h2g_cons, 0);

	while (in.left && steps++ < 64) {
		uint8_t op = take(&in, 1);
		uint32_t v, len;
		int ret;

		switch (op % 10) {
		case 0:	/* guest: any h2g consumer index */
			hdr->h2g_cons = take(&in, 4);
			break;
		case 1:	/* guest: g2h producer moves by a small or any amount */
			v = take(&in, 4);
			hdr->g2h_prod += (op & 0x10) ? v : v % (KF_MBOX_G2H_SIZE + 2);
			break;
		case 2:	/* guest: bytes into g2h data, anywhere */
			v = take(&in, 4) % KF_MBOX_G2H_SIZE;
			len = take(&in, 1);
			for (uint32_t i = 0; i < len && in.left; i++)
				((uint8_t *)hdr)[KF_MBOX_G2H_OFF + (v + i) % KF_MBOX_G2H_SIZE] =
					take(&in, 1);
			break;
		case 3:	/* guest: any header byte; a template frozen like that is checked too */
			v = take(&in, 2) % sizeof(*hdr);
			((uint8_t *)hdr)[v] = take(&in, 1);
			ret = mbox_template_check(hdr, "fuzz template");
			FUZZ_CHECK(ret == 0 || ret == 1 || ret == -EPROTO);
			break;
		case 4:	/* guest: consumes h2g as the agent does */
			kf_ring_init(&guest_h2g, (uint8_t *)hdr + KF_MBOX_H2G_OFF, KF_MBOX_H2G_SIZE,
				     &hdr->h2g_prod, &hdr->h2g_cons, 0);
			kf_ring_get(&guest_h2g, buf, take(&in, 3) % (KF_MBOX_H2G_SIZE + 1));
			break;
		case 5: {	/* guest: reads the UART (the doorbell byte) */
			uint8_t b;

			uart_io(&vm.uart, 0, 0, &b);
			break;
		}
		case 6:	/* host: send up to a page, or (op & 0x20) up to two rings' worth */
		case 7:	/* host: doorbell */
			guest_owned_get(hdr, &before);
			if (op % 10 == 6) {
				/* A send has no business in g2h at all: poisoned, not compared. */
				len = take(&in, 3) % ((op & 0x20) ? 2 * KF_MBOX_H2G_SIZE + 1 : 4097);
				memset(buf, op, len);
				__asan_poison_memory_region((uint8_t *)hdr + KF_MBOX_G2H_OFF,
							    KF_MBOX_G2H_SIZE);
				ret = mbox_send(&m, &vm, buf, len);
				__asan_unpoison_memory_region((uint8_t *)hdr + KF_MBOX_G2H_OFF,
							      KF_MBOX_G2H_SIZE);
			} else {
				/* A doorbell reads g2h and must not write it: read-only meanwhile. */
				FUZZ_CHECK(!mprotect(g2h, KF_MBOX_G2H_SIZE, PROT_READ));
				rx.got = 0;
				ret = mbox_doorbell(&m, &vm);
				FUZZ_CHECK(!mprotect(g2h, KF_MBOX_G2H_SIZE, PROT_READ | PROT_WRITE));
				FUZZ_CHECK(rx.got <= KF_MBOX_G2H_SIZE);
			}
			FUZZ_CHECK(ret == 0 || ret == -EPROTO);
			FUZZ_CHECK(ret == 0 || !m.on);
			guest_owned_get(hdr, &after);
			FUZZ_CHECK(!memcmp(&before, &after, sizeof(before)));
			if (!m.on)
				FUZZ_CHECK(mbox_send(&m, &vm, "x", 1) == -EPROTO);
			break;
		case 8:	/* host: reset re-attaches, the header is the template's again */
			FUZZ_CHECK(mbox_attach(&m, &vm, &tmpl) == 0);
			FUZZ_CHECK(!memcmp(hdr, &tmpl, sizeof(tmpl)));
			break;
		case 9:	/* host: the pending queue never holds more than was sent */
			FUZZ_CHECK(m.pend_len <= m.pend_cap && m.pend_head <= m.pend_cap - m.pend_len);
			break;
		}
	}

	poison_outside_mailbox(vm.mem, 0);
	mbox_free(&m);
	uart_free(&vm.uart);
	return 0;
}
