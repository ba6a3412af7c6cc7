// SPDX-License-Identifier: GPL-2.0-only
/* fault.c - debug builds only: deliberate kernel bugs on request (tests/lab/debug-selftest.sh). */
#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

#include "internal.h"

/*
 * Built only into build/kmod-debug/kfork.ko (Kbuild: KFORK_FAULT_KNOB=y), never
 * into the module users get. Root writes a kind to
 * /sys/module/kfork/parameters/debug_fault and the module commits that bug
 * once: tests/lab/debug-selftest.sh then expects the report klog-scan.sh names.
 */
static DEFINE_MUTEX(kfork_fault_a);
static DEFINE_MUTEX(kfork_fault_b);
static DEFINE_SPINLOCK(kfork_fault_lock);

static noinline void kfork_fault_kasan(void)
{
	size_t len = 24, idx = 32;
	char *p;

	/* Keeps the compiler from proving the index out of bounds and refusing it. */
	OPTIMIZER_HIDE_VAR(idx);
	p = kmalloc(len, GFP_KERNEL);
	if (!p)
		return;
	pr_info("kfork: debug_fault: reading byte %zu of a %zu-byte object\n", idx, len);
	pr_info("kfork: debug_fault: read %d\n", READ_ONCE(p[idx]));
	kfree(p);
}

/*
 * kmemleak is conservative: a stale copy of a pointer anywhere it scans (the
 * writing task's kernel stack, say) keeps that object from being reported.
 * Of 16 objects leaked one after another, at most the last few can linger so.
 */
static noinline void kfork_fault_leak(void)
{
	int i, n = 0;

	for (i = 0; i < 16; i++)
		n += kmalloc(64, GFP_KERNEL) != NULL;
	pr_info("kfork: debug_fault: leaked %d objects of 64 bytes\n", n);
}

/* a then b, later b then a: lockdep needs no real deadlock to see the cycle. */
static noinline void kfork_fault_lockdep(void)
{
	mutex_lock(&kfork_fault_a);
	mutex_lock(&kfork_fault_b);
	mutex_unlock(&kfork_fault_b);
	mutex_unlock(&kfork_fault_a);

	mutex_lock(&kfork_fault_b);
	mutex_lock(&kfork_fault_a);
	mutex_unlock(&kfork_fault_a);
	mutex_unlock(&kfork_fault_b);
}

static noinline void kfork_fault_sleep(void)
{
	spin_lock(&kfork_fault_lock);
	might_sleep();
	spin_unlock(&kfork_fault_lock);
}

static noinline void kfork_fault_warn(void)
{
	WARN(1, "kfork: debug_fault: deliberate warning\n");
}

static const struct {
	const char *name;
	void (*commit)(void);
} kfork_faults[] = {
	{ "kasan", kfork_fault_kasan },
	{ "leak", kfork_fault_leak },
	{ "lockdep", kfork_fault_lockdep },
	{ "sleep", kfork_fault_sleep },
	{ "warn", kfork_fault_warn },
};

static int kfork_fault_set(const char *val, const struct kernel_param *kp)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kfork_faults); i++) {
		if (sysfs_streq(val, kfork_faults[i].name)) {
			kfork_faults[i].commit();
			return 0;
		}
	}
	return -EINVAL;
}

static const struct kernel_param_ops kfork_fault_ops = {
	.set = kfork_fault_set,
};
module_param_cb(debug_fault, &kfork_fault_ops, NULL, 0200);
MODULE_PARM_DESC(debug_fault, "debug builds: commit one bug: kasan, leak, lockdep, sleep, warn");
