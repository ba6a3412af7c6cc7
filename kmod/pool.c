// SPDX-License-Identifier: GPL-2.0-only
/* pool.c - pre-built VMs per template: spawn hands one out; filled off the spawn path. */
#include <linux/list.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

#include "internal.h"
#include "trace.h"

/*
 * KVM binds a VM to the mm that created it (and charges it to that task's
 * memory cgroup), so an entry is built in, and only handed out to, one
 * process: whoever asked for the pool (KFORK_TEMPLATE_POOL, in a thread of
 * its choice) or released a clone. A workqueue could not build them.
 */
static struct kfork_vm *kfork_pool_take_now(struct kfork_template *tmpl)
{
	struct kfork_vm *kv, *found = NULL;

	spin_lock(&tmpl->pool_lock);
	list_for_each_entry(kv, &tmpl->pool, node) {
		if (kv->mm == current->mm) {
			list_del(&kv->node);
			tmpl->pool_ready--;
			found = kv;
			break;
		}
	}
	spin_unlock(&tmpl->pool_lock);
	return found;
}

/* Nothing to wait for: no build in flight for this process, or an entry is there for it. */
static bool kfork_pool_settled(struct kfork_template *tmpl)
{
	struct kfork_vm *kv;
	bool settled;

	spin_lock(&tmpl->pool_lock);
	settled = !tmpl->pool_building || tmpl->pool_building_mm != current->mm;
	list_for_each_entry(kv, &tmpl->pool, node)
		settled |= kv->mm == current->mm;
	spin_unlock(&tmpl->pool_lock);
	return settled;
}

/*
 * An entry for this process, or NULL: build one yourself. When the pool is
 * empty but an entry for this process is being built (the reaper refills
 * after each release), wait for it: a second build beside it would share
 * the same CPUs and finish no sooner; in the one-vCPU lab both took twice
 * as long. -EINTR on a fatal signal.
 */
struct kfork_vm *kfork_pool_take(struct kfork_template *tmpl)
{
	struct kfork_vm *kv = kfork_pool_take_now(tmpl);

	if (kv)
		return kv;
	if (wait_event_killable(tmpl->pool_wq, kfork_pool_settled(tmpl)))
		return ERR_PTR(-EINTR);
	return kfork_pool_take_now(tmpl);
}

/* Build one entry; -EAGAIN if the pool is already at its target. */
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
	tmpl->pool_building_mm = current->mm;
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
	if (tmpl->pool_ready >= READ_ONCE(tmpl->pool_target)) {
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

static bool kfork_pool_short(struct kfork_template *tmpl)
{
	bool short_;

	spin_lock(&tmpl->pool_lock);
	short_ = tmpl->pool_ready < READ_ONCE(tmpl->pool_target);
	spin_unlock(&tmpl->pool_lock);
	return short_;
}

/* Fill up to target in the calling thread; returns entries ready. */
int kfork_pool_fill(struct kfork_template *tmpl, u32 target)
{
	u32 ready = 0;
	int err = 0;

	if (!current->mm || (current->flags & PF_EXITING))
		return 0;
	while (ready < target && kfork_pool_short(tmpl)) {
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

/* After a clone's release in its own process: one entry back, errors only traced. */
void kfork_pool_refill(struct kfork_template *tmpl)
{
	kfork_pool_fill(tmpl, READ_ONCE(tmpl->pool_target));
}

/* Free every entry: unmapped where they are the caller's, else left to their mm. */
void kfork_pool_drain(struct kfork_template *tmpl)
{
	struct kfork_vm *kv, *tmp;
	LIST_HEAD(gone);

	spin_lock(&tmpl->pool_lock);
	list_splice_init(&tmpl->pool, &gone);
	tmpl->pool_ready = 0;
	spin_unlock(&tmpl->pool_lock);
	list_for_each_entry_safe(kv, tmp, &gone, node)
		kfork_vm_free(kv, tmpl->mem_size);
}

/* Free this process's entries beyond keep. */
static void kfork_pool_trim(struct kfork_template *tmpl, u32 keep)
{
	struct kfork_vm *kv, *tmp;
	LIST_HEAD(gone);

	spin_lock(&tmpl->pool_lock);
	list_for_each_entry_safe(kv, tmp, &tmpl->pool, node) {
		if (tmpl->pool_ready <= keep)
			break;
		if (kv->mm != current->mm)
			continue;
		list_move(&kv->node, &gone);
		tmpl->pool_ready--;
	}
	spin_unlock(&tmpl->pool_lock);
	list_for_each_entry_safe(kv, tmp, &gone, node)
		kfork_vm_free(kv, tmpl->mem_size);
}

long kfork_template_pool(struct kfork_template *tmpl, void __user *uarg)
{
	struct kfork_template_pool args;
	u32 usize;
	int err;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	if (usize < offsetofend(struct kfork_template_pool, target) || usize > PAGE_SIZE)
		return -EINVAL;
	err = copy_struct_from_user(&args, sizeof(args), uarg, usize);
	if (err)
		return err == -E2BIG ? -EINVAL : err;
	if (args.flags & ~KFORK_POOL_FLAGS || args.target > KFORK_MAX_POOL)
		return -EINVAL;
	WRITE_ONCE(tmpl->pool_target, args.target);
	kfork_pool_trim(tmpl, args.target);
	if (!(args.flags & KFORK_POOL_NO_FILL)) {
		err = kfork_pool_fill(tmpl, args.target);
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
