/* SPDX-License-Identifier: GPL-2.0-only */
/* state_parse.h - the frozen machine state blob: its item table and its parser, kernel-free. */
#ifndef KFORK_STATE_PARSE_H
#define KFORK_STATE_PARSE_H

/*
 * Only <linux/types.h>, <linux/kvm.h> and the uapi header: tests/fuzz builds
 * state_parse.c in user space against tests/fuzz/kshim/ for the few kernel
 * names it uses, so keep kernel-only headers out of this file and of it.
 */
#include <linux/types.h>
#include <linux/kvm.h>

#include "uapi/kfork.h"

struct kfork_state_desc {
	const char *name;
	unsigned int set;	/* KVM_SET_* ioctl */
	unsigned int get;	/* KVM_GET_* ioctl, for the optional items' defaults */
	u32 size;		/* fixed size, 0: variable */
	bool vm_scope;		/* VM ioctl, else vCPU */
	bool optional;
};

/* Indexed by tag; the tags are restored in this order (LAB.md's restore order). */
extern const struct kfork_state_desc kfork_state_table[KFORK_STATE_MAX];

/* The template's frozen machine state, parsed: data of each item or NULL. */
struct kfork_state {
	void *buf;
	u32 len;
	const void *item[KFORK_STATE_MAX];
	u32 item_len[KFORK_STATE_MAX];
	u32 max_item_len;
};

/*
 * st->buf/len come from user space: every length is checked before use. On
 * success every required item is present, each item lies inside buf, and
 * the variable-size ones (CPUID, MSRS, XSAVE) hold what their headers say.
 */
int kfork_state_parse(struct kfork_state *st);

#endif /* KFORK_STATE_PARSE_H */
