/* SPDX-License-Identifier: GPL-2.0-only */
/* string.h - fuzzer shim: the kernel's memset and friends are libc's. */
#ifndef KFORK_SHIM_LINUX_STRING_H
#define KFORK_SHIM_LINUX_STRING_H

#include <string.h>

#endif
