/* SPDX-License-Identifier: GPL-2.0-only */
/* internal.h - kfork.ko's objects (template, clone) shared between its files. */
#ifndef KFORK_INTERNAL_H
#define KFORK_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/kvm.h>
#include <linux/sizes.h>
#include <linux/mm_types.h>
#include <linux/types.h>

#include "uapi/kfork.h"

#define KFORK_MAX_CLONES	4096
#define KFORK_MAX_MEM_SIZE	(3ULL << 30)	/* what libkfork's VMM supports */
#define KFORK_MAX_STATE_LEN	SZ_1M
#define KFORK_MAX_WSET		SZ_1M
/* KVM_SET_XSAVE reads KVM_CAP_XSAVE2 bytes whatever the item holds. */
#define KFORK_XSAVE_SLACK	SZ_16K

/* Module-wide counts of live objects, for the leak tests. */
extern atomic64_t kfork_live_templates;
extern atomic64_t kfork_live_clones;

/* The template's frozen machine state, parsed: data of each item or NULL. */
struct kfork_state {
	void *buf;
	u32 len;
	const void *item[KFORK_STATE_MAX];
	u32 item_len[KFORK_STATE_MAX];
	u32 max_item_len;
};

struct kfork_template {
	struct kref ref;		/* template fd + each clone */
	struct file *mem;		/* module-owned shmem, sealed: never written again */
	struct file *kvm_dev;		/* /dev/kvm, opened by the registering process */
	u64 mem_size;
	u32 max_clones;
	struct kfork_state state;
	/* Set once (cmpxchg), freed with the template: readers need no lock. */
	u64 *wset;
	u32 wset_len;
	u32 scratch_len;		/* user bytes the KVM ioctls need */
	atomic_t live_clones;
	atomic64_t next_id;
	atomic64_t spawns, spawn_failures, resets, pages_copied;
};

struct kfork_clone {
	struct kfork_template *tmpl;	/* reference held */
	struct file *vm;		/* reference held; the VM fd is the caller's */
	struct file *vcpu;		/* reference held */
	struct mm_struct *mm;		/* mmgrab'd: resets only from this mm */
	unsigned long mem_addr;		/* guest memory in mm */
	u64 id;
};

/* Everything a spawn returns, before it is copied to user space. */
struct kfork_spawn_out {
	int clone_fd, vm_fd, vcpu_fd;
	unsigned long mem_addr, run_addr;
	u32 run_size;
	u64 prefaulted, clone_id;
};

/* chardev.c */
bool kfork_file_is_kvm(struct file *file, const char *name, bool prefix);

/* template.c */
long kfork_template_create(void __user *uarg);
void kfork_template_put(struct kfork_template *tmpl);

/* state.c */
int kfork_state_parse(struct kfork_state *st);
long kfork_kvm_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

/* A user-space buffer in the caller's mm that KVM's own ioctl handlers read from. */
struct kfork_scratch {
	unsigned long addr;
	u32 len;
};

int kfork_scratch_map(struct kfork_scratch *s, u32 len);
void kfork_scratch_unmap(struct kfork_scratch *s);
long kfork_kvm_ioctl_buf(struct file *file, unsigned int cmd, struct kfork_scratch *s,
			 const void *arg, u32 len);
int kfork_state_restore(struct kfork_template *tmpl, struct file *vm, struct file *vcpu,
			struct kfork_scratch *s, bool in_place);

/* clone.c */
int kfork_clone_spawn(struct kfork_template *tmpl, u32 flags, struct kfork_scratch *s,
		      struct kfork_spawn_out *out);

/* prefault.c */
int kfork_prefault(struct kfork_template *tmpl, struct file *vcpu, const unsigned long *dirty,
		   u64 *done);

/* reset.c */
long kfork_clone_reset(struct kfork_clone *clone, void __user *uarg);

#endif /* KFORK_INTERNAL_H */
