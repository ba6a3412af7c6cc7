// SPDX-License-Identifier: LGPL-2.1-or-later
/* kf_proto.c - frame encoding, decoding and resynchronisation; freestanding. */
#include "kf_proto.h"

static uint32_t crc_table[256];
static int crc_table_ready;

static void crc_table_fill(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
	crc_table_ready = 1;
}

/* Same result as zlib's crc32(); kept here because the tiny guest has no libc. */
uint32_t kf_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!crc_table_ready)
		crc_table_fill();
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t kf_frame_encode(uint8_t *out, uint8_t type, const void *payload, uint32_t len)
{
	const uint8_t *src = payload;
	uint32_t crc;

	if (len > KF_FRAME_MAX_PAYLOAD)
		return 0;
	out[0] = KF_FRAME_MAGIC0;
	out[1] = KF_FRAME_MAGIC1;
	out[2] = type;
	out[3] = 0;
	put_le32(out + 4, len);
	for (uint32_t i = 0; i < len; i++)
		out[KF_FRAME_HDR_LEN + i] = src[i];
	crc = kf_crc32(0, out, KF_FRAME_HDR_LEN + len);
	put_le32(out + KF_FRAME_HDR_LEN + len, crc);
	return KF_FRAME_HDR_LEN + len + KF_FRAME_CRC_LEN;
}

enum { DEC_SYNC0, DEC_SYNC1, DEC_HDR, DEC_BODY };

void kf_decoder_init(struct kf_decoder *dec)
{
	dec->state = DEC_SYNC0;
	dec->have = 0;
	dec->need = 0;
	dec->type = 0;
	dec->len = 0;
	dec->error = 0;
}

enum kf_dec_status kf_decoder_feed(struct kf_decoder *dec, const uint8_t *data,
				   size_t len, size_t *used)
{
	size_t i = 0;

	while (i < len) {
		uint8_t b = data[i];

		switch (dec->state) {
		case DEC_SYNC0:
			i++;
			if (b == KF_FRAME_MAGIC0) {
				dec->buf[0] = b;
				dec->state = DEC_SYNC1;
			}
			break;
		case DEC_SYNC1:
			if (b != KF_FRAME_MAGIC1) {
				/* Do not consume: the byte may start a new frame. */
				dec->state = DEC_SYNC0;
				break;
			}
			i++;
			dec->buf[1] = b;
			dec->have = 2;
			dec->state = DEC_HDR;
			break;
		case DEC_HDR:
			dec->buf[dec->have++] = b;
			i++;
			if (dec->have < KF_FRAME_HDR_LEN)
				break;
			dec->len = get_le32(dec->buf + 4);
			if (dec->len > KF_FRAME_MAX_PAYLOAD || dec->buf[3] != 0) {
				dec->state = DEC_SYNC0;
				dec->error = dec->buf[3] ? "non-zero frame flags" :
					     "frame length over limit";
				*used = i;
				return KF_DEC_ERROR;
			}
			dec->need = KF_FRAME_HDR_LEN + dec->len + KF_FRAME_CRC_LEN;
			dec->state = DEC_BODY;
			break;
		case DEC_BODY: {
			size_t n = dec->need - dec->have;

			if (n > len - i)
				n = len - i;
			for (size_t k = 0; k < n; k++)
				dec->buf[dec->have + k] = data[i + k];
			dec->have += n;
			i += n;
			if (dec->have < dec->need)
				break;
			dec->state = DEC_SYNC0;
			*used = i;
			if (kf_crc32(0, dec->buf, KF_FRAME_HDR_LEN + dec->len) !=
			    get_le32(dec->buf + KF_FRAME_HDR_LEN + dec->len)) {
				dec->error = "frame checksum mismatch";
				return KF_DEC_ERROR;
			}
			dec->type = dec->buf[2];
			return KF_DEC_FRAME;
		}
		}
	}
	*used = i;
	return KF_DEC_MORE;
}
