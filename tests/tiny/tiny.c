// SPDX-License-Identifier: GPL-2.0-only
/* tiny.c - a freestanding 32-bit test guest that speaks the agent protocol with a few commands. */
#include "proto/kf_proto.h"

/*
 * Commands (the EXEC code, run when stdin reaches EOF):
 *   echo TEXT | err TEXT | exit N | cat | seed | clock | id
 *   peek ADDR | poke ADDR VAL   (hex, 32-bit words of guest RAM)
 *   dirty N                     (write one byte in each of N pages from 1 MiB)
 *   out N                       (N bytes of a-z pattern on stdout)
 *   spin                        (never answers: for timeouts)
 * It polls the UART with interrupts off, so it needs no IDT.
 */

#define COM1	0x3f8
#define DIRTY_BASE	0x100000u
#define DIRTY_MAX	512u

static struct kf_decoder dec;
static uint8_t txbuf[KF_FRAME_HDR_LEN + KF_OUTPUT_CHUNK + KF_FRAME_CRC_LEN];
static char cmd[256];
static uint32_t cmd_len;
static uint8_t in[4096];
static uint32_t in_len;
static int have_exec;
static struct kf_msg_init init;

/* Freestanding gcc may emit calls to these. */
void *memcpy(void *d, const void *s, unsigned int n);
void *memset(void *d, int c, unsigned int n);
void tiny_main(void);

void *memcpy(void *d, const void *s, unsigned int n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memset(void *d, int c, unsigned int n)
{
	uint8_t *dp = d;

	while (n--)
		*dp++ = c;
	return d;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void send(uint8_t type, const void *p, uint32_t len)
{
	uint32_t n = kf_frame_encode(txbuf, type, p, len);

	for (uint32_t i = 0; i < n; i++)
		outb(COM1, txbuf[i]);
}

static void send_exit(int32_t code)
{
	struct kf_msg_exit ex = { .kind = KF_EXIT_CODE, .value = code };

	send(KF_MSG_EXIT, &ex, sizeof(ex));
}

static void send_error(uint32_t code, const char *text)
{
	uint8_t buf[64];
	struct kf_msg_error e = { .code = code };
	uint32_t n = sizeof(e);

	memcpy(buf, &e, sizeof(e));
	while (*text && n < sizeof(buf))
		buf[n++] = *text++;
	send(KF_MSG_ERROR, buf, n);
}

static int starts(const char *word)
{
	uint32_t i = 0;

	for (; word[i]; i++)
		if (i >= cmd_len || cmd[i] != word[i])
			return 0;
	return i == cmd_len || cmd[i] == ' ';
}

static uint32_t parse_num(uint32_t *pos, int base)
{
	uint32_t v = 0;

	while (*pos < cmd_len && cmd[*pos] == ' ')
		(*pos)++;
	for (; *pos < cmd_len; (*pos)++) {
		char c = cmd[*pos];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			break;
		v = v * base + d;
	}
	return v;
}

static uint32_t fmt_hex(char *out, const uint8_t *p, uint32_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (uint32_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	return 2 * n;
}

static uint32_t fmt_u32(char *out, uint32_t v)
{
	char tmp[10];
	uint32_t n = 0, len = 0;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (n)
		out[len++] = tmp[--n];
	return len;
}

static void run_out(uint32_t total)
{
	static uint8_t chunk[KF_OUTPUT_CHUNK];
	uint32_t sent = 0;

	while (sent < total) {
		uint32_t n = total - sent > KF_OUTPUT_CHUNK ? KF_OUTPUT_CHUNK : total - sent;

		for (uint32_t i = 0; i < n; i++)
			chunk[i] = 'a' + (sent + i) % 26;
		send(KF_MSG_STDOUT, chunk, n);
		sent += n;
	}
}

static void run_command(void)
{
	char out[128];
	uint32_t pos, n = 0, status = 0;

	if (starts("echo") || starts("err")) {
		pos = starts("echo") ? 5 : 4;
		for (; pos < cmd_len && n < sizeof(out) - 1; pos++)
			out[n++] = cmd[pos];
		out[n++] = '\n';
		send(starts("echo") ? KF_MSG_STDOUT : KF_MSG_STDERR, out, n);
	} else if (starts("exit")) {
		pos = 4;
		status = parse_num(&pos, 10) & 0xff;
	} else if (starts("cat")) {
		if (in_len)
			send(KF_MSG_STDOUT, in, in_len);
	} else if (starts("seed")) {
		n = fmt_hex(out, init.seed, KF_SEED_LEN);
		out[n++] = '\n';
		send(KF_MSG_STDOUT, out, n);
	} else if (starts("clock") || starts("id")) {
		n = fmt_u32(out, starts("id") ? (uint32_t)init.clone_id : (uint32_t)init.wall_sec);
		out[n++] = '\n';
		send(KF_MSG_STDOUT, out, n);
	} else if (starts("peek")) {
		uint32_t v;

		pos = 4;
		v = *(volatile uint32_t *)(uintptr_t)parse_num(&pos, 16);
		n = fmt_hex(out, (const uint8_t *)&v, 4);
		out[n++] = '\n';
		send(KF_MSG_STDOUT, out, n);
	} else if (starts("poke")) {
		uint32_t addr, val;

		pos = 4;
		addr = parse_num(&pos, 16);
		val = parse_num(&pos, 16);
		*(volatile uint32_t *)(uintptr_t)addr = val;
	} else if (starts("dirty")) {
		pos = 5;
		n = parse_num(&pos, 10);
		if (n > DIRTY_MAX)
			n = DIRTY_MAX;
		for (uint32_t i = 0; i < n; i++)
			*(volatile uint8_t *)(uintptr_t)(DIRTY_BASE + i * 4096) = 0xd1;
	} else if (starts("out")) {
		pos = 3;
		run_out(parse_num(&pos, 10));
	} else if (starts("rawexit")) {
		/* A hostile EXIT: any kind (hex) and value, for the host's checks. */
		struct kf_msg_exit ex;

		pos = 7;
		ex.kind = parse_num(&pos, 16);
		ex.value = (int32_t)parse_num(&pos, 10);
		send(KF_MSG_EXIT, &ex, sizeof(ex));
		return;
	} else if (starts("agenterr")) {
		pos = 8;
		send_error(parse_num(&pos, 10), "tiny: agenterr");
		return;
	} else if (starts("spin")) {
		for (;;)
			__asm__ volatile("pause");
	} else {
		send(KF_MSG_STDERR, "tiny: unknown command\n", 22);
		status = 127;
	}
	send_exit(status);
}

static void on_frame(void)
{
	const uint8_t *p = kf_decoder_payload(&dec);
	uint32_t len = dec.len;

	switch (dec.type) {
	case KF_MSG_INIT:
		if (len != sizeof(init)) {
			send_error(KF_ERR_BAD_MSG, "INIT size");
			return;
		}
		memcpy(&init, p, sizeof(init));
		send(KF_MSG_INIT_OK, 0, 0);
		return;
	case KF_MSG_EXEC: {
		struct kf_msg_exec ex;

		if (len < sizeof(ex)) {
			send_error(KF_ERR_BAD_MSG, "EXEC size");
			return;
		}
		memcpy(&ex, p, sizeof(ex));
		if (ex.code_len != len - sizeof(ex) || ex.code_len >= sizeof(cmd)) {
			send_error(KF_ERR_BAD_MSG, "EXEC code length");
			return;
		}
		memcpy(cmd, p + sizeof(ex), ex.code_len);
		cmd_len = ex.code_len;
		in_len = 0;
		have_exec = 1;
		return;
	}
	case KF_MSG_STDIN:
		if (!have_exec) {
			send_error(KF_ERR_BAD_TYPE, "STDIN without EXEC");
			return;
		}
		if (len == 0) {
			have_exec = 0;
			run_command();
			return;
		}
		for (uint32_t i = 0; i < len && in_len < sizeof(in); i++)
			in[in_len++] = p[i];
		return;
	case KF_MSG_PING:
		send(KF_MSG_PONG, 0, 0);
		return;
	default:
		send_error(KF_ERR_BAD_TYPE, "unknown type");
	}
}

__attribute__((section(".text.start"))) void tiny_main(void)
{
	kf_decoder_init(&dec);
	send(KF_MSG_READY, "tiny", 4);
	for (;;) {
		uint8_t b;
		size_t used;
		enum kf_dec_status st;

		if (!(inb(COM1 + 5) & 1))
			continue;
		b = inb(COM1);
		st = kf_decoder_feed(&dec, &b, 1, &used);
		if (st == KF_DEC_FRAME)
			on_frame();
		else if (st == KF_DEC_ERROR)
			send_error(KF_ERR_BAD_FRAME, dec.error);
	}
}
