// SPDX-License-Identifier: GPL-2.0-only
/* hostile_guest.c - run as root inside a clone by hostile_test: port, MMIO, RAM and mailbox abuse. */
#include "proto/kf_mbox.h"
#include "proto/kf_proto.h"

/*
 * Static and freestanding (raw syscalls), so hostile_test can send it as an
 * exec's stdin to a clone of the minimal template, which has no libc:
 *   pio SEED N            iopl(3), then N random IN/OUT of random size on random ports
 *   mmio SEED N           N random reads/writes at random addresses in [3 GiB, 4 GiB)
 *                         through /dev/mem (doorbell, IOAPIC, LAPIC, nothing)
 *   rewrite MEMSIZE       read every page of guest RAM and write it back unchanged
 *   wipe MEMSIZE          write 0xcc over every page of guest RAM, top down
 *   mbox MBOXGPA SEED N   N rounds of garbage in the g2h ring: random bytes, frames of
 *                         every type with bad lengths, oversized headers, wild indices,
 *                         each followed by a doorbell
 *   clihlt 0              iopl(3), then cli; hlt (6.1's iopl emulation grants ports, not
 *                         CLI: expect SIGSEGV, so a clone cannot halt with interrupts off
 *                         this way; halt -f does it through the kernel)
 * Exit status: 0 done, 2 bad arguments, 3 a syscall failed (iopl, open, mmap).
 */

#define SYS_write	1
#define SYS_open	2
#define SYS_close	3
#define SYS_mmap	9
#define SYS_munmap	11
#define SYS_pread64	17
#define SYS_pwrite64	18
#define SYS_exit_group	231
#define SYS_iopl	172

#define O_RDWR		2
#define O_SYNC		04010000
#define PROT_RW		3
#define MAP_SHARED	1
#define PAGE		4096ul

void *memcpy(void *d, const void *s, unsigned long n);
void *memset(void *d, int c, unsigned long n);
void hostile_main(long *sp);

void *memcpy(void *d, const void *s, unsigned long n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memset(void *d, int c, unsigned long n)
{
	uint8_t *dp = d;

	while (n--)
		*dp++ = c;
	return d;
}

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10),
			 "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return ret;
}

static __attribute__((noreturn)) void quit(int code)
{
	for (;;)
		sys6(SYS_exit_group, code, 0, 0, 0, 0, 0);
}

static void say(const char *s)
{
	unsigned long n = 0;

	while (s[n])
		n++;
	sys6(SYS_write, 1, (long)s, n, 0, 0, 0);
}

static void fail(const char *s)
{
	say(s);
	say("\n");
	quit(3);
}

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t num(const char *s)
{
	uint64_t v = 0, base = 10;

	if (s[0] == '0' && s[1] == 'x') {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		int d = *s >= '0' && *s <= '9' ? *s - '0' :
			*s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : 99;

		if (d >= (int)base)
			quit(2);
		v = v * base + d;
	}
	return v;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static long devmem(void)
{
	long fd = sys6(SYS_open, (long)"/dev/mem", O_RDWR | O_SYNC, 0, 0, 0, 0);

	if (fd < 0)
		fail("open /dev/mem");
	return fd;
}

static void *map(long fd, uint64_t pa, uint64_t len)
{
	long p = sys6(SYS_mmap, 0, len, PROT_RW, MAP_SHARED, fd, pa);

	if (p < 0 && p > -4096)
		fail("mmap /dev/mem");
	return (void *)p;
}

static void pio(uint64_t n)
{
	if (sys6(SYS_iopl, 3, 0, 0, 0, 0, 0) < 0)
		fail("iopl(3)");
	say("iopl ok; ");
	__asm__ volatile("outb %b0, $0x80" : : "a"(0));	/* the POST port: nobody there */
	say("first out ok; ");
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = rnd();
		uint16_t port = r & 0xffff;
		uint32_t v = r >> 32;

		switch ((r >> 16) % 6) {
		case 0: __asm__ volatile("outb %b0, %w1" : : "a"(v), "Nd"(port)); break;
		case 1: __asm__ volatile("outw %w0, %w1" : : "a"(v), "Nd"(port)); break;
		case 2: __asm__ volatile("outl %0, %w1" : : "a"(v), "Nd"(port)); break;
		case 3: __asm__ volatile("inb %w1, %b0" : "=a"(v) : "Nd"(port)); break;
		case 4: __asm__ volatile("inw %w1, %w0" : "=a"(v) : "Nd"(port)); break;
		default: __asm__ volatile("inl %w1, %0" : "=a"(v) : "Nd"(port)); break;
		}
	}
}

static void mmio(uint64_t n)
{
	long fd = devmem();

	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = rnd();
		uint64_t pa = 0xc0000000ull + ((r & 0x3ffff) << 12);
		volatile uint8_t *p;

		if (i % 4 == 0)	/* the doorbell page and the APICs get their share */
			pa = (uint64_t[]){ KF_MBOX_DOORBELL_GPA, 0xfec00000, 0xfee00000, pa }[(r >> 20) & 3];
		p = map(fd, pa, PAGE);
		p += (r >> 24) & (PAGE - 8);
		switch ((r >> 40) % 4) {
		case 0: *(volatile uint32_t *)p = (uint32_t)(r >> 8); break;
		case 1: *p = (uint8_t)r; break;
		case 2: (void)*(volatile uint32_t *)p; break;
		default: *(volatile uint64_t *)p = r; break;
		}
		sys6(SYS_munmap, (long)(p - ((r >> 24) & (PAGE - 8))), PAGE, 0, 0, 0, 0);
	}
	sys6(SYS_close, fd, 0, 0, 0, 0, 0);
}

#define CHUNK	(16 * PAGE)
static uint8_t chunk[CHUNK];

/* 64 KiB at a time: fewer syscalls, and the window in which the kernel changes what we rewrite. */
static void ram(uint64_t mem_size, int wipe)
{
	long fd = devmem();

	memset(chunk, 0xcc, CHUNK);
	for (uint64_t pa = mem_size & ~(CHUNK - 1); pa >= CHUNK; pa -= CHUNK) {
		if (!wipe && sys6(SYS_pread64, fd, (long)chunk, CHUNK, pa - CHUNK, 0, 0) != CHUNK)
			continue;	/* a hole /dev/mem will not read: leave it */
		sys6(SYS_pwrite64, fd, (long)chunk, CHUNK, pa - CHUNK, 0, 0);
	}
	sys6(SYS_close, fd, 0, 0, 0, 0, 0);
}

static uint8_t frame[KF_FRAME_MAX_LEN];

static void mbox(uint64_t gpa, uint64_t n)
{
	long fd = devmem();
	uint8_t *base = map(fd, gpa, KF_MBOX_SIZE);
	volatile uint32_t *bell = map(fd, KF_MBOX_DOORBELL_GPA, PAGE);
	volatile uint32_t *prod = (volatile uint32_t *)(base + 192);
	uint8_t *g2h = base + KF_MBOX_G2H_OFF;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = rnd();
		uint32_t len = 0, at = *prod;

		switch (r % 5) {
		case 0:	/* random bytes */
			len = 1 + (r >> 8) % 4096;
			for (uint32_t k = 0; k < len; k++)
				frame[k] = (uint8_t)rnd();
			break;
		case 1:	/* a valid frame of any type, any payload size */
			len = kf_frame_encode(frame, (uint8_t)(r >> 8), frame + 64,
					      (uint32_t)(r >> 16) % 2048);
			break;
		case 2:	/* an EXIT frame whose payload is the wrong size */
			len = kf_frame_encode(frame, KF_MSG_EXIT, frame + 64, 1 + (r >> 8) % 64);
			break;
		case 3:	/* a header claiming 4 GiB of payload */
			frame[0] = KF_FRAME_MAGIC0;
			frame[1] = KF_FRAME_MAGIC1;
			frame[2] = KF_MSG_STDOUT;
			frame[3] = 0;
			frame[4] = frame[5] = frame[6] = frame[7] = 0xff;
			len = KF_FRAME_HDR_LEN;
			break;
		default:	/* wild producer index, then nothing */
			*prod = (uint32_t)(r >> 8);
			break;
		}
		for (uint32_t k = 0; k < len; k++)
			g2h[(at + k) & (KF_MBOX_G2H_SIZE - 1)] = frame[k];
		if (len)
			*prod = at + len;
		*bell = 1;
	}
}

/* Entered from _start with the initial stack: argc, argv[], NULL, envp[]. */
void hostile_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);

	if (argc < 3)
		quit(2);
	if (streq(argv[1], "pio") && argc == 4) {
		rng = num(argv[2]) | 1;
		pio(num(argv[3]));
	} else if (streq(argv[1], "mmio") && argc == 4) {
		rng = num(argv[2]) | 1;
		mmio(num(argv[3]));
	} else if (streq(argv[1], "rewrite") || streq(argv[1], "wipe")) {
		ram(num(argv[2]) & ~(PAGE - 1), streq(argv[1], "wipe"));
	} else if (streq(argv[1], "clihlt")) {
		if (sys6(SYS_iopl, 3, 0, 0, 0, 0, 0) < 0)
			fail("iopl(3)");
		__asm__ volatile("cli; hlt");
	} else if (streq(argv[1], "mbox") && argc == 5) {
		rng = num(argv[3]) | 1;
		mbox(num(argv[2]), num(argv[4]));
	} else {
		quit(2);
	}
	say("done\n");
	quit(0);
}

__asm__(".globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall hostile_main\n\thlt\n");
