// SPDX-License-Identifier: LGPL-2.1-or-later
/* uart.c - 16550A model: FIFO reported, instant transmitter, RX from a host queue. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/uart.h"

enum {
	UART_RBR_THR = 0, UART_IER = 1, UART_IIR_FCR = 2, UART_LCR = 3,
	UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7,
};

#define LCR_DLAB	0x80
#define IER_RDI		0x01
#define IER_THRI	0x02
#define IIR_NO_INT	0x01
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_FIFO	0xc0
#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define LSR_DR		0x01
#define LSR_OE		0x02
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define MCR_LOOP	0x10

void uart_init(struct uart *uart)
{
	memset(uart, 0, sizeof(*uart));
}

void uart_free(struct uart *uart)
{
	free(uart->rx);
	uart->rx = NULL;
	uart->rx_cap = 0;
	uart_rx_clear(uart);
}

void uart_rx_clear(struct uart *uart)
{
	uart->rx_head = uart->rx_tail = 0;
	uart->overrun = 0;
}

size_t uart_rx_pending(const struct uart *uart)
{
	return uart->rx_tail - uart->rx_head;
}

int uart_rx_push(struct uart *uart, const void *buf, size_t len)
{
	size_t used = uart_rx_pending(uart);

	if (uart->rx_head && uart->rx_tail + len > uart->rx_cap) {
		memmove(uart->rx, uart->rx + uart->rx_head, used);
		uart->rx_head = 0;
		uart->rx_tail = used;
	}
	if (uart->rx_tail + len > uart->rx_cap) {
		size_t cap = uart->rx_cap ? uart->rx_cap : 4096;
		uint8_t *rx;

		while (cap < uart->rx_tail + len)
			cap *= 2;
		rx = realloc(uart->rx, cap);
		if (!rx)
			return -ENOMEM;
		uart->rx = rx;
		uart->rx_cap = cap;
	}
	memcpy(uart->rx + uart->rx_tail, buf, len);
	uart->rx_tail += len;
	return 0;
}

static uint8_t uart_iir(const struct uart *uart)
{
	uint8_t fifo = (uart->regs.fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((uart->regs.ier & IER_RDI) && uart_rx_pending(uart))
		return fifo | IIR_RDI;
	if ((uart->regs.ier & IER_THRI) && uart->regs.thr_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

int uart_irq_level(struct uart *uart)
{
	return !(uart_iir(uart) & IIR_NO_INT);
}

static uint8_t uart_msr(const struct uart *uart)
{
	uint8_t mcr = uart->regs.mcr;

	if (!(mcr & MCR_LOOP))
		return 0xb0;	/* DCD, DSR, CTS: a cable is plugged in */
	return (mcr & 0x01 ? 0x20 : 0) | (mcr & 0x02 ? 0x10 : 0) |
	       (mcr & 0x04 ? 0x40 : 0) | (mcr & 0x08 ? 0x80 : 0);
}

static void uart_write(struct uart *uart, unsigned int off, uint8_t val)
{
	struct uart_regs *r = &uart->regs;

	switch (off) {
	case UART_RBR_THR:
		if (r->lcr & LCR_DLAB) {
			r->dll = val;
		} else if (r->mcr & MCR_LOOP) {
			if (uart_rx_pending(uart) >= UART_LOOP_FIFO || uart_rx_push(uart, &val, 1))
				uart->overrun = 1;
			r->thr_pending = 1;
		} else {
			if (uart->tx)
				uart->tx(uart->tx_arg, val);
			r->thr_pending = 1;	/* transmitted at once */
		}
		break;
	case UART_IER:
		if (r->lcr & LCR_DLAB) {
			r->dlm = val;
			break;
		}
		if (!(r->ier & IER_THRI) && (val & IER_THRI))
			r->thr_pending = 1;
		r->ier = val & 0x0f;
		break;
	case UART_IIR_FCR:
		r->fcr = val & 0xc9;
		if (val & FCR_CLEAR_RX)
			uart_rx_clear(uart);
		break;
	case UART_LCR:
		r->lcr = val;
		break;
	case UART_MCR:
		r->mcr = val & 0x1f;
		break;
	case UART_SCR:
		r->scr = val;
		break;
	default:	/* LSR, MSR: read-only */
		break;
	}
}

static uint8_t uart_read(struct uart *uart, unsigned int off)
{
	struct uart_regs *r = &uart->regs;
	uint8_t val;

	switch (off) {
	case UART_RBR_THR:
		if (r->lcr & LCR_DLAB)
			return r->dll;
		if (!uart_rx_pending(uart))
			return 0;
		val = uart->rx[uart->rx_head++];
		if (uart->rx_head == uart->rx_tail)
			uart->rx_head = uart->rx_tail = 0;	/* OE stays until LSR is read */
		return val;
	case UART_IER:
		return (r->lcr & LCR_DLAB) ? r->dlm : r->ier;
	case UART_IIR_FCR:
		val = uart_iir(uart);
		if ((val & 0x0f) == IIR_THRI)
			r->thr_pending = 0;
		return val;
	case UART_LCR:
		return r->lcr;
	case UART_MCR:
		return r->mcr;
	case UART_LSR:
		val = LSR_THRE | LSR_TEMT | (uart_rx_pending(uart) ? LSR_DR : 0) |
		      (uart->overrun ? LSR_OE : 0);
		uart->overrun = 0;
		return val;
	case UART_MSR:
		return uart_msr(uart);
	default:
		return r->scr;
	}
}

int uart_io(struct uart *uart, unsigned int off, int is_write, uint8_t *data)
{
	int before = uart->regs.irq_level;

	if (off >= UART_NR_PORTS)
		return 0;
	if (is_write)
		uart_write(uart, off, *data);
	else
		*data = uart_read(uart, off);
	uart->regs.irq_level = uart_irq_level(uart);
	return before != uart->regs.irq_level;
}
