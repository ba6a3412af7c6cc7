/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uart.h - a 16550A on COM1 (0x3f8, IRQ 4): the only channel between host and guest. */
#ifndef KF_VMM_UART_H
#define KF_VMM_UART_H

#include <stddef.h>
#include <stdint.h>

#define UART_COM1_BASE	0x3f8
#define UART_COM1_IRQ	4
#define UART_NR_PORTS	8
/*
 * In loopback the guest feeds its own RX queue: like a 16550's FIFO it holds
 * this much, and a byte that finds it full is dropped with LSR's overrun bit
 * set, so a flooding guest cannot make the host buffer grow.
 */
#define UART_LOOP_FIFO	16

/* Register state, saved into the template and restored into each clone. */
struct uart_regs {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	uint8_t thr_pending;	/* THRE interrupt pending */
	uint8_t irq_level;	/* what was last driven on IRQ 4 */
	uint8_t pad[7];
} __attribute__((packed));

struct uart {
	struct uart_regs regs;
	/* host -> guest bytes not yet read by the guest */
	uint8_t *rx;
	size_t rx_head, rx_tail, rx_cap;
	uint8_t overrun;	/* LSR OE: a loopback byte was dropped; cleared by an LSR read */
	/* guest -> host: called for every byte written to THR */
	void (*tx)(void *arg, uint8_t byte);
	void *tx_arg;
};

void uart_init(struct uart *uart);
void uart_free(struct uart *uart);
void uart_rx_clear(struct uart *uart);
int uart_rx_push(struct uart *uart, const void *buf, size_t len);
size_t uart_rx_pending(const struct uart *uart);

/* PIO access at port offset off (0..7); *data in and out. Returns 1 if the IRQ level changed. */
int uart_io(struct uart *uart, unsigned int off, int is_write, uint8_t *data);
/* Level IRQ 4 must have now. */
int uart_irq_level(struct uart *uart);

#endif
