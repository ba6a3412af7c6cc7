/* SPDX-License-Identifier: GPL-2.0-only */
/* kernel.h - fuzzer shim: ALIGN() and max() as the kernel defines them for kmod/state_parse.c. */
#ifndef KFORK_SHIM_LINUX_KERNEL_H
#define KFORK_SHIM_LINUX_KERNEL_H

#include <linux/types.h>

/* include/linux/align.h: a is a power of two. */
#define ALIGN(x, a)	(((x) + ((__typeof__(x))(a) - 1)) & ~((__typeof__(x))(a) - 1))

/* include/linux/minmax.h's max(), with its same-type check, each argument once. */
#define max(x, y) ({					\
	__typeof__(x) _max_x = (x);			\
	__typeof__(y) _max_y = (y);			\
	(void)(&_max_x == &_max_y);			\
	_max_x > _max_y ? _max_x : _max_y; })

#endif
