/* SPDX-License-Identifier: GPL-2.0-only */
/* types.h - fuzzer shim: the kernel's u8..u64 and bool on top of the uapi <linux/types.h>. */
#ifndef KFORK_SHIM_LINUX_TYPES_H
#define KFORK_SHIM_LINUX_TYPES_H

#include_next <linux/types.h>
#include <stdbool.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

#endif
