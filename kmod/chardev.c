// SPDX-License-Identifier: GPL-2.0-only
/* chardev.c - /dev/kfork: module init/exit, version and capability queries, registration. */
#include <linux/build_bug.h>
#include <linux/file.h>
#include <linux/kdev_t.h>
#include <linux/magic.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/stddef.h>
#include <linux/uaccess.h>

#include "internal.h"

/* The ABI's layout, checked here and in tests/kmod/kmod_test.c. */
static_assert(sizeof(struct kfork_caps) == 88);
static_assert(sizeof(struct kfork_state_item) == 8);
static_assert(sizeof(struct kfork_template_create) == 40);
static_assert(offsetof(struct kfork_template_create, state_ptr) == 24);
static_assert(sizeof(struct kfork_template_info) == 88);
static_assert(sizeof(struct kfork_template_wset) == 24);
static_assert(sizeof(struct kfork_spawn) == 88);
static_assert(offsetof(struct kfork_spawn, scratch_addr) == 72);
static_assert(offsetof(struct kfork_spawn, mem_addr) == 24);
static_assert(offsetof(struct kfork_spawn, prefaulted) == 56);
static_assert(sizeof(struct kfork_spawn_batch) == 24);
static_assert(sizeof(struct kfork_clone_reset) == 24);
static_assert(sizeof(struct kfork_template_pool) == 16);
static_assert(KFORK_STATE_UART == 17);
static_assert(sizeof(struct kfork_template_key) == 40);

atomic64_t kfork_live_templates = ATOMIC64_INIT(0);
atomic64_t kfork_live_clones = ATOMIC64_INIT(0);
atomic64_t kfork_total_templates = ATOMIC64_INIT(0);
atomic64_t kfork_total_spawns = ATOMIC64_INIT(0);
atomic64_t kfork_total_spawn_failures = ATOMIC64_INIT(0);
atomic64_t kfork_total_resets = ATOMIC64_INIT(0);

/*
 * KVM_CREATE_VM/VCPU install their fd in the caller's table, where another
 * thread could replace it before we fget() it; accept only a KVM file. Only
 * the kernel makes anon-inode files (the anon_inodefs superblock), and only
 * KVM names them kvm-vm and kvm-vcpu:N, so superblock + name identify one.
 */
bool kfork_file_is_kvm(struct file *file, const char *name, bool prefix)
{
	const char *d_name = file->f_path.dentry->d_name.name;

	if (file_inode(file)->i_sb->s_magic != ANON_INODE_FS_MAGIC || !file->private_data)
		return false;
	return prefix ? !strncmp(d_name, name, strlen(name)) : !strcmp(d_name, name);
}

/*
 * /dev/kvm is opened by path in the caller's mount namespace, where a user
 * namespace can bind-mount any file over it. Only the character device
 * (MISC_MAJOR, KVM_MINOR) reaches KVM: a device node on a nodev mount cannot
 * be opened, and misc_open() alone decides whose fops an open of that number
 * gets. Anything else (a regular or FUSE file, another device) is refused.
 */
bool kfork_file_is_kvm_dev(struct file *file)
{
	struct inode *inode = file_inode(file);

	return S_ISCHR(inode->i_mode) && imajor(inode) == MISC_MAJOR &&
	       iminor(inode) == KVM_MINOR && file->f_op && file->f_op->unlocked_ioctl;
}

/*
 * Every argument struct: reads the caller's size, refuses one shorter than
 * min_size or larger than KFORK_MAX_ARG_SIZE (which bounds the zero check of
 * a newer caller's tail), zero-extends an older, shorter struct. A tail with
 * non-zero bytes is E2BIG: the caller asks for something this module lacks.
 */
int kfork_copy_args(void *dst, u32 ksize, const void __user *uarg, u32 min_size, u32 *usize)
{
	u32 size;

	if (get_user(size, (u32 __user *)uarg))
		return -EFAULT;
	if (size < min_size || size > KFORK_MAX_ARG_SIZE)
		return -EINVAL;
	*usize = size;
	return copy_struct_from_user(dst, ksize, uarg, size);
}

static long kfork_get_caps(void __user *uarg)
{
	struct kfork_caps caps;
	u32 usize;
	int err;

	err = kfork_copy_args(&caps, sizeof(caps), uarg, offsetofend(struct kfork_caps, flags),
			      &usize);
	if (err)
		return err;
	if (caps.flags)
		return -EINVAL;
	caps.caps = KFORK_CAP_SPAWN | KFORK_CAP_SPAWN_BATCH | KFORK_CAP_RESET |
		    KFORK_CAP_PREFAULT | KFORK_CAP_POOL | KFORK_CAP_GENL | KFORK_CAP_PERSIST |
		    KFORK_CAP_TOTALS;
	caps.version = KFORK_VERSION;
	caps.max_clones = KFORK_MAX_CLONES;
	caps.max_mem_size = KFORK_MAX_MEM_SIZE;
	caps.max_state_len = KFORK_MAX_STATE_LEN;
	caps.max_wset = KFORK_MAX_WSET;
	caps.live_templates = atomic64_read(&kfork_live_templates);
	caps.live_clones = atomic64_read(&kfork_live_clones);
	caps.templates_total = atomic64_read(&kfork_total_templates);
	caps.spawns_total = atomic64_read(&kfork_total_spawns);
	caps.spawn_failures_total = atomic64_read(&kfork_total_spawn_failures);
	caps.resets_total = atomic64_read(&kfork_total_resets);
	if (copy_to_user(uarg, &caps, min_t(u32, usize, sizeof(caps))))
		return -EFAULT;
	return 0;
}

/*
 * Dispatch on the command's number alone: the size _IOW() encodes changes
 * whenever a struct grows, and the struct's own size field is what tells
 * versions apart.
 */
static long kfork_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (_IOC_TYPE(cmd) != KFORK_IOC)
		return -ENOTTY;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(KFORK_GET_VERSION):
		return KFORK_VERSION;
	case _IOC_NR(KFORK_GET_CAPS):
		return kfork_get_caps(uarg);
	case _IOC_NR(KFORK_TEMPLATE_CREATE):
		return kfork_template_create(uarg);
	case _IOC_NR(KFORK_TEMPLATE_ATTACH):
		return kfork_template_attach(uarg);
	case _IOC_NR(KFORK_TEMPLATE_REMOVE):
		return kfork_template_remove(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations kfork_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = kfork_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kfork_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kfork",
	.fops = &kfork_dev_fops,
	/*
	 * Root and the device's group only: kmod/99-kfork.rules gives it to the
	 * kvm group, the same people who may open /dev/kvm (see SECURITY.md).
	 */
	.mode = 0660,
};

static int __init kfork_init(void)
{
	int err;

	err = kfork_netlink_init();
	if (err)
		return err;
	err = misc_register(&kfork_misc);
	if (err)
		goto unregister_netlink;
	pr_info("kfork: /dev/kfork ready (kfork %s, ABI version %d)\n", KFORK_RELEASE,
		KFORK_VERSION);
	return 0;

unregister_netlink:
	kfork_netlink_exit();
	return err;
}

/*
 * Template and clone files pin the module (fops.owner), so rmmod is refused
 * while any is open; guest memory mappings and KVM's fds need no module code.
 * Persistent templates that nothing else holds go with the module.
 */
static void __exit kfork_exit(void)
{
	misc_deregister(&kfork_misc);
	kfork_netlink_exit();
	kfork_persist_exit();
}

module_init(kfork_init);
module_exit(kfork_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kfork: copy-on-write clones of a frozen KVM guest");
MODULE_AUTHOR("kfork developers");
MODULE_SOFTDEP("pre: kvm");
MODULE_VERSION(KFORK_RELEASE);
