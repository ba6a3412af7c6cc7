/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* error.h - the per-thread "last error" line every libkfork failure leaves behind. */
#ifndef KF_ERROR_H
#define KF_ERROR_H

#include <errno.h>

/* Record "fmt: strerror(-err)" and return err (a -errno), for `return kf_fail(...)`. */
int kf_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same without the errno text: for refusals that are not a failed call. */
int kf_reject(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
