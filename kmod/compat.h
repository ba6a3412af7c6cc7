/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * compat.h - the kernel interfaces kfork.ko uses that changed between the
 * kernels it builds for: Debian 12's 6.1 and bookworm-backports' 6.12.
 * One definition per change, named after what it does, each with the
 * release that changed it.
 */
#ifndef KFORK_COMPAT_H
#define KFORK_COMPAT_H

#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/version.h>

/* 6.5 dropped get_user_pages()'s vmas argument. Nothing is pinned or kept. */
static inline long kfork_gup_touch(unsigned long start, unsigned long nr_pages,
				   unsigned int gup_flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	return get_user_pages(start, nr_pages, gup_flags, NULL);
#else
	return get_user_pages(start, nr_pages, gup_flags, NULL, NULL);
#endif
}

/* 6.8 made the number of memslot address spaces a per-VM property. */
static inline int kfork_nr_memslot_as(struct kvm *kvm)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	return kvm_arch_nr_memslot_as_ids(kvm);
#else
	return KVM_ADDRESS_SPACE_NUM;
#endif
}

/*
 * 6.12 renamed kvm_run.immediate_exit to immediate_exit__unsafe (KVM reads it
 * once per KVM_RUN now); its meaning did not change.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#define kfork_run_immediate_exit(run)	((run)->immediate_exit__unsafe)
#else
#define kfork_run_immediate_exit(run)	((run)->immediate_exit)
#endif

#endif /* KFORK_COMPAT_H */
