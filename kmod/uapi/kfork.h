/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/* kfork.h - the ABI of /dev/kfork: templates, clones, spawn, batch spawn, reset. */
#ifndef _UAPI_LINUX_KFORK_H
#define _UAPI_LINUX_KFORK_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * Rules every argument struct follows: it starts with __u32 size (the caller's
 * sizeof) and __u32 flags; a larger struct from a newer caller is accepted if
 * its extra bytes are zero (copy_struct_from_user), a smaller one from an older
 * caller is zero-extended. Unknown flags and non-zero pads are -EINVAL. Output
 * fields are written back for at most min(size, the module's size) bytes.
 * Pointers travel as __u64. Fields marked "in" are read, "out" written.
 */
#define KFORK_VERSION		1
#define KFORK_DEVICE		"/dev/kfork"
#define KFORK_IOC		0xB6

/* /dev/kfork ------------------------------------------------------------- */

/* Returns KFORK_VERSION. */
#define KFORK_GET_VERSION	_IO(KFORK_IOC, 0x00)

#define KFORK_CAP_SPAWN		_BITULL(0)	/* KFORK_SPAWN */
#define KFORK_CAP_SPAWN_BATCH	_BITULL(1)	/* KFORK_SPAWN_BATCH */
#define KFORK_CAP_RESET		_BITULL(2)	/* KFORK_CLONE_RESET, dirtied pages only */
#define KFORK_CAP_PREFAULT	_BITULL(3)	/* working set mapped at spawn: SET_WSET */
#define KFORK_CAP_POOL		_BITULL(4)	/* KFORK_TEMPLATE_POOL */
#define KFORK_CAP_GENL		_BITULL(5)	/* generic netlink family KFORK_GENL_NAME */
#define KFORK_CAP_PERSIST	_BITULL(6)	/* KFORK_TEMPLATE_PERSIST, _ATTACH, _REMOVE */
#define KFORK_CAP_TOTALS	_BITULL(7)	/* struct kfork_caps has the *_total fields */

struct kfork_caps {
	__u32 size;		/* in */
	__u32 flags;		/* in: 0 */
	__u64 caps;		/* out: KFORK_CAP_* */
	__u32 version;		/* out: KFORK_VERSION */
	__u32 max_clones;	/* out: default and highest per-template cap on live clones */
	__u64 max_mem_size;	/* out: largest guest memory a template may have */
	__u32 max_state_len;	/* out: largest machine state blob */
	__u32 max_wset;		/* out: most working-set entries */
	__u64 live_templates;	/* out: template objects alive in the module */
	__u64 live_clones;	/* out: clone objects alive in the module */
	/* Since the module was loaded, every user's together (counts only). */
	__u64 templates_total;	/* out: templates registered */
	__u64 spawns_total;	/* out: clones spawned */
	__u64 spawn_failures_total;	/* out */
	__u64 resets_total;	/* out */
};

/*
 * Machine state, the format libkfork's vmm/state.c writes: a sequence of
 * items, each a struct kfork_state_item followed by len bytes padded to 8,
 * holding the argument of the named KVM_SET_* ioctl. The module restores them
 * in tag order. KFORK_STATE_UART is the user-space UART's and is ignored.
 */
struct kfork_state_item {
	__u32 tag;		/* KFORK_STATE_* */
	__u32 len;		/* bytes of data after this header */
};

enum {
	KFORK_STATE_CPUID = 1,		/* struct kvm_cpuid2 + entries */
	KFORK_STATE_PIT2,		/* struct kvm_pit_state2 */
	KFORK_STATE_CLOCK,		/* struct kvm_clock_data: only .clock is used */
	KFORK_STATE_PIC_MASTER,		/* struct kvm_irqchip, chip_id 0 */
	KFORK_STATE_PIC_SLAVE,		/* struct kvm_irqchip, chip_id 1 */
	KFORK_STATE_IOAPIC,		/* struct kvm_irqchip, chip_id 2 */
	KFORK_STATE_MP_STATE,		/* struct kvm_mp_state */
	KFORK_STATE_REGS,		/* struct kvm_regs */
	KFORK_STATE_SREGS,		/* struct kvm_sregs */
	KFORK_STATE_FPU,		/* struct kvm_fpu (optional) */
	KFORK_STATE_XSAVE,		/* struct kvm_xsave, KVM_CAP_XSAVE2 bytes (optional) */
	KFORK_STATE_XCRS,		/* struct kvm_xcrs (optional) */
	KFORK_STATE_DEBUGREGS,		/* struct kvm_debugregs (optional) */
	KFORK_STATE_LAPIC,		/* struct kvm_lapic_state */
	KFORK_STATE_MSRS,		/* struct kvm_msrs + entries */
	KFORK_STATE_VCPU_EVENTS,	/* struct kvm_vcpu_events (optional) */
	KFORK_STATE_UART,		/* user-space device state: ignored */
	KFORK_STATE_MAX,
};

/*
 * Register a template: returns a template fd (O_CLOEXEC). The module copies
 * the non-zero pages of mem_fd (any readable regular file, typically a memfd)
 * into memory it owns and seals; nobody can change them afterwards, the
 * caller included. All mem_size bytes are then resident (holes as zero
 * pages) for the template's life, charged to the caller's memory cgroup and,
 * without CAP_IPC_LOCK, to its user's RLIMIT_MEMLOCK, as mlock() would be.
 * The module opens /dev/kvm in the caller's mount namespace and uses it only
 * if it is KVM's character device. The fd can be passed to other processes
 * (SCM_RIGHTS). Errors: EINVAL bad size/flags/pad/mem_size/state (a vCPU
 * frozen in SMM included), EBADF mem_fd, E2BIG state too long, ENOENT no
 * /dev/kvm, ENODEV /dev/kvm is not KVM's, ENOMEM out of memory or over
 * RLIMIT_MEMLOCK, ENOSPC the module's caps (parameters max_templates,
 * max_template_pages), EFAULT bad pointer, EINTR a fatal signal.
 */
struct kfork_template_create {
	__u32 size;		/* in */
	__u32 flags;		/* in: 0 */
	__s32 mem_fd;		/* in: guest memory, offset 0 = guest-physical 0 */
	__u32 max_clones;	/* in: cap on live clones; 0 = the module's default */
	__u64 mem_size;		/* in: bytes, page multiple, <= max_mem_size */
	__u64 state_ptr;	/* in: machine state (struct kfork_state_item list) */
	__u32 state_len;	/* in: bytes at state_ptr */
	__u32 pad0;		/* must be 0 */
};

#define KFORK_TEMPLATE_CREATE	_IOW(KFORK_IOC, 0x01, struct kfork_template_create)
#define KFORK_GET_CAPS		_IOWR(KFORK_IOC, 0x02, struct kfork_caps)

/*
 * Persistent templates. A template can be kept in the module under a key of
 * KFORK_KEY_SIZE bytes its owner chooses (libkfork: the template file's
 * identity), so that it outlives every fd and process: a later process of
 * the same owner attaches to it in one ioctl instead of registering the
 * pages again. The owner is the euid that registered the template; keys are
 * per owner, and another user's templates are never found (ENOENT), listed
 * to it, or removable by it. Its memory stays charged to the owner as at
 * registration until it is removed and the last fd and clone are gone.
 * Module unload frees persistent templates no fd or clone holds.
 *
 * KFORK_TEMPLATE_PERSIST (template fd): keep this template under key.
 *   EPERM not the owner, EEXIST the owner has a template under key, EBUSY
 *   this template is persistent already.
 * KFORK_TEMPLATE_ATTACH (/dev/kfork): returns a new template fd (O_CLOEXEC)
 *   for the caller's template under key. ENOENT none.
 * KFORK_TEMPLATE_REMOVE (/dev/kfork): stop keeping the caller's template
 *   under key; its fds and clones keep working. ENOENT none.
 *   KFORK_REMOVE_ALL: every persistent template of the caller (key unused);
 *   with CAP_SYS_ADMIN, of every user. Returns how many were removed.
 */
#define KFORK_KEY_SIZE		32
#define KFORK_REMOVE_ALL	_BITUL(0)

struct kfork_template_key {
	__u32 size;		/* in */
	__u32 flags;		/* in: 0, or KFORK_REMOVE_ALL for _REMOVE */
	__u8 key[KFORK_KEY_SIZE];	/* in */
};

#define KFORK_TEMPLATE_ATTACH	_IOW(KFORK_IOC, 0x03, struct kfork_template_key)
#define KFORK_TEMPLATE_REMOVE	_IOW(KFORK_IOC, 0x04, struct kfork_template_key)

/* template fd ------------------------------------------------------------ */

struct kfork_template_info {
	__u32 size;		/* in */
	__u32 flags;		/* in: 0 */
	__u64 mem_size;		/* out */
	__u64 live_clones;	/* out: clones whose clone fd is open */
	__u64 spawns;		/* out: successful spawns */
	__u64 spawn_failures;	/* out */
	__u64 resets;		/* out: successful resets */
	__u64 pages_shared;	/* out: template pages (every clone maps them) */
	__u64 pages_copied;	/* out: pages clones had dirtied, counted at each reset */
	__u64 wset_pages;	/* out: working-set entries (0: none recorded) */
	__u32 max_clones;	/* out */
	__u32 pad0;
	__u64 tmpl_id;		/* out: the id netlink stats/events and tracepoints use */
};

#define KFORK_TEMPLATE_INFO	_IOWR(KFORK_IOC, 0x10, struct kfork_template_info)

/*
 * The template's working set: guest pages a typical exec touches, mapped
 * (host page tables and KVM's stage-2 tables) at every spawn so the clone
 * does not exit to KVM once per page. Each entry is a guest frame number,
 * with KFORK_WSET_WRITE if the exec writes it (it is then copied at spawn).
 * Set once per template: EEXIST afterwards. Entries past mem_size: EINVAL.
 */
#define KFORK_WSET_WRITE	_BITULL(63)
#define KFORK_WSET_GFN_MASK	(_BITULL(52) - 1)

struct kfork_template_wset {
	__u32 size;		/* in */
	__u32 flags;		/* in: 0 */
	__u64 entries_ptr;	/* in: __u64 entries */
	__u32 nr_entries;	/* in: <= max_wset */
	__u32 pad0;
};

#define KFORK_TEMPLATE_SET_WSET	_IOW(KFORK_IOC, 0x11, struct kfork_template_wset)

/*
 * Spawn a clone, ready for KVM_RUN, into the calling process: a new KVM VM
 * (vm_fd) with one vCPU (vcpu_fd, its struct kvm_run mapped at run_addr),
 * guest memory mapped copy-on-write from the template at mem_addr, the
 * template's machine state restored, and the working set pre-faulted. The
 * three mappings (memory, kvm_run, and scratch_addr: the clone's buffer for
 * the KVM ioctls the module makes on its behalf, e.g. in KFORK_CLONE_RESET)
 * are the caller's to munmap when done; a caller that unmaps or reuses the
 * scratch buffer earlier gets EFAULT from the next reset, or a corrupt state
 * in its own clone. A caller whose struct ends before scratch_addr gets no
 * scratch buffer (each reset maps one for itself). All three fds are O_CLOEXEC and
 * the caller's; closing clone_fd ends the clone's link to the template (no
 * more resets) but leaves the VM usable. Per-clone seed and wall clock are
 * the caller's business (libkfork queues them on the serial line).
 * Errors: ENOSPC the template's cap on live clones, EMFILE, ENOMEM, any
 * error of the KVM ioctl that failed (e.g. EINVAL for a state KVM refuses).
 */
#define KFORK_SPAWN_NO_PREFAULT	_BITUL(0)	/* skip the working set */
#define KFORK_SPAWN_FLAGS	KFORK_SPAWN_NO_PREFAULT

struct kfork_spawn {
	__u32 size;		/* in */
	__u32 flags;		/* in: KFORK_SPAWN_* */
	__s32 status;		/* out (batch): 0 or -errno for this clone */
	__s32 clone_fd;		/* out */
	__s32 vm_fd;		/* out */
	__s32 vcpu_fd;		/* out */
	__u64 mem_addr;		/* out: guest memory in the caller's address space */
	__u64 mem_size;		/* out */
	__u64 run_addr;		/* out: the vCPU's struct kvm_run */
	__u32 run_size;		/* out */
	__u32 pad0;
	__u64 prefaulted;	/* out: working-set pages mapped */
	__u64 clone_id;		/* out: unique within the template */
	__u64 scratch_addr;	/* out: the clone's ioctl buffer (see above) */
	__u32 scratch_size;	/* out */
	__u32 pad1;
};

#define KFORK_SPAWN		_IOWR(KFORK_IOC, 0x12, struct kfork_spawn)

/*
 * Spawn nr clones; clones_ptr points to nr structs of entry_size bytes, each
 * with its own size and flags in. Returns how many succeeded; every entry's
 * status says how it went, and the failed ones hold no fd. Clones that
 * succeeded are the caller's even when others failed. An entry the module
 * cannot read or write back fails alone (its status stays as it was) and
 * the batch goes on. entry_size must hold at least up to pad0 (the fds and
 * mappings), like the size of a single KFORK_SPAWN.
 */
struct kfork_spawn_batch {
	__u32 size;		/* in */
	__u32 flags;		/* in: 0 */
	__u64 clones_ptr;	/* in: struct kfork_spawn[nr] */
	__u32 nr;		/* in: 1..max_clones */
	__u32 entry_size;	/* in: sizeof(struct kfork_spawn) of the caller */
};

#define KFORK_SPAWN_BATCH	_IOWR(KFORK_IOC, 0x13, struct kfork_spawn_batch)

/*
 * A pool of pre-built clones (VM, vCPU, memory mapping, machine state,
 * working set) for one process, the pool's owner: KVM ties a VM to the
 * process that created it, so entries are built in, and handed out only to,
 * that process. The first caller with a non-zero target becomes the owner;
 * any other process gets EBUSY until the owner sets 0, closes the template
 * or exits (its entries are then freed at the next pool call or spawn).
 * Sets the template's target (0..KFORK_MAX_POOL = 16; 0 frees this process's
 * entries), then builds entries up to it in the calling thread unless
 * KFORK_POOL_NO_FILL: call it from a thread off the spawn path. A KFORK_SPAWN
 * (without KFORK_SPAWN_NO_PREFAULT) takes an entry if one is ready and only
 * restores the machine state into it; a clone fd released in its process
 * builds one back (in the releasing thread). Entries are not clones: they do
 * not count against max_clones. Closing the template fd frees them.
 */
#define KFORK_POOL_NO_FILL	_BITUL(0)
#define KFORK_POOL_FLAGS	KFORK_POOL_NO_FILL

struct kfork_template_pool {
	__u32 size;		/* in */
	__u32 flags;		/* in: KFORK_POOL_* */
	__u32 target;		/* in */
	__u32 ready;		/* out: entries ready (all processes) */
};

#define KFORK_TEMPLATE_POOL	_IOWR(KFORK_IOC, 0x14, struct kfork_template_pool)

#define KFORK_TEMPLATE_PERSIST	_IOW(KFORK_IOC, 0x15, struct kfork_template_key)

/* clone fd --------------------------------------------------------------- */

/*
 * Return the clone to the template's state in place: only the pages the
 * guest (or KVM on its behalf) dirtied since the last spawn or reset get the
 * template's contents again, copied over the clone's own copies; VM, vCPU,
 * fds and the mapping survive, and every page stays mapped in both page
 * tables (the clone keeps the private pages it had). Must be called
 * by the process that spawned the clone, with the vCPU out of KVM_RUN and
 * any port I/O completed. Writes the caller makes through mem_addr itself
 * are not tracked. Everything KVM reports of the vCPU is the template's
 * again, including what the template file does not carry (optional items,
 * MSRs outside its list, nested and SMM state: a fresh vCPU's values), and a
 * port or MMIO exit left incomplete is completed and then overwritten.
 * Errors: EPERM another process, EFAULT mapping gone or remapped.
 */
#define KFORK_RESET_NO_PREFAULT	_BITUL(0)	/* accepted: nothing is unmapped at reset */
#define KFORK_RESET_FLAGS	KFORK_RESET_NO_PREFAULT

struct kfork_clone_reset {
	__u32 size;		/* in */
	__u32 flags;		/* in: KFORK_RESET_* */
	__u64 pages_reset;	/* out: dirtied pages restored */
	__u64 prefaulted;	/* out: 0 */
};

#define KFORK_CLONE_RESET	_IOWR(KFORK_IOC, 0x20, struct kfork_clone_reset)

/* generic netlink: family "kfork" -------------------------------------------- */

/*
 * Statistics and events, read with libnl-genl. KFORK_CMD_GET_STATS is a dump:
 * one message per live template, attributes KFORK_A_TMPL_* below, failures
 * as nested KFORK_A_FAILURE { KFORK_A_FAIL_ERRNO, KFORK_A_FAIL_COUNT } per
 * errno seen (errno >= KFORK_FAIL_ERRNO_SLOTS counted under 0). The "events"
 * multicast group carries one KFORK_CMD_EVENT per spawn, reset and clone
 * destroy, with KFORK_A_EVENT and the attributes that apply. A spawn the
 * module built but could not hand over (EFAULT writing the struct back) is
 * undone: its failed spawn event carries the clone id, and that clone's
 * destroy event follows. Initial network namespace only. Joining "events"
 * takes CAP_NET_ADMIN; the stats dump lists the templates registered by the
 * caller's uid, or all of them for CAP_SYS_ADMIN.
 */
#define KFORK_GENL_NAME		"kfork"
#define KFORK_GENL_VERSION	1
#define KFORK_GENL_MCGRP_EVENTS	"events"
#define KFORK_FAIL_ERRNO_SLOTS	128

enum {
	KFORK_CMD_UNSPEC,
	KFORK_CMD_GET_STATS,		/* dump: one message per template */
	KFORK_CMD_EVENT,		/* multicast "events" */
	__KFORK_CMD_MAX,
};

enum {
	KFORK_EVENT_SPAWN = 1,		/* KFORK_A_ERRNO 0 or the failure's errno */
	KFORK_EVENT_RESET,
	KFORK_EVENT_DESTROY,		/* the clone fd was released */
};

enum {
	KFORK_A_UNSPEC,
	KFORK_A_PAD,
	KFORK_A_TMPL_ID,		/* u64: unique while the module is loaded */
	KFORK_A_MEM_SIZE,		/* u64 */
	KFORK_A_SPAWNS,			/* u64 */
	KFORK_A_SPAWN_FAILURES,		/* u64 */
	KFORK_A_RESETS,			/* u64 */
	KFORK_A_LIVE_CLONES,		/* u32 */
	KFORK_A_MAX_CLONES,		/* u32 */
	KFORK_A_PAGES_SHARED,		/* u64: template pages every clone maps */
	KFORK_A_PAGES_COPIED,		/* u64: private copies made, prefault and reset */
	KFORK_A_POOL_READY,		/* u32: pre-built VMs waiting */
	KFORK_A_POOL_HITS,		/* u64: spawns served from the pool */
	KFORK_A_FAILURES,		/* nested KFORK_A_FAILURE list */
	KFORK_A_FAILURE,		/* nested: KFORK_A_FAIL_* */
	KFORK_A_FAIL_ERRNO,		/* u32 */
	KFORK_A_FAIL_COUNT,		/* u64 */
	KFORK_A_EVENT,			/* u32: KFORK_EVENT_* */
	KFORK_A_CLONE_ID,		/* u64 */
	KFORK_A_ERRNO,			/* u32: 0 or a positive errno */
	KFORK_A_NS,			/* u64: time the operation took */
	KFORK_A_PAGES,			/* u64: pages prefaulted (spawn) or reset */
	KFORK_A_PERSISTENT,		/* flag: kept under a key (KFORK_TEMPLATE_PERSIST) */
	__KFORK_A_MAX,
};

#define KFORK_A_MAX		(__KFORK_A_MAX - 1)

#endif /* _UAPI_LINUX_KFORK_H */
