/* SPDX-License-Identifier: GPL-2.0-only */
/* cli.h - what every kfork subcommand shares: exit codes, dying with a message, strict numbers, JSON out. */
#ifndef KF_CLI_CLI_H
#define KF_CLI_CLI_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/*
 * Exit codes, the same for every subcommand (README, kfork(1)). `kfork run`
 * exits with the code's own status, 0-255 (128+N: killed by signal N), so
 * kfork's own codes sit where timeout(1) and env(1) put theirs.
 */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED_CLONES = 1,	/* run -n N: at least one clone failed or exited non-zero */
	CLI_EXIT_LIMIT = 123,		/* run: the code passed --max-output or --max-dirty; clone destroyed */
	CLI_EXIT_TIMEOUT = 124,		/* run: the code ran past --timeout; the clone was destroyed */
	CLI_EXIT_ERROR = 125,		/* kfork itself failed, or was used wrongly */
};

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Prints usage to stdout and exits 0 (--help), or to stderr and exits CLI_EXIT_ERROR. */
void usage_exit(const char *text, int help) __attribute__((noreturn));

/*
 * Strict numbers: all of the text, decimal, in [min, max], or die naming the
 * option ("--count abc: expected a whole number from 1 to 1000000").
 */
unsigned long long parse_count(const char *opt, const char *text, unsigned long long min,
			       unsigned long long max);
/* Seconds, decimals allowed, > 0 and at most max; returned in ms (at least 1). */
unsigned int parse_seconds_ms(const char *opt, const char *text, double max);

/*
 * JSON: one library (jansson) for all of it. Strings from guests are bytes:
 * json_bytes() keeps valid UTF-8 as it is and turns each byte of an invalid
 * sequence into U+FFFD, so the output is always valid JSON and UTF-8.
 */
json_t *json_bytes(const void *buf, size_t len);
/* Prints v compactly, unescaped UTF-8, with a newline; consumes the reference. */
void json_print(json_t *v, FILE *f);

#endif
