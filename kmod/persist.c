// SPDX-License-Identifier: GPL-2.0-only
/* persist.c - persistent templates: kept under an owner's key, attached to by later processes. */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "internal.h"

/*
 * Templates kept under a key, each holding one reference. A handful per
 * user at most (max_templates bounds them all), so a list will do.
 */
static LIST_HEAD(kfork_persistent);
static DEFINE_MUTEX(kfork_persist_lock);

static int kfork_key_args(struct kfork_template_key *args, void __user *uarg, u32 flags_ok)
{
	u32 usize;
	int err;

	err = kfork_copy_args(args, sizeof(*args), uarg,
			      offsetofend(struct kfork_template_key, key), &usize);
	if (err)
		return err;
	return args->flags & ~flags_ok ? -EINVAL : 0;
}

/* The caller's template under key, or NULL. Under kfork_persist_lock. */
static struct kfork_template *kfork_persist_find(kuid_t owner, const u8 *key)
{
	struct kfork_template *tmpl;

	lockdep_assert_held(&kfork_persist_lock);
	list_for_each_entry(tmpl, &kfork_persistent, persist_node)
		if (uid_eq(tmpl->owner, owner) && !memcmp(tmpl->key, key, KFORK_KEY_SIZE))
			return tmpl;
	return NULL;
}

/*
 * Only the owner may keep its template: the memory stays charged to it, and
 * its later processes are the only ones that can find it again.
 */
long kfork_template_persist(struct kfork_template *tmpl, void __user *uarg)
{
	struct kfork_template_key args;
	int err;

	err = kfork_key_args(&args, uarg, 0);
	if (err)
		return err;
	if (!uid_eq(tmpl->owner, current_euid()))
		return -EPERM;
	mutex_lock(&kfork_persist_lock);
	if (tmpl->persistent) {
		err = -EBUSY;
	} else if (kfork_persist_find(tmpl->owner, args.key)) {
		err = -EEXIST;
	} else {
		memcpy(tmpl->key, args.key, KFORK_KEY_SIZE);
		kref_get(&tmpl->ref);
		WRITE_ONCE(tmpl->persistent, true);
		list_add_tail(&tmpl->persist_node, &kfork_persistent);
	}
	mutex_unlock(&kfork_persist_lock);
	return err;
}

long kfork_template_attach(void __user *uarg)
{
	struct kfork_template_key args;
	struct kfork_template *tmpl;
	int err, fd;

	err = kfork_key_args(&args, uarg, 0);
	if (err)
		return err;
	mutex_lock(&kfork_persist_lock);
	tmpl = kfork_persist_find(current_euid(), args.key);
	if (tmpl)
		kref_get(&tmpl->ref);
	mutex_unlock(&kfork_persist_lock);
	if (!tmpl)
		return -ENOENT;
	fd = kfork_template_getfd(tmpl);
	kfork_template_put(tmpl);
	return fd;
}

/* Unlinks under the lock; the references are dropped by the caller, outside it. */
static void kfork_persist_unlink(struct kfork_template *tmpl, struct list_head *gone)
{
	lockdep_assert_held(&kfork_persist_lock);
	list_move_tail(&tmpl->persist_node, gone);
	WRITE_ONCE(tmpl->persistent, false);
}

static long kfork_persist_put_list(struct list_head *gone)
{
	struct kfork_template *tmpl, *next;
	long n = 0;

	list_for_each_entry_safe(tmpl, next, gone, persist_node) {
		list_del_init(&tmpl->persist_node);
		kfork_template_put(tmpl);
		n++;
	}
	return n;
}

long kfork_template_remove(void __user *uarg)
{
	struct kfork_template_key args;
	struct kfork_template *tmpl, *next;
	kuid_t uid = current_euid();
	LIST_HEAD(gone);
	bool all;
	int err;

	err = kfork_key_args(&args, uarg, KFORK_REMOVE_ALL);
	if (err)
		return err;
	all = capable(CAP_SYS_ADMIN);
	mutex_lock(&kfork_persist_lock);
	if (args.flags & KFORK_REMOVE_ALL) {
		list_for_each_entry_safe(tmpl, next, &kfork_persistent, persist_node)
			if (all || uid_eq(tmpl->owner, uid))
				kfork_persist_unlink(tmpl, &gone);
	} else {
		tmpl = kfork_persist_find(uid, args.key);
		if (tmpl)
			kfork_persist_unlink(tmpl, &gone);
		else
			err = -ENOENT;
	}
	mutex_unlock(&kfork_persist_lock);
	if (err)
		return err;
	return kfork_persist_put_list(&gone);
}

/* For the stats: a racy read is fine there. */
bool kfork_template_is_persistent(struct kfork_template *tmpl)
{
	return READ_ONCE(tmpl->persistent);
}

/* Module exit: no file of ours is open, so nobody else can reach the list. */
void kfork_persist_exit(void)
{
	LIST_HEAD(gone);

	mutex_lock(&kfork_persist_lock);
	list_splice_init(&kfork_persistent, &gone);
	mutex_unlock(&kfork_persist_lock);
	kfork_persist_put_list(&gone);
}
