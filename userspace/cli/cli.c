// SPDX-License-Identifier: GPL-2.0-only
/* cli.c - exit codes, errors, strict number parsing and JSON output shared by every kfork subcommand. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("kfork: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(CLI_EXIT_ERROR);
}

void usage_exit(const char *text, int help)
{
	fputs(text, help ? stdout : stderr);
	exit(help ? CLI_EXIT_OK : CLI_EXIT_ERROR);
}

unsigned long long parse_count(const char *opt, const char *text, unsigned long long min,
			       unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	/* strtoull takes "-1" as a huge number and skips leading blanks: digits only. */
	if (text[0] < '0' || text[0] > '9')
		goto bad;
	v = strtoull(text, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	return v;
bad:
	die("%s %s: expected a whole number from %llu to %llu", opt, text, min, max);
}

unsigned int parse_seconds_ms(const char *opt, const char *text, double max)
{
	double s;
	char *end;

	errno = 0;
	if ((text[0] < '0' || text[0] > '9') && text[0] != '.')
		goto bad;
	s = strtod(text, &end);
	if (errno || *end || !isfinite(s) || s < 0.001 || s > max)
		goto bad;
	return (unsigned int)llround(s * 1000);
bad:
	die("%s %s: expected seconds, from 0.001 to %.0f", opt, text, max);
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, surrogates, > U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

json_t *json_bytes(const void *buf, size_t len)
{
	static const char replacement[] = "\xef\xbf\xbd";	/* U+FFFD */
	const unsigned char *p = buf;
	char *clean, *q;
	json_t *v;

	clean = malloc(len * 3 + 1);	/* every byte may become three */
	if (!clean)
		die("out of memory");
	q = clean;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(p + i, len - i);

		if (n) {
			memcpy(q, p + i, n);
			q += n;
			i += n;
		} else {
			memcpy(q, replacement, 3);
			q += 3;
			i++;
		}
	}
	v = json_stringn_nocheck(clean, q - clean);
	free(clean);
	if (!v)
		die("out of memory");
	return v;
}

void json_print(json_t *v, FILE *f)
{
	if (!v || json_dumpf(v, f, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) || fputc('\n', f) == EOF)
		die("writing JSON: %s", v ? strerror(errno) : "out of memory");
	json_decref(v);
	fflush(f);
}
