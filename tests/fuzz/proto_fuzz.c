// SPDX-License-Identifier: GPL-2.0-only
/* proto_fuzz.c - libFuzzer target: the frame decoder fed hostile bytes in hostile chunks. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/kf_proto.h"

/*
 * Input: one byte choosing how the stream is cut, then the stream. Checked:
 * the decoder never reads or writes outside its input and buffer (ASan),
 * always makes progress, reports only frames whose length is in bounds and
 * whose checksum holds, and cuts the stream the same way whatever the
 * chunking (a one-shot pass and a chunked pass yield the same events).
 */

#define MAX_EVENTS	4096

struct event {
	int status;
	uint8_t type;
	uint32_t len;
	uint32_t crc;	/* of the payload, for frames */
};

static size_t decode_all(struct kf_decoder *dec, const uint8_t *data, size_t size,
			 uint8_t cut, struct event *ev)
{
	size_t off = 0, n = 0, step = 0;

	kf_decoder_init(dec);
	while (off < size && n < MAX_EVENTS) {
		size_t chunk = size - off, used = (size_t)-1;
		enum kf_dec_status st;

		if (cut) {	/* chunk sizes 1..cut, varying with the data */
			step = (step * 31 + data[off] + 7) % cut + 1;
			if (chunk > step)
				chunk = step;
		}
		st = kf_decoder_feed(dec, data + off, chunk, &used);
		FUZZ_CHECK(used <= chunk);
		FUZZ_CHECK(st == KF_DEC_MORE || st == KF_DEC_FRAME || st == KF_DEC_ERROR);
		/* MORE means it ate the whole chunk; otherwise it must be stuck. */
		FUZZ_CHECK(st != KF_DEC_MORE || used == chunk);
		FUZZ_CHECK(used > 0 || st != KF_DEC_MORE);
		off += used;
		if (st == KF_DEC_MORE)
			continue;
		ev[n].status = st;
		ev[n].type = 0;
		ev[n].len = 0;
		ev[n].crc = 0;
		if (st == KF_DEC_FRAME) {
			const uint8_t *p = kf_decoder_payload(dec);

			FUZZ_CHECK(dec->len <= KF_FRAME_MAX_PAYLOAD);
			FUZZ_CHECK(dec->type == dec->buf[2]);
			FUZZ_CHECK(kf_decoder_idle(dec));
			ev[n].type = dec->type;
			ev[n].len = dec->len;
			ev[n].crc = kf_crc32(0, p, dec->len);
			/* The frame re-encodes to exactly the bytes it came from. */
			{
				static uint8_t again[KF_FRAME_MAX_LEN];
				size_t len = kf_frame_encode(again, dec->type, p, dec->len);

				FUZZ_CHECK(len == KF_FRAME_HDR_LEN + dec->len + KF_FRAME_CRC_LEN);
				FUZZ_CHECK(!memcmp(again, dec->buf, len));
			}
		} else {
			FUZZ_CHECK(dec->error && dec->error[0]);
		}
		n++;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event one[MAX_EVENTS], cut[MAX_EVENTS];
	struct kf_decoder *dec;
	size_t n_one, n_cut;
	uint8_t how;

	if (!size)
		return 0;
	how = data[0];
	data++;
	size--;
	dec = malloc(sizeof(*dec));
	FUZZ_CHECK(dec);
	n_one = decode_all(dec, data, size, 0, one);
	n_cut = decode_all(dec, data, size, how, cut);
	if (n_one < MAX_EVENTS && n_cut < MAX_EVENTS) {
		FUZZ_CHECK(n_one == n_cut);
		FUZZ_CHECK(!memcmp(one, cut, n_one * sizeof(one[0])));
	}

	/* Encoding: whatever the payload, it decodes back to itself. */
	if (size <= KF_FRAME_MAX_PAYLOAD) {
		static uint8_t frame[KF_FRAME_MAX_LEN];
		size_t len = kf_frame_encode(frame, how, data, size), used = 0;

		FUZZ_CHECK(len == KF_FRAME_HDR_LEN + size + KF_FRAME_CRC_LEN);
		kf_decoder_init(dec);
		FUZZ_CHECK(kf_decoder_feed(dec, frame, len, &used) == KF_DEC_FRAME);
		FUZZ_CHECK(used == len && dec->type == how && dec->len == size);
		FUZZ_CHECK(!memcmp(kf_decoder_payload(dec), data, size));
	}
	free(dec);
	return 0;
}
