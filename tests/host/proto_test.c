// SPDX-License-Identifier: GPL-2.0-only
/* proto_test.c - the serial frame codec: checksum, round trip, resync, and refusals. */
#include <string.h>

#include "proto/kf_proto.h"
#include "kselftest_harness.h"

static struct kf_decoder dec;
static uint8_t wire[3 * KF_FRAME_MAX_LEN];

/* Feed all of buf; count frames and errors; keep the last frame in dec. */
static void feed(const uint8_t *buf, size_t len, int *frames, int *errors)
{
	while (len) {
		size_t used = 0;

		switch (kf_decoder_feed(&dec, buf, len, &used)) {
		case KF_DEC_FRAME:
			(*frames)++;
			break;
		case KF_DEC_ERROR:
			(*errors)++;
			break;
		default:
			break;
		}
		buf += used;
		len -= used;
	}
}

TEST(crc32_is_ieee)
{
	ASSERT_EQ(0xcbf43926u, kf_crc32(0, "123456789", 9));
	/* incremental == one shot */
	ASSERT_EQ(kf_crc32(0, "123456789", 9), kf_crc32(kf_crc32(0, "1234", 4), "56789", 5));
}

TEST(refuses_oversized_payload)
{
	static uint8_t big[KF_FRAME_MAX_PAYLOAD + 1];

	ASSERT_EQ(0, kf_frame_encode(wire, KF_MSG_STDOUT, big, sizeof(big)));
}

TEST(bad_checksum_is_an_error_then_next_frame_decodes)
{
	int frames = 0, errors = 0;
	size_t n = kf_frame_encode(wire, KF_MSG_STDOUT, "hello", 5);
	size_t m = kf_frame_encode(wire + n, KF_MSG_PING, NULL, 0);

	wire[KF_FRAME_HDR_LEN + 1] ^= 1;	/* flip a payload bit of the first */
	kf_decoder_init(&dec);
	feed(wire, n + m, &frames, &errors);
	EXPECT_EQ(1, errors);
	EXPECT_EQ(1, frames);
	EXPECT_EQ(KF_MSG_PING, dec.type);
}

TEST(over_long_length_is_refused_at_the_header)
{
	uint8_t hdr[KF_FRAME_HDR_LEN] = { 'K', 'F', KF_MSG_STDOUT, 0, 0xff, 0xff, 0xff, 0x7f };
	int frames = 0, errors = 0;

	kf_decoder_init(&dec);
	feed(hdr, sizeof(hdr), &frames, &errors);
	EXPECT_EQ(1, errors);
	EXPECT_EQ(0, frames);
}

TEST(non_zero_flags_are_refused)
{
	int frames = 0, errors = 0;
	size_t n = kf_frame_encode(wire, KF_MSG_PING, NULL, 0);

	wire[3] = 1;
	kf_decoder_init(&dec);
	feed(wire, n, &frames, &errors);
	EXPECT_EQ(1, errors);
	EXPECT_EQ(0, frames);
}

TEST(resyncs_after_garbage_including_a_lone_K)
{
	static const uint8_t junk[] = "boot chatter K KKF";
	int frames = 0, errors = 0;
	size_t j = sizeof(junk) - 2;	/* ends in "KK": the second K starts nothing */
	size_t n;

	memcpy(wire, junk, j);
	n = kf_frame_encode(wire + j, KF_MSG_STDERR, "x", 1);
	kf_decoder_init(&dec);
	feed(wire, j + n, &frames, &errors);
	EXPECT_EQ(1, frames);
	EXPECT_EQ(KF_MSG_STDERR, dec.type);
	EXPECT_EQ(1, dec.len);
	EXPECT_EQ('x', kf_decoder_payload(&dec)[0]);
}

TEST(binary_payload_round_trips_byte_by_byte)
{
	static uint8_t payload[KF_FRAME_MAX_PAYLOAD];
	int frames = 0, errors = 0;
	size_t n;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + (i >> 8));	/* includes 'K', 'F', 0, 0xff */
	n = kf_frame_encode(wire, KF_MSG_STDOUT, payload, sizeof(payload));
	ASSERT_EQ(KF_FRAME_MAX_LEN, n);
	kf_decoder_init(&dec);
	for (size_t i = 0; i < n; i++)
		feed(wire + i, 1, &frames, &errors);
	EXPECT_EQ(0, errors);
	ASSERT_EQ(1, frames);
	EXPECT_EQ(sizeof(payload), dec.len);
	EXPECT_EQ(0, memcmp(payload, kf_decoder_payload(&dec), sizeof(payload)));
}

TEST_HARNESS_MAIN
