// SPDX-License-Identifier: LGPL-2.1-or-later
/* error.c - per-thread last-error text for libkfork callers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kfork.h"
#include "lib/error.h"

static __thread char last_error[512];

int kf_fail(int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(last_error) && err < 0)
		snprintf(last_error + n, sizeof(last_error) - n, ": %s", strerror(-err));
	return err;
}

int kf_reject(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return err;
}

const char *kf_last_error(void)
{
	return last_error[0] ? last_error : "no error";
}
