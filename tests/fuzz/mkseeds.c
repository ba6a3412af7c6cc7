// SPDX-License-Identifier: GPL-2.0-only
/* mkseeds.c - writes the fuzzers' seed corpora (tests/fuzz/corpus/<target>/): small, real inputs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/internal.h"
#include "proto/kf_mbox.h"
#include "proto/kf_proto.h"

/*
 * build/fuzz/mkseeds DIR writes DIR/{proto,mbox,tplfile,state}/. Run by hand
 * when an input format changes (the corpus is committed); each seed is an
 * input its target accepts and goes deep with: well-formed frames and
 * streams, a mailbox script that moves frames both ways, a complete state
 * blob, and template files written by tplfile_write itself.
 */

static const char *out_dir;

static void put_file(const char *target, const char *name, const void *buf, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

struct blob {
	uint8_t buf[1 << 16];
	size_t len;
};

static void blob_put(struct blob *b, const void *p, size_t len)
{
	if (b->len + len > sizeof(b->buf)) {
		fprintf(stderr, "mkseeds: blob too large\n");
		exit(1);
	}
	memcpy(b->buf + b->len, p, len);
	b->len += len;
}

static void blob_frame(struct blob *b, uint8_t type, const void *payload, uint32_t len)
{
	static uint8_t frame[KF_FRAME_MAX_LEN];

	blob_put(b, frame, kf_frame_encode(frame, type, payload, len));
}

static void seeds_proto(void)
{
	struct kf_msg_exit ex = { .kind = KF_EXIT_CODE, .value = 0 };
	struct kf_msg_error er = { .code = KF_ERR_BAD_MSG };
	struct blob b = { .len = 0 };
	uint8_t chunk[KF_OUTPUT_CHUNK];

	b.buf[b.len++] = 0;	/* one-shot vs unchunked */
	blob_frame(&b, KF_MSG_PONG, NULL, 0);
	put_file("proto", "pong", b.buf, b.len);

	b.len = 0;
	b.buf[b.len++] = 5;	/* chunks of 1..5 bytes */
	blob_frame(&b, KF_MSG_READY, "sh\nkfork-agent ready", 20);
	blob_frame(&b, KF_MSG_STDOUT, "hi\n", 3);
	blob_frame(&b, KF_MSG_EXIT, &ex, sizeof(ex));
	put_file("proto", "ready-stdout-exit", b.buf, b.len);

	b.len = 0;
	b.buf[b.len++] = 64;
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7);
	blob_frame(&b, KF_MSG_STDERR, chunk, sizeof(chunk));
	put_file("proto", "stderr-chunk", b.buf, b.len);

	/* Garbage, a false start, a bad checksum, non-zero flags, then a good frame. */
	b.len = 0;
	b.buf[b.len++] = 3;
	blob_put(&b, "\xdbKKxKF", 6);
	blob_frame(&b, KF_MSG_STDOUT, "corrupt", 7);
	b.buf[b.len - 1] ^= 1;
	blob_frame(&b, KF_MSG_STDOUT, "flags", 5);
	b.buf[b.len - 5 - 4 - 8 + 3] = 1;
	blob_put(&b, "KF\x12\x00\xff\xff\xff\x7f", 8);	/* length over the limit */
	er.code = KF_ERR_BAD_FRAME;
	blob_frame(&b, KF_MSG_ERROR, &er, sizeof(er));
	put_file("proto", "resync", b.buf, b.len);

	/* A session's end (KF_EXIT_F_SESSION_LOST), then the error every later exec gets. */
	b.len = 0;
	b.buf[b.len++] = 7;
	ex.kind = KF_EXIT_CODE | KF_EXIT_F_SESSION_LOST;
	ex.value = 5;
	blob_frame(&b, KF_MSG_STDOUT, "bye\n", 4);
	blob_frame(&b, KF_MSG_EXIT, &ex, sizeof(ex));
	er.code = KF_ERR_SESSION;
	blob_frame(&b, KF_MSG_ERROR, &er, sizeof(er));
	put_file("proto", "session-lost", b.buf, b.len);
}

static void le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* mbox_fuzz's script: two start indices, then ops (see mbox_fuzz.c). */
static void seeds_mbox(void)
{
	struct kf_msg_exit ex = { .kind = KF_EXIT_CODE, .value = 3 };
	struct blob frames = { .len = 0 }, b = { .len = 0 };
	uint8_t v[4];

	blob_frame(&frames, KF_MSG_STDOUT, "out\n", 4);
	blob_frame(&frames, KF_MSG_EXIT, &ex, sizeof(ex));

	le32(v, 0);
	blob_put(&b, v, 4);	/* h2g start */
	blob_put(&b, v, 4);	/* g2h start */
	blob_put(&b, "\x06\x40\x00\x00", 4);	/* send 64 bytes */
	blob_put(&b, "\x05", 1);		/* guest reads the doorbell byte */
	blob_put(&b, "\x04\xff\xff\x00", 4);	/* guest drains h2g */
	blob_put(&b, "\x02", 1);		/* guest writes frames into g2h at 0 */
	le32(v, 0);
	blob_put(&b, v, 4);
	b.buf[b.len++] = (uint8_t)frames.len;
	blob_put(&b, frames.buf, frames.len);
	blob_put(&b, "\x01", 1);		/* g2h_prod += frames.len */
	le32(v, (uint32_t)frames.len);
	blob_put(&b, v, 4);
	blob_put(&b, "\x07\x09", 2);		/* doorbell, check the queue */
	put_file("mbox", "round-trip", b.buf, b.len);

	/* Indices about to wrap, a send larger than the ring, a hostile index, a reset. */
	b.len = 0;
	le32(v, UINT32_MAX - 100);
	blob_put(&b, v, 4);
	blob_put(&b, v, 4);
	blob_put(&b, "\x06\xff\xff\x01", 4);	/* send 128 KiB - 1: more than h2g holds */
	blob_put(&b, "\x04\x00\x80\x00\x07\x09", 6);
	blob_put(&b, "\x11\x00\x00\x00\x80", 5);	/* g2h_prod += 2^31 */
	blob_put(&b, "\x07\x06\x01\x00\x00\x08\x07\x09", 8);
	put_file("mbox", "wrap-overflow-hostile", b.buf, b.len);
}

/* A complete state blob, as vmm/state.c saves one and kfork.ko takes it. */
static void state_item(struct blob *b, uint32_t tag, const void *data, uint32_t len)
{
	static const uint8_t zeros[8];
	struct state_hdr h = { .tag = tag, .len = len };

	blob_put(b, &h, sizeof(h));
	blob_put(b, data, len);
	blob_put(b, zeros, (8 - len % 8) % 8);
}

static void state_blob(struct blob *b, int with_xsave)
{
	static uint8_t zero[8192];
	struct {
		struct kvm_cpuid2 h;
		struct kvm_cpuid_entry2 e[2];
	} cpuid = { .h.nent = 2, .e = { { .function = 0, .eax = 0xd }, { .function = 1 } } };
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[2];
	} msrs = { .h.nmsrs = 2, .e = { { .index = 0x10 }, { .index = 0xc0000080, .data = 0x500 } } };
	struct kvm_irqchip chip = { 0 };
	struct kvm_clock_data clock = { .clock = 123456789 };
	struct kvm_vcpu_events ev = { .flags = KVM_VCPUEVENT_VALID_SMM };

	b->len = 0;
	state_item(b, ST_CPUID, &cpuid, sizeof(cpuid));
	state_item(b, ST_PIT2, zero, sizeof(struct kvm_pit_state2));
	state_item(b, ST_CLOCK, &clock, sizeof(clock));
	for (uint32_t id = KVM_IRQCHIP_PIC_MASTER; id <= KVM_IRQCHIP_IOAPIC; id++) {
		chip.chip_id = id;
		state_item(b, ST_PIC_MASTER + id, &chip, sizeof(chip));
	}
	state_item(b, ST_MP_STATE, zero, sizeof(struct kvm_mp_state));
	state_item(b, ST_REGS, zero, sizeof(struct kvm_regs));
	state_item(b, ST_SREGS, zero, sizeof(struct kvm_sregs));
	if (with_xsave) {
		state_item(b, ST_XSAVE, zero, sizeof(struct kvm_xsave));
		state_item(b, ST_XCRS, zero, sizeof(struct kvm_xcrs));
	} else {
		state_item(b, ST_FPU, zero, sizeof(struct kvm_fpu));
	}
	state_item(b, ST_DEBUGREGS, zero, sizeof(struct kvm_debugregs));
	state_item(b, ST_LAPIC, zero, sizeof(struct kvm_lapic_state));
	state_item(b, ST_MSRS, &msrs, sizeof(msrs));
	state_item(b, ST_VCPU_EVENTS, &ev, sizeof(ev));
	state_item(b, ST_UART, zero, sizeof(struct uart_regs));
}

static void seeds_state_and_tplfile(void)
{
	static const uint64_t wset[2] = { 0, 5 | KF_WSET_WRITE };
	static struct blob b;
	static uint8_t mem[16 * VM_PAGE_SIZE], file[1 << 17];
	char tmp[] = "/tmp/kfork-mkseeds-XXXXXX", path[64];
	struct vm_state st = { 0 };
	int fd;

	for (int xsave = 0; xsave < 2; xsave++) {
		ssize_t n;

		state_blob(&b, xsave);
		put_file("state", xsave ? "xsave" : "fpu", b.buf, b.len);

		/* A template file of 16 pages, three of them stored, by the writer itself. */
		st.buf = b.buf;
		st.len = b.len;
		memset(mem, 0, sizeof(mem));
		mem[0] = 0xf4;
		memset(mem + 5 * VM_PAGE_SIZE, 0x5a, 100);
		mem[16 * VM_PAGE_SIZE - 1] = 1;
		if (!mkdtemp(tmp)) {
			perror("mkdtemp");
			exit(1);
		}
		snprintf(path, sizeof(path), "%s/t.tpl", tmp);
		/* The xsave one with a working set of two frames, one written. */
		if (tplfile_write(path, xsave ? KF_KIND_PYTHON : KF_KIND_MINIMAL, mem, sizeof(mem), &st,
				  xsave ? wset : NULL, xsave ? 2 : 0)) {
			fprintf(stderr, "mkseeds: tplfile_write: %s\n", kf_last_error());
			exit(1);
		}
		fd = open(path, O_RDONLY);
		file[0] = xsave;	/* control byte: bit 0, fix the CRC up */
		n = fd < 0 ? -1 : read(fd, file + 1, sizeof(file) - 1);
		if (n <= 0 || n == sizeof(file) - 1) {
			fprintf(stderr, "mkseeds: reading back %s failed\n", path);
			exit(1);
		}
		close(fd);
		unlink(path);
		rmdir(tmp);
		memcpy(tmp + strlen(tmp) - 6, "XXXXXX", 6);
		put_file("tplfile", xsave ? "python-16-pages" : "shell-16-pages", file, n + 1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR   (writes DIR/<target>/ seeds)\n", argv[0]);
		return 2;
	}
	out_dir = argv[1];
	seeds_proto();
	seeds_mbox();
	seeds_state_and_tplfile();
	return 0;
}
