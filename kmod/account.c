// SPDX-License-Identifier: GPL-2.0-only
/* account.c - what a template's memory costs its owner: RLIMIT_MEMLOCK and the module's caps. */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>

#include "internal.h"

/*
 * A template's pages stay resident for as long as it lives (every clone
 * maps them, and the module holds a reference to each), so they are what
 * mlock() would be: charged to the registering user's RLIMIT_MEMLOCK, the way
 * io_uring charges its registered buffers, unless the user has CAP_IPC_LOCK.
 * The module-wide caps bound what even such a user can take.
 */
static unsigned int max_templates = 256;
module_param(max_templates, uint, 0644);
MODULE_PARM_DESC(max_templates, "most templates alive at once, all users together");

static unsigned long max_template_pages;	/* 0: half of RAM */
module_param(max_template_pages, ulong, 0644);
MODULE_PARM_DESC(max_template_pages, "most template pages alive at once (0: half of RAM)");

static atomic_long_t kfork_template_pages = ATOMIC_LONG_INIT(0);
static atomic_t kfork_template_count = ATOMIC_INIT(0);

static unsigned long kfork_template_pages_cap(void)
{
	unsigned long cap = READ_ONCE(max_template_pages);

	return cap ? cap : totalram_pages() / 2;
}

/* Adds n to *counter unless that passes limit; the counter never overshoots. */
static bool kfork_charge(atomic_long_t *counter, unsigned long n, unsigned long limit)
{
	long cur = atomic_long_read(counter);

	do {
		if (n > limit || cur > limit - n)
			return false;
	} while (!atomic_long_try_cmpxchg(counter, &cur, cur + n));
	return true;
}

/* ENOSPC: the module's caps; ENOMEM: the caller's RLIMIT_MEMLOCK (errno as mlock gives). */
int kfork_account_template(struct kfork_template *tmpl)
{
	unsigned long npages = tmpl->mem_size >> PAGE_SHIFT;
	struct user_struct *user = NULL;

	if (atomic_inc_return(&kfork_template_count) > READ_ONCE(max_templates))
		goto uncount;
	if (!kfork_charge(&kfork_template_pages, npages, kfork_template_pages_cap()))
		goto uncount;
	if (!capable(CAP_IPC_LOCK)) {
		user = get_uid(current_user());
		if (!kfork_charge(&user->locked_vm, npages, rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT)) {
			free_uid(user);
			atomic_long_sub(npages, &kfork_template_pages);
			atomic_dec(&kfork_template_count);
			return -ENOMEM;
		}
	}
	tmpl->user = user;
	tmpl->owner = current_euid();
	return 0;

uncount:
	atomic_dec(&kfork_template_count);
	return -ENOSPC;
}

void kfork_unaccount_template(struct kfork_template *tmpl)
{
	unsigned long npages = tmpl->mem_size >> PAGE_SHIFT;

	if (tmpl->user) {
		atomic_long_sub(npages, &tmpl->user->locked_vm);
		free_uid(tmpl->user);
		tmpl->user = NULL;
	}
	atomic_long_sub(npages, &kfork_template_pages);
	atomic_dec(&kfork_template_count);
}
