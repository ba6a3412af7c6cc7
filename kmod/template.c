// SPDX-License-Identifier: GPL-2.0-only
/* template.c - a template: sealed kernel-owned memory, frozen state, working set; its ioctls. */
#include <linux/anon_inodes.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

#include "internal.h"

LIST_HEAD(kfork_templates);
DEFINE_SPINLOCK(kfork_templates_lock);
static u64 kfork_next_template_id;	/* under kfork_templates_lock */

#define KFORK_SEALS	(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static void kfork_template_put_pages(struct kfork_template *tmpl)
{
	unsigned long i;

	if (!tmpl->pages)
		return;
	for (i = 0; i < tmpl->mem_size >> PAGE_SHIFT; i++)
		if (tmpl->pages[i])
			put_page(tmpl->pages[i]);
	kvfree(tmpl->pages);
	tmpl->pages = NULL;
}

static void kfork_template_release(struct kref *ref)
{
	struct kfork_template *tmpl = container_of(ref, struct kfork_template, ref);

	spin_lock(&kfork_templates_lock);
	list_del(&tmpl->node);
	spin_unlock(&kfork_templates_lock);
	/* Entries of a process other than the last holder's stay mapped there until it exits. */
	kfork_pool_release(tmpl);
	kfork_template_put_pages(tmpl);
	kvfree(tmpl->wset);
	kfork_state_free_defaults(&tmpl->defaults);
	kvfree(tmpl->state.buf);
	fput(tmpl->kvm_dev);
	fput(tmpl->mem);
	kfork_unaccount_template(tmpl);
	kfree(tmpl);
	atomic64_dec(&kfork_live_templates);
}

void kfork_template_put(struct kfork_template *tmpl)
{
	kref_put(&tmpl->ref, kfork_template_release);
}

/* Failures by errno for the stats; errnos past the table share slot 0. */
void kfork_template_count_failure(struct kfork_template *tmpl, int err)
{
	int e = -err;

	if (e <= 0 || e >= KFORK_FAIL_ERRNO_SLOTS)
		e = 0;
	atomic64_inc(&tmpl->failures[e]);
}

/* The next data region of src at or after pos, page aligned, never behind pos: [*start, *end). */
static int kfork_template_next_data(struct file *src, loff_t pos, loff_t size, loff_t *start,
				    loff_t *end)
{
	loff_t data, hole;

	data = vfs_llseek(src, pos, SEEK_DATA);
	if (data == -ENXIO || (data >= 0 && data >= size))
		return -ENXIO;
	if (data < 0)
		return data;
	/*
	 * A file system (or a FUSE server) may answer anything: clamp so that
	 * every region starts at or after pos and holds at least one page,
	 * which bounds the loop by size / PAGE_SIZE whatever lseek says.
	 */
	data = max_t(loff_t, round_down(data, PAGE_SIZE), pos);
	hole = vfs_llseek(src, data, SEEK_HOLE);
	if (hole < 0 || hole > size)
		hole = size;
	*start = data;
	*end = max_t(loff_t, hole, min_t(loff_t, data + PAGE_SIZE, size));
	return 0;
}

/* Copy src's non-zero pages into the template's shmem file. */
static int kfork_template_copy(struct kfork_template *tmpl, struct file *src, loff_t size)
{
	loff_t pos = 0, end;
	void *page;
	int err = 0;

	page = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	while (pos < size) {
		err = kfork_template_next_data(src, pos, size, &pos, &end);
		if (err) {
			if (err == -ENXIO)
				err = 0;
			break;
		}
		for (; pos < end; pos += PAGE_SIZE) {
			loff_t rpos = pos, wpos = pos;
			ssize_t n;

			if (fatal_signal_pending(current)) {
				err = -EINTR;
				goto out;
			}
			cond_resched();
			n = kernel_read(src, page, PAGE_SIZE, &rpos);
			if (n < 0) {
				err = n;
				goto out;
			}
			if (n < PAGE_SIZE)
				memset(page + n, 0, PAGE_SIZE - n);
			if (!memchr_inv(page, 0, PAGE_SIZE))
				continue;
			n = kernel_write(tmpl->mem, page, PAGE_SIZE, &wpos);
			if (n != PAGE_SIZE) {
				err = n < 0 ? n : -EIO;
				goto out;
			}
		}
	}
out:
	kfree(page);
	return err;
}

/*
 * Copy the caller's non-zero pages into our own shmem file, then bring in
 * every other page (holes become zero pages) and seal it (as F_ADD_SEALS
 * would), denying writable shared mappings: from then on the pages can only
 * be read or mapped MAP_PRIVATE, by anyone, even through /proc/PID/map_files.
 * Every page is indexed in tmpl->pages with a reference, so a reset copies it
 * without a page-cache walk and it stays resident. Being fully present, the
 * file never grows when a clone reads a hole: all of its memory is allocated
 * here, charged to the registering task's memory cgroup and RLIMIT_MEMLOCK
 * (account.c), never to a clone's.
 */
static int kfork_template_fill(struct kfork_template *tmpl, struct file *src, u64 size)
{
	struct inode *inode = file_inode(tmpl->mem);
	pgoff_t i, npages = tmpl->mem_size >> PAGE_SHIFT;
	struct page *page;
	int err;

	tmpl->pages = kvcalloc(npages, sizeof(*tmpl->pages), GFP_KERNEL_ACCOUNT);
	if (!tmpl->pages)
		return -ENOMEM;
	err = kfork_template_copy(tmpl, src, size);
	if (err)
		return err;
	for (i = 0; i < npages; i++) {
		/* Brings the page back if it was swapped out meanwhile. */
		page = shmem_read_mapping_page(tmpl->mem->f_mapping, i);
		if (IS_ERR(page))
			return PTR_ERR(page);
		tmpl->pages[i] = page;
		if (!(i % 512)) {
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	inode_lock(inode);
	SHMEM_I(inode)->seals |= KFORK_SEALS;
	err = mapping_deny_writable(tmpl->mem->f_mapping);
	inode_unlock(inode);
	return err;
}

static int kfork_template_load_state(struct kfork_template *tmpl, u64 uptr, u32 len)
{
	int err;

	tmpl->state.buf = kvmalloc(len, GFP_KERNEL_ACCOUNT);
	if (!tmpl->state.buf)
		return -ENOMEM;
	tmpl->state.len = len;
	if (copy_from_user(tmpl->state.buf, u64_to_user_ptr(uptr), len))
		return -EFAULT;
	err = kfork_state_parse(&tmpl->state);
	if (err)
		return err;
	/* Room for the largest item plus XSAVE's slack, or the memory slot's dirty bitmap. */
	tmpl->scratch_len = max_t(u64, tmpl->state.max_item_len + KFORK_XSAVE_SLACK,
				  64 + DIV_ROUND_UP(tmpl->mem_size >> PAGE_SHIFT, 64) * 8);
	tmpl->scratch_len = PAGE_ALIGN(tmpl->scratch_len);
	return 0;
}

static const struct file_operations kfork_template_fops;

long kfork_template_create(void __user *uarg)
{
	struct kfork_template_create args;
	struct kfork_template *tmpl;
	struct file *src;
	u32 usize;
	int fd, err;

	err = kfork_copy_args(&args, sizeof(args), uarg,
			      offsetofend(struct kfork_template_create, pad0), &usize);
	if (err)
		return err;
	if (args.flags || args.pad0 || !args.mem_size || !PAGE_ALIGNED(args.mem_size) ||
	    args.mem_size > KFORK_MAX_MEM_SIZE || args.max_clones > KFORK_MAX_CLONES ||
	    args.state_len < sizeof(struct kfork_state_item) || args.state_len % 8)
		return -EINVAL;
	if (args.state_len > KFORK_MAX_STATE_LEN)
		return -E2BIG;

	tmpl = kzalloc(sizeof(*tmpl), GFP_KERNEL_ACCOUNT);
	if (!tmpl)
		return -ENOMEM;
	kref_init(&tmpl->ref);
	INIT_LIST_HEAD(&tmpl->node);
	INIT_LIST_HEAD(&tmpl->persist_node);
	spin_lock_init(&tmpl->pool_lock);
	INIT_LIST_HEAD(&tmpl->pool);
	init_waitqueue_head(&tmpl->pool_wq);
	mutex_init(&tmpl->defaults_lock);
	tmpl->mem_size = args.mem_size;
	tmpl->max_clones = args.max_clones ? args.max_clones : KFORK_MAX_CLONES;
	atomic64_set(&tmpl->next_id, 1);
	err = kfork_account_template(tmpl);
	if (err) {
		kfree(tmpl);
		return err;
	}
	err = kfork_template_load_state(tmpl, args.state_ptr, args.state_len);
	if (err)
		goto free_state;

	src = fget(args.mem_fd);
	if (!src) {
		err = -EBADF;
		goto free_state;
	}
	if (!(src->f_mode & FMODE_READ) || !S_ISREG(file_inode(src)->i_mode)) {
		err = -EBADF;
		goto put_src;
	}
	tmpl->kvm_dev = filp_open("/dev/kvm", O_RDWR | O_CLOEXEC, 0);
	if (IS_ERR(tmpl->kvm_dev)) {
		err = PTR_ERR(tmpl->kvm_dev);
		goto put_src;
	}
	if (!kfork_file_is_kvm_dev(tmpl->kvm_dev)) {
		pr_warn_ratelimited("kfork: /dev/kvm of pid %d is not KVM's device: refused\n",
				    task_pid_nr(current));
		err = -ENODEV;
		goto put_kvm;
	}
	tmpl->mem = shmem_file_setup("kfork-template", args.mem_size, VM_NORESERVE);
	if (IS_ERR(tmpl->mem)) {
		err = PTR_ERR(tmpl->mem);
		goto put_kvm;
	}
	err = kfork_template_fill(tmpl, src,
				  min_t(u64, args.mem_size, i_size_read(file_inode(src))));
	if (err)
		goto put_mem;
	fput(src);

	atomic64_inc(&kfork_live_templates);
	atomic64_inc(&kfork_total_templates);
	/* In id order: the netlink dump resumes after the last id it sent. */
	spin_lock(&kfork_templates_lock);
	tmpl->id = ++kfork_next_template_id;
	list_add_tail(&tmpl->node, &kfork_templates);
	spin_unlock(&kfork_templates_lock);
	fd = kfork_template_getfd(tmpl);
	kfork_template_put(tmpl);
	return fd;

put_mem:
	kfork_template_put_pages(tmpl);
	fput(tmpl->mem);
put_kvm:
	fput(tmpl->kvm_dev);
put_src:
	fput(src);
free_state:
	kvfree(tmpl->state.buf);
	kfork_unaccount_template(tmpl);
	kfree(tmpl);
	return err;
}

/* A new template fd holding its own reference; the caller keeps its own. */
int kfork_template_getfd(struct kfork_template *tmpl)
{
	int fd;

	kref_get(&tmpl->ref);
	fd = anon_inode_getfd("kfork-template", &kfork_template_fops, tmpl, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		kfork_template_put(tmpl);
	return fd;
}

static long kfork_template_info(struct kfork_template *tmpl, void __user *uarg)
{
	struct kfork_template_info info;
	const struct kfork_wset *wset;
	u32 usize;
	int err;

	err = kfork_copy_args(&info, sizeof(info), uarg,
			      offsetofend(struct kfork_template_info, flags), &usize);
	if (err)
		return err;
	if (info.flags)
		return -EINVAL;
	info.mem_size = tmpl->mem_size;
	info.live_clones = atomic_read(&tmpl->live_clones);
	info.spawns = atomic64_read(&tmpl->spawns);
	info.spawn_failures = atomic64_read(&tmpl->spawn_failures);
	info.resets = atomic64_read(&tmpl->resets);
	info.pages_shared = READ_ONCE(tmpl->mem->f_mapping->nrpages);
	info.pages_copied = atomic64_read(&tmpl->pages_copied);
	/* Pairs with cmpxchg_release() in kfork_template_set_wset(). */
	wset = smp_load_acquire(&tmpl->wset);
	info.wset_pages = wset ? wset->len : 0;
	info.max_clones = tmpl->max_clones;
	info.pad0 = 0;
	info.tmpl_id = tmpl->id;
	if (copy_to_user(uarg, &info, min_t(u32, usize, sizeof(info))))
		return -EFAULT;
	return 0;
}

/*
 * The length travels inside the object published: two callers racing each
 * other can only both allocate; one cmpxchg wins, whole, and the other frees
 * its own copy.
 */
static long kfork_template_set_wset(struct kfork_template *tmpl, void __user *uarg)
{
	u64 npages = tmpl->mem_size >> PAGE_SHIFT;
	struct kfork_template_wset args;
	struct kfork_wset *wset;
	u32 usize, i;
	int err;

	err = kfork_copy_args(&args, sizeof(args), uarg,
			      offsetofend(struct kfork_template_wset, pad0), &usize);
	if (err)
		return err;
	if (args.flags || args.pad0 || !args.nr_entries || args.nr_entries > KFORK_MAX_WSET)
		return -EINVAL;
	if (READ_ONCE(tmpl->wset))
		return -EEXIST;
	wset = kvmalloc(struct_size(wset, entries, args.nr_entries), GFP_KERNEL_ACCOUNT);
	if (!wset)
		return -ENOMEM;
	wset->len = args.nr_entries;
	if (copy_from_user(wset->entries, u64_to_user_ptr(args.entries_ptr),
			   (size_t)args.nr_entries * sizeof(wset->entries[0]))) {
		err = -EFAULT;
		goto free_wset;
	}
	for (i = 0; i < wset->len; i++) {
		u64 e = wset->entries[i];

		if ((e & ~(KFORK_WSET_GFN_MASK | KFORK_WSET_WRITE)) ||
		    (e & KFORK_WSET_GFN_MASK) >= npages) {
			err = -EINVAL;
			goto free_wset;
		}
	}
	if (cmpxchg_release(&tmpl->wset, NULL, wset)) {
		err = -EEXIST;
		goto free_wset;
	}
	return 0;

free_wset:
	kvfree(wset);
	return err;
}

/* Undo a spawn whose result could not reach the caller: nothing stays behind. */
static void kfork_spawn_undo(const struct kfork_spawn_out *out, u64 mem_size)
{
	vm_munmap(out->run_addr, out->run_size);
	vm_munmap(out->mem_addr, mem_size);
	if (out->scratch_addr)
		vm_munmap(out->scratch_addr, out->scratch_size);
	close_fd(out->clone_fd);
	close_fd(out->vcpu_fd);
	close_fd(out->vm_fd);
}

static void kfork_spawn_fill(struct kfork_spawn *sp, const struct kfork_spawn_out *out,
			     u64 mem_size)
{
	sp->status = 0;
	sp->clone_fd = out->clone_fd;
	sp->vm_fd = out->vm_fd;
	sp->vcpu_fd = out->vcpu_fd;
	sp->mem_addr = out->mem_addr;
	sp->mem_size = mem_size;
	sp->run_addr = out->run_addr;
	sp->run_size = out->run_size;
	sp->prefaulted = out->prefaulted;
	sp->clone_id = out->clone_id;
	sp->scratch_addr = out->scratch_addr;
	sp->scratch_size = out->scratch_size;
	sp->pad1 = 0;
}

/*
 * The shortest struct kfork_spawn a caller may pass: it must have room for
 * every fd and mapping a spawn hands over, or they would leak into it.
 */
#define KFORK_SPAWN_MIN_SIZE	offsetofend(struct kfork_spawn, pad0)

/*
 * One spawn described by the struct at uarg; writes the struct back. The
 * spawn is counted, traced and announced only once the caller has it.
 */
static int kfork_template_spawn_one(struct kfork_template *tmpl, void __user *uarg, u32 usize)
{
	struct kfork_spawn sp;
	struct kfork_spawn_out out = { .t0 = ktime_get_ns() };
	int err;

	if (usize < KFORK_SPAWN_MIN_SIZE || usize > KFORK_MAX_ARG_SIZE)
		return -EINVAL;
	err = copy_struct_from_user(&sp, sizeof(sp), uarg, usize);
	if (err)
		return err;
	if ((sp.flags & ~KFORK_SPAWN_FLAGS) || sp.pad0 || sp.pad1)
		return -EINVAL;
	err = kfork_clone_spawn(tmpl, sp.flags,
				usize >= offsetofend(struct kfork_spawn, scratch_size), &out);
	if (!err) {
		kfork_spawn_fill(&sp, &out, tmpl->mem_size);
		if (copy_to_user(uarg, &sp, min_t(u32, usize, sizeof(sp)))) {
			kfork_spawn_undo(&out, tmpl->mem_size);
			err = -EFAULT;
		}
	}
	kfork_clone_spawn_report(tmpl, &out, err);
	return err;
}

static long kfork_template_spawn(struct kfork_template *tmpl, void __user *uarg)
{
	u32 usize;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	return kfork_template_spawn_one(tmpl, uarg, usize);
}

static long kfork_template_spawn_batch(struct kfork_template *tmpl, void __user *uarg)
{
	struct kfork_spawn_batch args;
	u32 usize, i, done = 0;
	int err;

	err = kfork_copy_args(&args, sizeof(args), uarg,
			      offsetofend(struct kfork_spawn_batch, entry_size), &usize);
	if (err)
		return err;
	if (args.flags || !args.nr || args.nr > tmpl->max_clones ||
	    args.entry_size < KFORK_SPAWN_MIN_SIZE ||
	    args.entry_size > KFORK_MAX_ARG_SIZE || args.entry_size % 8)
		return -EINVAL;
	/*
	 * An entry that cannot be read or written back holds no clone (its
	 * spawn, if built, was undone): it counts as failed and the batch goes
	 * on, so one bad entry never strands the clones after it.
	 */
	for (i = 0; i < args.nr; i++) {
		void __user *entry = u64_to_user_ptr(args.clones_ptr + (u64)i * args.entry_size);
		struct kfork_spawn __user *ue = entry;
		u32 esize;

		if (fatal_signal_pending(current))
			err = -EINTR;
		else if (get_user(esize, &ue->size))
			err = -EFAULT;
		else if (esize != args.entry_size)
			err = -EINVAL;
		else
			err = kfork_template_spawn_one(tmpl, entry, esize);
		if (!err)
			done++;
		else if (put_user(err, &ue->status))
			continue;
	}
	return done;
}

static long kfork_template_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct kfork_template *tmpl = file->private_data;
	void __user *uarg = (void __user *)arg;

	/* By number alone, as kfork_dev_ioctl(): the struct's size field versions it. */
	if (_IOC_TYPE(cmd) != KFORK_IOC)
		return -ENOTTY;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(KFORK_TEMPLATE_INFO):
		return kfork_template_info(tmpl, uarg);
	case _IOC_NR(KFORK_TEMPLATE_SET_WSET):
		return kfork_template_set_wset(tmpl, uarg);
	case _IOC_NR(KFORK_SPAWN):
		return kfork_template_spawn(tmpl, uarg);
	case _IOC_NR(KFORK_SPAWN_BATCH):
		return kfork_template_spawn_batch(tmpl, uarg);
	case _IOC_NR(KFORK_TEMPLATE_POOL):
		return kfork_template_pool(tmpl, uarg);
	case _IOC_NR(KFORK_TEMPLATE_PERSIST):
		return kfork_template_persist(tmpl, uarg);
	default:
		return -ENOTTY;
	}
}

/* Nobody can spawn from it any more: its pool goes now, clones may outlive it. */
static int kfork_template_file_release(struct inode *inode, struct file *file)
{
	struct kfork_template *tmpl = file->private_data;

	kfork_pool_release(tmpl);
	kfork_template_put(tmpl);
	return 0;
}

static const struct file_operations kfork_template_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = kfork_template_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = kfork_template_file_release,
	.llseek = noop_llseek,
};
