// SPDX-License-Identifier: GPL-2.0-only
/* uart_test.c - the 16550 model under a hostile guest: loopback floods stay bounded, RX order holds. */
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#include "vmm/uart.h"

enum { RBR = 0, LSR = 5, MCR = 4, IIR_FCR = 2 };

static void out(struct uart *u, unsigned int off, uint8_t v)
{
	uart_io(u, off, 1, &v);
}

static uint8_t in(struct uart *u, unsigned int off)
{
	uint8_t v = 0;

	uart_io(u, off, 0, &v);
	return v;
}

/* A guest looping THR writes in loopback mode must not grow the host's queue. */
TEST(loopback_flood_is_bounded_and_reports_overrun)
{
	struct uart u;

	uart_init(&u);
	out(&u, MCR, 0x10);	/* loopback */
	for (unsigned int i = 0; i < 1000000; i++)
		out(&u, RBR, (uint8_t)i);
	EXPECT_EQ(UART_LOOP_FIFO, uart_rx_pending(&u));
	EXPECT_GE(4096, u.rx_cap) TH_LOG("queue grew to %zu bytes", u.rx_cap);
	/* LSR: data ready + overrun once, then overrun cleared by that read. */
	EXPECT_EQ(0x03, in(&u, LSR) & 0x03);
	EXPECT_EQ(0x01, in(&u, LSR) & 0x03);
	/* The first UART_LOOP_FIFO bytes survive, in order. */
	for (unsigned int i = 0; i < UART_LOOP_FIFO; i++)
		EXPECT_EQ((uint8_t)i, in(&u, RBR));
	EXPECT_EQ(0, uart_rx_pending(&u));
	EXPECT_EQ(0, in(&u, LSR) & 0x03);
	uart_free(&u);
}

/* Host bytes already queued are never overwritten by loopback; overflow drops the guest's. */
TEST(loopback_never_displaces_host_bytes)
{
	struct uart u;
	uint8_t host[64];

	uart_init(&u);
	for (unsigned int i = 0; i < sizeof(host); i++)
		host[i] = 0x80 | i;
	ASSERT_EQ(0, uart_rx_push(&u, host, sizeof(host)));
	out(&u, MCR, 0x10);
	out(&u, RBR, 0x55);	/* FIFO already past UART_LOOP_FIFO: dropped */
	EXPECT_EQ(sizeof(host), uart_rx_pending(&u));
	for (unsigned int i = 0; i < sizeof(host); i++)
		ASSERT_EQ(host[i], in(&u, RBR));
	EXPECT_EQ(0x02, in(&u, LSR) & 0x03);
	uart_free(&u);
}

/* FCR's RX clear empties the queue and the overrun flag with it. */
TEST(fifo_clear_resets_overrun)
{
	struct uart u;

	uart_init(&u);
	out(&u, MCR, 0x10);
	for (unsigned int i = 0; i < 2 * UART_LOOP_FIFO; i++)
		out(&u, RBR, 'x');
	out(&u, IIR_FCR, 0x03);
	EXPECT_EQ(0, uart_rx_pending(&u));
	EXPECT_EQ(0, in(&u, LSR) & 0x03);
	uart_free(&u);
}

/* Offsets past the 8 ports are ignored, not used as an index. */
TEST(bad_offset_ignored)
{
	struct uart u;
	uint8_t v = 0xaa;

	uart_init(&u);
	EXPECT_EQ(0, uart_io(&u, 8, 1, &v));
	EXPECT_EQ(0, uart_io(&u, 0xffff, 0, &v));
	EXPECT_EQ(0xaa, v);
	uart_free(&u);
}

TEST_HARNESS_MAIN
