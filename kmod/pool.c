// SPDX-License-Identifier: GPL-2.0-only
/* pool.c - pre-built VMs for the process owning the pool: spawn takes one; filled off its path. */
#include <linux/list.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

#include "internal.h"
#include "trace.h"

/*
 * KVM binds a VM to the mm that created it (and charges it to that task's
 * memory cgroup), so a template's pool serves one process, its owner: the
 * first to ask for entries (KFORK_TEMPLATE_POOL, in a thread of its choice).
 * Only the owner sets the target, builds entries (there, or as it releases a
 * clone) and takes them; another process gets EBUSY until the owner asks for
 * 0 entries, closes the template or exits. An owner that exited is noticed
 * at the next pool operation or spawn and its entries freed. A workqueue
 * could not build them.
 */

/* Under pool_lock: is current the owner? An owner that exited owns nothing. */
static bool kfork_pool_owned(struct kfork_template *tmpl)
{
	return tmpl->pool_owner && tmpl->pool_owner == current->mm;
}

/*
 * Under pool_lock: if the owner exited, unlist its entries onto gone and
 * return its mm for kfork_pool_free() to drop; NULL otherwise.
 */
static struct mm_struct *kfork_pool_forget(struct kfork_template *tmpl, bool always,
					   struct list_head *gone)
{
	struct mm_struct *owner = tmpl->pool_owner;

	if (!owner || (!always && atomic_read(&owner->mm_users)))
		return NULL;
	list_splice_init(&tmpl->pool, gone);
	tmpl->pool_ready = 0;
	tmpl->pool_target = 0;
	tmpl->pool_owner = NULL;
	return owner;
}

static void kfork_pool_free(struct kfork_template *tmpl, struct mm_struct *owner,
			    struct list_head *gone)
{
	struct kfork_vm *kv, *tmp;

	list_for_each_entry_safe(kv, tmp, gone, node)
		kfork_vm_free(kv, tmpl->mem_size);
	if (owner)
		mmdrop(owner);
}

/* Free the pool of an owner that exited; cheap when there is none. */
static void kfork_pool_prune(struct kfork_template *tmpl)
{
	struct mm_struct *owner;
	LIST_HEAD(gone);

	if (!READ_ONCE(tmpl->pool_owner))
		return;
	spin_lock(&tmpl->pool_lock);
	owner = kfork_pool_forget(tmpl, false, &gone);
	spin_unlock(&tmpl->pool_lock);
	kfork_pool_free(tmpl, owner, &gone);
}

/* The template fd is gone (or the template): nobody can use the pool any more. */
void kfork_pool_release(struct kfork_template *tmpl)
{
	struct mm_struct *owner;
	LIST_HEAD(gone);

	spin_lock(&tmpl->pool_lock);
	owner = kfork_pool_forget(tmpl, true, &gone);
	spin_unlock(&tmpl->pool_lock);
	kfork_pool_free(tmpl, owner, &gone);
}

static struct kfork_vm *kfork_pool_take_now(struct kfork_template *tmpl)
{
	struct kfork_vm *kv = NULL;

	spin_lock(&tmpl->pool_lock);
	if (kfork_pool_owned(tmpl) && !list_empty(&tmpl->pool)) {
		kv = list_first_entry(&tmpl->pool, struct kfork_vm, node);
		list_del(&kv->node);
		tmpl->pool_ready--;
	}
	spin_unlock(&tmpl->pool_lock);
	return kv;
}

/* Nothing to wait for: not the owner, no build in flight, or an entry is there. */
static bool kfork_pool_settled(struct kfork_template *tmpl)
{
	bool settled;

	spin_lock(&tmpl->pool_lock);
	settled = !kfork_pool_owned(tmpl) || !tmpl->pool_building || tmpl->pool_ready;
	spin_unlock(&tmpl->pool_lock);
	return settled;
}

/*
 * An entry for the owner, or NULL: build one yourself. When the pool is
 * empty but an entry is being built (the owner refills after each release),
 * wait for it: a second build beside it would share the same CPUs and
 * finish no sooner; in the one-vCPU lab both took twice as long. -EINTR on
 * a fatal signal.
 */
struct kfork_vm *kfork_pool_take(struct kfork_template *tmpl)
{
	struct kfork_vm *kv;

	kfork_pool_prune(tmpl);
	kv = kfork_pool_take_now(tmpl);
	if (kv)
		return kv;
	if (wait_event_killable(tmpl->pool_wq, kfork_pool_settled(tmpl)))
		return ERR_PTR(-EINTR);
	return kfork_pool_take_now(tmpl);
}

/* Build one entry; -EAGAIN if the pool is already at its target or changed hands. */
static int kfork_pool_add(struct kfork_template *tmpl, u32 *ready)
{
	struct kfork_vm *kv;
	u64 t0 = ktime_get_ns();
	int err;

	kv = kzalloc(sizeof(*kv), GFP_KERNEL_ACCOUNT);
	if (!kv)
		return -ENOMEM;
	spin_lock(&tmpl->pool_lock);
	tmpl->pool_building++;
	spin_unlock(&tmpl->pool_lock);
	err = kfork_vm_build(tmpl, 0, kv, 0);
	spin_lock(&tmpl->pool_lock);
	tmpl->pool_building--;
	if (err) {
		spin_unlock(&tmpl->pool_lock);
		wake_up_all(&tmpl->pool_wq);
		kfree(kv);
		trace_kfork_pool_fill(tmpl->id, err, ktime_get_ns() - t0, 0);
		return err;
	}
	if (!kfork_pool_owned(tmpl) || tmpl->pool_ready >= tmpl->pool_target) {
		err = -EAGAIN;
	} else {
		list_add_tail(&kv->node, &tmpl->pool);
		tmpl->pool_ready++;
	}
	*ready = tmpl->pool_ready;
	spin_unlock(&tmpl->pool_lock);
	wake_up_all(&tmpl->pool_wq);
	if (err)
		kfork_vm_free(kv, tmpl->mem_size);
	trace_kfork_pool_fill(tmpl->id, err, ktime_get_ns() - t0, *ready);
	return err;
}

/* The owner's pool is short of its target. */
static bool kfork_pool_short(struct kfork_template *tmpl)
{
	bool short_;

	spin_lock(&tmpl->pool_lock);
	short_ = kfork_pool_owned(tmpl) && tmpl->pool_ready < tmpl->pool_target;
	spin_unlock(&tmpl->pool_lock);
	return short_;
}

/* Fill up to the target in the calling thread, if it is the owner's. */
static int kfork_pool_fill(struct kfork_template *tmpl)
{
	u32 ready = 0;
	int err = 0;

	if (!current->mm || (current->flags & PF_EXITING))
		return 0;
	while (kfork_pool_short(tmpl)) {
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		err = kfork_pool_add(tmpl, &ready);
		if (err)
			break;
	}
	return err == -EAGAIN ? 0 : err;
}

/* After a clone's release in the owner: one entry back, errors only traced. */
void kfork_pool_refill(struct kfork_template *tmpl)
{
	kfork_pool_fill(tmpl);
}

/* Free the owner's entries beyond keep. Under pool_lock: move them to gone. */
static void kfork_pool_trim(struct kfork_template *tmpl, u32 keep, struct list_head *gone)
{
	struct kfork_vm *kv, *tmp;

	list_for_each_entry_safe(kv, tmp, &tmpl->pool, node) {
		if (tmpl->pool_ready <= keep)
			break;
		list_move(&kv->node, gone);
		tmpl->pool_ready--;
	}
}

/* Becomes (or stays) the owner with this target; target 0 gives the pool up. */
static int kfork_pool_set_target(struct kfork_template *tmpl, u32 target)
{
	struct mm_struct *drop = NULL;
	LIST_HEAD(gone);
	int err = 0;

	kfork_pool_prune(tmpl);
	spin_lock(&tmpl->pool_lock);
	if (tmpl->pool_owner && !kfork_pool_owned(tmpl)) {
		err = -EBUSY;
	} else if (!target) {
		drop = kfork_pool_forget(tmpl, true, &gone);
	} else {
		if (!tmpl->pool_owner) {
			mmgrab(current->mm);
			tmpl->pool_owner = current->mm;
		}
		tmpl->pool_target = target;
		kfork_pool_trim(tmpl, target, &gone);
	}
	spin_unlock(&tmpl->pool_lock);
	kfork_pool_free(tmpl, drop, &gone);
	return err;
}

long kfork_template_pool(struct kfork_template *tmpl, void __user *uarg)
{
	struct kfork_template_pool args;
	u32 usize;
	int err;

	err = kfork_copy_args(&args, sizeof(args), uarg,
			      offsetofend(struct kfork_template_pool, target), &usize);
	if (err)
		return err;
	if (args.flags & ~KFORK_POOL_FLAGS || args.target > KFORK_MAX_POOL)
		return -EINVAL;
	if (!current->mm)
		return -EINVAL;
	err = kfork_pool_set_target(tmpl, args.target);
	if (err)
		return err;
	if (!(args.flags & KFORK_POOL_NO_FILL)) {
		err = kfork_pool_fill(tmpl);
		if (err)
			return err;
	}
	spin_lock(&tmpl->pool_lock);
	args.ready = tmpl->pool_ready;
	spin_unlock(&tmpl->pool_lock);
	if (copy_to_user(uarg, &args, min_t(u32, usize, sizeof(args))))
		return -EFAULT;
	return 0;
}
