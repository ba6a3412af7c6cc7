/* SPDX-License-Identifier: GPL-2.0-only */
/* internal.h - kfork.ko's objects (template, clone) shared between its files. */
#ifndef KFORK_INTERNAL_H
#define KFORK_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/kvm.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/mm_types.h>
#include <linux/types.h>
#include <linux/wait.h>

#include "state_parse.h"
#include "uapi/kfork.h"

/* The release, as MODULE_VERSION, dkms.conf's PACKAGE_VERSION and libkfork's KF_VERSION_STRING. */
#define KFORK_RELEASE		"0.3.0"

#define KFORK_MAX_CLONES	4096
#define KFORK_MAX_MEM_SIZE	(3ULL << 30)	/* what libkfork's VMM supports */
#define KFORK_MAX_STATE_LEN	SZ_1M
#define KFORK_MAX_WSET		SZ_1M
/* KVM_SET_XSAVE reads KVM_CAP_XSAVE2 bytes whatever the item holds. */
#define KFORK_XSAVE_SLACK	SZ_16K
#define KFORK_MAX_POOL		16
/* Largest argument struct the module reads: bounds check_zeroed_user() on its tail. */
#define KFORK_MAX_ARG_SIZE	PAGE_SIZE

/* Module-wide counts of live objects, for the leak tests. */
extern atomic64_t kfork_live_templates;
extern atomic64_t kfork_live_clones;
/* Module-wide totals since load, for KFORK_GET_CAPS (kfork stats). */
extern atomic64_t kfork_total_templates, kfork_total_spawns, kfork_total_spawn_failures,
		  kfork_total_resets;

/*
 * What a fresh vCPU of this template holds for everything the template does
 * not set: optional items it lacks and the MSRs KVM lists that it does not
 * carry. A reset writes them too, so that nothing a previous run left there
 * survives it. Captured once, from the first vCPU built (state.c).
 */
struct kfork_state_defaults {
	void *item[KFORK_STATE_MAX];	/* kmalloc'd argument of KVM_SET_*, or NULL */
	u32 item_len[KFORK_STATE_MAX];
	struct kvm_msrs *msrs;		/* MSRs outside the template's list, or NULL */
	u32 msrs_len;
	void *nested;			/* KVM_SET_NESTED_STATE of a vCPU not in guest mode */
	u32 nested_len;
};

/* The working set, published whole: its length never comes apart from its entries. */
struct kfork_wset {
	u32 len;
	u64 entries[];
};

struct kfork_template {
	struct kref ref;		/* template fd + each clone */
	struct list_head node;		/* kfork_templates, under kfork_templates_lock */
	u64 id;				/* unique while the module is loaded */
	struct file *mem;		/* module-owned shmem, sealed: never written again */
	struct page **pages;		/* every page of mem by index, referenced: no holes */
	struct file *kvm_dev;		/* /dev/kvm, opened by the registering process, checked */
	u64 mem_size;
	u32 max_clones;
	struct kfork_state state;
	/* Set once (defaults_lock), freed with the template: read after defaults_ready. */
	struct mutex defaults_lock;
	struct kfork_state_defaults defaults;
	bool defaults_ready;
	/* Set once (cmpxchg), freed with the template: readers need no lock. */
	struct kfork_wset *wset;
	u32 scratch_len;		/* user bytes the KVM ioctls need */
	struct user_struct *user;	/* charged mem_size pages of RLIMIT_MEMLOCK */
	kuid_t owner;			/* euid of the registering task: who sees its stats */
	/* Persistent templates (persist.c), under kfork_persist_lock. */
	struct list_head persist_node;	/* on kfork_persistent when persistent */
	bool persistent;		/* the list holds a reference */
	u8 key[KFORK_KEY_SIZE];
	atomic_t live_clones;
	atomic64_t next_id;
	atomic64_t spawns, spawn_failures, resets, pages_copied;
	atomic64_t failures[KFORK_FAIL_ERRNO_SLOTS];	/* by errno; 0: larger errnos */
	/* Pre-built VMs (pool.c), for one process: pool_owner. */
	spinlock_t pool_lock;
	struct list_head pool;		/* struct kfork_vm, under pool_lock */
	u32 pool_ready;			/* entries on pool, under pool_lock */
	u32 pool_target;		/* refill up to this; 0 when the template fd is gone */
	u32 pool_building;		/* entries being built, under pool_lock */
	wait_queue_head_t pool_wq;	/* woken when a build ends */
	struct mm_struct *pool_owner;	/* mmgrab'd, under pool_lock: the process served, or NULL */
	atomic64_t pool_hits;
};

/* A user-space buffer in the caller's mm that KVM's own ioctl handlers read from. */
struct kfork_scratch {
	unsigned long addr;
	u32 len;
};

/*
 * A VM with its vCPU, guest memory, kvm_run and scratch mappings, in mm: the
 * body of a clone, or a pool entry waiting to become one. Holds its own
 * references to both KVM files; the caller's fds are separate. The scratch
 * buffer serves every KVM ioctl made for this VM (no mmap/munmap per call).
 */
struct kfork_vm {
	struct list_head node;		/* on the template's pool */
	struct mm_struct *mm;		/* mmgrab'd: the mappings are there */
	struct file *vm;
	struct file *vcpu;
	unsigned long mem_addr, run_addr;
	u32 run_size;
	struct kfork_scratch scratch;	/* addr 0: none (the caller could not be told of it) */
	u64 prefaulted;
};

/*
 * A clone: its kfork_vm's mappings belong to the caller once spawned (the
 * caller unmaps them); resets only from kv->mm.
 */
struct kfork_clone {
	struct kfork_template *tmpl;	/* reference held */
	struct kfork_vm *kv;		/* owned; holds its own file refs */
	struct mutex reset_lock;	/* one reset at a time: they share kv->scratch */
	u64 id;
};

/* Module-wide list of live templates, for the netlink stats dump. */
extern struct list_head kfork_templates;
extern spinlock_t kfork_templates_lock;

/* Everything a spawn returns, before it is copied to user space. */
struct kfork_spawn_out {
	int clone_fd, vm_fd, vcpu_fd;
	unsigned long mem_addr, run_addr, scratch_addr;
	u32 run_size, scratch_size;
	u64 prefaulted, clone_id;
	u64 t0;			/* when the spawn began */
	bool pooled;
};

/* chardev.c */
bool kfork_file_is_kvm(struct file *file, const char *name, bool prefix);
bool kfork_file_is_kvm_dev(struct file *file);
int kfork_copy_args(void *dst, u32 ksize, const void __user *uarg, u32 min_size, u32 *usize);

/* account.c */
int kfork_account_template(struct kfork_template *tmpl);
void kfork_unaccount_template(struct kfork_template *tmpl);

/* persist.c */
long kfork_template_persist(struct kfork_template *tmpl, void __user *uarg);
long kfork_template_attach(void __user *uarg);
long kfork_template_remove(void __user *uarg);
bool kfork_template_is_persistent(struct kfork_template *tmpl);
void kfork_persist_exit(void);

/* template.c */
long kfork_template_create(void __user *uarg);
int kfork_template_getfd(struct kfork_template *tmpl);
void kfork_template_put(struct kfork_template *tmpl);
void kfork_template_count_failure(struct kfork_template *tmpl, int err);

/* state.c */
int kfork_state_capture_defaults(struct kfork_template *tmpl, struct file *vcpu,
				 struct kfork_scratch *s);
void kfork_state_free_defaults(struct kfork_state_defaults *d);
long kfork_kvm_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

int kfork_scratch_map(struct kfork_scratch *s, u32 len);
void kfork_scratch_unmap(struct kfork_scratch *s);
long kfork_kvm_ioctl_buf(struct file *file, unsigned int cmd, struct kfork_scratch *s,
			 const void *arg, u32 len);
int kfork_state_restore(struct kfork_template *tmpl, struct file *vm, struct file *vcpu,
			struct kfork_scratch *s, bool in_place);

/* clone.c */
int kfork_clone_spawn(struct kfork_template *tmpl, u32 flags, bool give_scratch,
		      struct kfork_spawn_out *out);
void kfork_clone_spawn_report(struct kfork_template *tmpl, const struct kfork_spawn_out *out,
			      int err);
int kfork_vm_build(struct kfork_template *tmpl, u32 flags, struct kfork_vm *kv, u64 t0);
void kfork_vm_put(struct kfork_vm *kv);
void kfork_vm_free(struct kfork_vm *kv, u64 mem_size);

/* pool.c */
/* An entry for the pool's owner (waits for one being built), NULL, or ERR_PTR(-EINTR). */
struct kfork_vm *kfork_pool_take(struct kfork_template *tmpl);
void kfork_pool_refill(struct kfork_template *tmpl);
void kfork_pool_release(struct kfork_template *tmpl);
long kfork_template_pool(struct kfork_template *tmpl, void __user *uarg);

/* netlink.c */
int kfork_netlink_init(void);
void kfork_netlink_exit(void);
void kfork_netlink_event(struct kfork_template *tmpl, u32 event, u64 clone_id, int err,
			 u64 ns, u64 pages);

/* prefault.c */
int kfork_prefault(struct kfork_template *tmpl, struct file *vcpu, unsigned long mem_addr,
		   u64 *done);

/* reset.c */
long kfork_clone_reset(struct kfork_clone *clone, void __user *uarg);

#endif /* KFORK_INTERNAL_H */
