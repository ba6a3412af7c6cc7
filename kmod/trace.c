// SPDX-License-Identifier: GPL-2.0-only
/* trace.c - instantiates kfork.ko's tracepoints (trace.h); the other files only include it. */
#define CREATE_TRACE_POINTS
#include "trace.h"
