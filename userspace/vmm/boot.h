/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* boot.h - load a guest into fresh memory and set its first vCPU state. */
#ifndef KF_VMM_BOOT_H
#define KF_VMM_BOOT_H

#include "vmm/vm.h"

/* Linux vmlinux (ELF with a PVH entry note) + initrd + command line. */
int boot_pvh(struct vm *vm, const char *vmlinux, const char *initrd, const char *cmdline);

/* A flat 32-bit image loaded at BOOT_FLAT_ADDR and entered there in protected mode. */
#define BOOT_FLAT_ADDR	0x10000ULL
int boot_flat(struct vm *vm, const char *image);

#endif
