// SPDX-License-Identifier: GPL-2.0-only
/* json_test.c - the CLI's one JSON writer (cli/cli.c, jansson): escaping, UTF-8 kept, invalid bytes replaced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kselftest_harness.h"

/* What json_print() writes for a string of these bytes, into a static buffer. */
static const char *printed(const void *buf, size_t len)
{
	static char out[4096];
	FILE *f = fmemopen(out, sizeof(out), "w");

	json_print(json_bytes(buf, len), f);
	fclose(f);
	return out;
}

#define PRINTS(want, bytes) EXPECT_STREQ(want "\n", printed(bytes, sizeof(bytes) - 1))

TEST(ascii_and_escapes)
{
	PRINTS("\"plain\"", "plain");
	PRINTS("\"\"", "");
	PRINTS("\"q\\\"b\\\\s/\"", "q\"b\\s/");
	/* JSON escapes only what is below 0x20; DEL stays a byte. */
	PRINTS("\"\\n\\t\\r\\b\\f\\u0001\\u001F\x7f\"", "\n\t\r\b\f\x01\x1f\x7f");
}

TEST(nul_bytes_are_kept)
{
	PRINTS("\"a\\u0000b\"", "a\0b");
}

TEST(valid_utf8_comes_out_as_written)
{
	PRINTS("\"h\xc3\xa9llo \xe2\x9c\x93\"", "h\xc3\xa9llo \xe2\x9c\x93");
	PRINTS("\"\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xef\xbf\xbf\"", "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xef\xbf\xbf");
}

/* Each byte of an invalid sequence: one U+FFFD (EF BF BD). */
TEST(invalid_utf8_becomes_replacement_characters)
{
	PRINTS("\"a\xef\xbf\xbd" "b\"", "a\xff" "b");			/* never valid */
	PRINTS("\"\xef\xbf\xbd\"", "\xc3");				/* truncated at the end */
	PRINTS("\"\xef\xbf\xbdx\"", "\xc3x");				/* truncated before ASCII */
	PRINTS("\"\xef\xbf\xbd\xef\xbf\xbd\"", "\xc0\x80");		/* overlong NUL */
	PRINTS("\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"", "\xed\xa0\x80");	/* surrogate */
	PRINTS("\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"", "\xf4\x90\x80\x80"); /* > U+10FFFF */
	PRINTS("\"\xef\xbf\xbd\xef\xbf\xbd\"", "\xe0\x80");		/* overlong, truncated */
	PRINTS("\"\xef\xbf\xbd\xc3\xa9\"", "\x80\xc3\xa9");		/* stray continuation */
}

/* Whatever the bytes, the output parses back as JSON. */
TEST(every_byte_string_parses_back)
{
	unsigned char buf[512];
	json_error_t e;
	json_t *v;

	srand(1);
	for (int round = 0; round < 2000; round++) {
		size_t len = rand() % sizeof(buf);
		const char *text;

		for (size_t i = 0; i < len; i++)
			buf[i] = rand();
		text = printed(buf, len);
		v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
		ASSERT_NE(NULL, v) TH_LOG("round %d: %s", round, e.text);
		ASSERT_TRUE(json_is_string(v));
		ASSERT_LE(len, json_string_length(v));	/* nothing dropped; a byte may grow to 3 */
		json_decref(v);
	}
}

TEST(objects_keep_key_order_and_are_compact)
{
	static char out[256];
	FILE *f = fmemopen(out, sizeof(out), "w");

	json_print(json_pack("{s:i, s:f, s:n, s:[i]}", "z", 1, "a", 12.5, "m", "l", 2), f);
	fclose(f);
	EXPECT_STREQ("{\"z\":1,\"a\":12.5,\"m\":null,\"l\":[2]}\n", out);
}

TEST_HARNESS_MAIN
