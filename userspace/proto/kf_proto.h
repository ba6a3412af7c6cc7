/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kf_proto.h - the framed protocol spoken between host and guest agent over the serial line. */
#ifndef KF_PROTO_H
#define KF_PROTO_H

/*
 * Wire format (all integers little-endian):
 *
 *   u8 magic0 'K', u8 magic1 'F', u8 type, u8 flags (0),
 *   u32 len (payload bytes, <= KF_FRAME_MAX_PAYLOAD),
 *   u8 payload[len],
 *   u32 crc32 (IEEE, over the 8 header bytes and the payload)
 *
 * The stream is binary-safe; a receiver that sees garbage resynchronises on
 * the next "KF". This header builds freestanding (the tiny test guest uses it).
 */
#include <stdint.h>
#include <stddef.h>

#define KF_FRAME_MAGIC0		'K'
#define KF_FRAME_MAGIC1		'F'
#define KF_FRAME_HDR_LEN	8
#define KF_FRAME_CRC_LEN	4
#define KF_FRAME_MAX_PAYLOAD	65536
#define KF_FRAME_MAX_LEN	(KF_FRAME_HDR_LEN + KF_FRAME_MAX_PAYLOAD + KF_FRAME_CRC_LEN)

/* Largest stdout/stderr chunk an agent sends in one frame. */
#define KF_OUTPUT_CHUNK		4096

enum kf_msg_type {
	/* host -> guest */
	KF_MSG_INIT = 1,	/* struct kf_msg_init: seed, wall clock, clone id */
	KF_MSG_EXEC = 2,	/* struct kf_msg_exec + code bytes */
	KF_MSG_STDIN = 3,	/* raw stdin bytes; a zero-length STDIN is EOF */
	KF_MSG_PING = 4,	/* empty; answered by PONG */
	/* guest -> host */
	KF_MSG_READY = 16,	/* agent is serving; payload: template kind, text */
	KF_MSG_INIT_OK = 17,	/* INIT applied; empty */
	KF_MSG_STDOUT = 18,	/* raw bytes */
	KF_MSG_STDERR = 19,	/* raw bytes */
	KF_MSG_EXIT = 20,	/* struct kf_msg_exit */
	KF_MSG_ERROR = 21,	/* struct kf_msg_error + message text */
	KF_MSG_PONG = 22,	/* empty */
	KF_MSG_TYPE_MAX = 23,
};

#define KF_SEED_LEN	32

struct kf_msg_init {
	uint8_t  seed[KF_SEED_LEN];	/* fed to the guest CRNG before any user code */
	uint64_t wall_sec;		/* host CLOCK_REALTIME */
	uint32_t wall_nsec;
	uint32_t pad;			/* must be zero */
	uint64_t clone_id;
} __attribute__((packed));

enum kf_lang {
	KF_LANG_SH = 0,		/* busybox sh -c CODE */
	KF_LANG_PYTHON = 1,	/* Python source, run by the warm interpreter */
	/*
	 * Python source run in place by the warm interpreter itself (no fork),
	 * in one globals dict kept across such execs: a session. If the code
	 * ends the interpreter, EXIT carries KF_EXIT_F_SESSION_LOST and every
	 * later Python exec fails with KF_ERR_SESSION until the clone is reset.
	 */
	KF_LANG_PYTHON_SESSION = 2,
	KF_LANG_MAX = 3,
};

struct kf_msg_exec {
	uint8_t  lang;		/* enum kf_lang */
	uint8_t  pad[3];	/* must be zero */
	uint32_t code_len;	/* bytes of code following this struct */
} __attribute__((packed));

enum kf_exit_kind {
	KF_EXIT_CODE = 0,	/* value is the exit status, 0..255 */
	KF_EXIT_SIGNAL = 1,	/* value is the signal number */
};

/*
 * Or'ed into kind, only in answer to a KF_LANG_PYTHON_SESSION exec: the
 * session's interpreter itself ended (os._exit, a signal); value is its
 * status. A host rejects the flag on any other exec.
 */
#define KF_EXIT_F_SESSION_LOST	0x100u

struct kf_msg_exit {
	uint32_t kind;		/* enum kf_exit_kind */
	int32_t  value;
} __attribute__((packed));

enum kf_err {
	KF_ERR_BAD_FRAME = 1,	/* bad checksum, length or magic */
	KF_ERR_BAD_TYPE = 2,	/* unknown or unexpected message type */
	KF_ERR_BAD_MSG = 3,	/* payload malformed (size, pad, language) */
	KF_ERR_EXEC = 4,	/* could not start the program */
	KF_ERR_BUSY = 5,	/* EXEC while another is running */
	KF_ERR_INIT = 6,	/* could not apply seed or clock */
	KF_ERR_SESSION = 7,	/* Python exec after the interpreter ended; reset the clone */
};

struct kf_msg_error {
	uint32_t code;		/* enum kf_err */
	/* followed by a human-readable message, not NUL-terminated */
} __attribute__((packed));

_Static_assert(sizeof(struct kf_msg_init) == 56, "kf_msg_init layout");
_Static_assert(sizeof(struct kf_msg_exec) == 8, "kf_msg_exec layout");
_Static_assert(sizeof(struct kf_msg_exit) == 8, "kf_msg_exit layout");
_Static_assert(sizeof(struct kf_msg_error) == 4, "kf_msg_error layout");

uint32_t kf_crc32(uint32_t crc, const void *buf, size_t len);

/*
 * Encode one frame into out (at least KF_FRAME_HDR_LEN + len + KF_FRAME_CRC_LEN
 * bytes). Returns the number of bytes written, or 0 if len is too large.
 */
size_t kf_frame_encode(uint8_t *out, uint8_t type, const void *payload, uint32_t len);

/* Incremental decoder: feed it bytes as they arrive, in any chunking. */
enum kf_dec_status {
	KF_DEC_MORE = 0,	/* consumed input, no frame complete yet */
	KF_DEC_FRAME = 1,	/* a frame is complete: dec->type, dec->buf, dec->len */
	KF_DEC_ERROR = 2,	/* a malformed frame was dropped; dec->error says why */
};

struct kf_decoder {
	uint32_t state;		/* private */
	uint32_t have;		/* private: bytes of the current frame collected */
	uint32_t need;		/* private */
	uint8_t  type;		/* valid after KF_DEC_FRAME */
	uint32_t len;		/* payload length, valid after KF_DEC_FRAME */
	const char *error;	/* static text, valid after KF_DEC_ERROR */
	uint8_t  buf[KF_FRAME_MAX_LEN];	/* header + payload + crc; payload at buf + 8 */
};

void kf_decoder_init(struct kf_decoder *dec);
/* Between frames: no byte of a frame consumed yet. */
int kf_decoder_idle(const struct kf_decoder *dec);

/*
 * Consume bytes from data[0..len) until a frame completes or an error is found.
 * *used is set to how many bytes were consumed; call again with the rest.
 */
enum kf_dec_status kf_decoder_feed(struct kf_decoder *dec, const uint8_t *data,
				   size_t len, size_t *used);

static inline const uint8_t *kf_decoder_payload(const struct kf_decoder *dec)
{
	return dec->buf + KF_FRAME_HDR_LEN;
}

#endif /* KF_PROTO_H */
