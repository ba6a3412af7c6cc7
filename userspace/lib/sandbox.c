// SPDX-License-Identifier: LGPL-2.1-or-later
/* sandbox.c - no_new_privs and a seccomp allow-list for the threads that run clones. */
#include <errno.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <termios.h>

#include "../../kmod/uapi/kfork.h"
#include "kfork.h"
#include "vmm/kvm.h"
#include "lib/error.h"

/*
 * What a thread needs to spawn, exec in, reset and destroy clones of a
 * template that is already open, on either backend; measured with
 * `strace -f` over kfork run, run -n, -T, -i -j on both backends (SECURITY.md).
 * Opening files, sockets, exec, ptrace and new processes are not on it.
 */
static const int sandbox_syscalls[] = {
	/* I/O on fds the library already holds; stdio of the caller */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(pread64), SCMP_SYS(close),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
	/* memory: clone RAM, kvm_run, malloc, resets (mmap, mprotect: below) */
	SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mremap), SCMP_SYS(brk),
	/* locks, time, the exec deadline's kick timer and its signal */
	SCMP_SYS(futex), SCMP_SYS(sched_yield), SCMP_SYS(clock_gettime),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(gettid), SCMP_SYS(getpid),
	SCMP_SYS(timer_create), SCMP_SYS(timer_settime), SCMP_SYS(timer_delete),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(restart_syscall),
	/* the per-clone seed */
	SCMP_SYS(getrandom),
	/* the reaper thread, started by the first kf_destroy() (clone: see below) */
	SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* The ioctls of the run loop, spawn (both backends), reset and teardown. */
static const unsigned long sandbox_ioctls[] = {
	KVM_RUN, KVM_IRQ_LINE,
	/* user backend: vm_create() and state_restore() */
	KVM_CREATE_VM, KVM_SET_USER_MEMORY_REGION, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR,
	KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_CREATE_VCPU, KVM_REGISTER_COALESCED_MMIO,
	KVM_SET_CPUID2, KVM_SET_PIT2, KVM_SET_CLOCK, KVM_SET_IRQCHIP, KVM_SET_MP_STATE,
	KVM_SET_REGS, KVM_SET_SREGS, KVM_SET_FPU, KVM_SET_XSAVE, KVM_SET_XCRS,
	KVM_SET_DEBUGREGS, KVM_SET_LAPIC, KVM_SET_MSRS, KVM_SET_VCPU_EVENTS,
	/* ... and the working set's stage 2, on 6.10 and later */
	KVM_PRE_FAULT_MEMORY,
	/* kmod backend */
	KFORK_SPAWN, KFORK_CLONE_RESET, KFORK_TEMPLATE_SET_WSET,
	/* stdio asks whether stdout is a terminal on its first write */
	TCGETS,
};

/* A thread, never a process: the reaper is the only thread libkfork starts. */
#define SANDBOX_CLONE_FLAGS	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | \
				 CLONE_THREAD | CLONE_SYSVSEM)
/* ... and in no new namespace (root could otherwise unshare one for it). */
#define SANDBOX_CLONE_NS	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
				 CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

static int sandbox_rules(scmp_filter_ctx ctx, uint32_t deny)
{
	int err = 0;

	for (size_t i = 0; !err && i < sizeof(sandbox_syscalls) / sizeof(sandbox_syscalls[0]); i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sandbox_syscalls[i], 0);
	/* The kernel reads the request as 32 bits: compare those only. */
	for (size_t i = 0; !err && i < sizeof(sandbox_ioctls) / sizeof(sandbox_ioctls[0]); i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu,
					       (scmp_datum_t)(uint32_t)sandbox_ioctls[i]));
	/*
	 * Opening a file fails (EACCES) rather than killing the process: glibc
	 * opens /proc/sys/vm/overcommit_memory the first time a thread's malloc
	 * arena shrinks, and copes when it cannot. Nothing is opened either way.
	 */
	if (!err && deny == SCMP_ACT_KILL_PROCESS)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
	if (!err && deny == SCMP_ACT_KILL_PROCESS)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
	/* clone3 passes its flags in memory, out of a filter's reach: glibc falls back to clone. */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				       SCMP_A0(SCMP_CMP_MASKED_EQ,
					       SANDBOX_CLONE_FLAGS | SANDBOX_CLONE_NS,
					       SANDBOX_CLONE_FLAGS));
	/* Nothing the library does maps code: no new executable memory. */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	return err;
}

int kf_sandbox_thread(unsigned int flags)
{
	uint32_t deny = flags & KF_SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS;
	scmp_filter_ctx ctx;
	int err;

	if (flags & ~(KF_SANDBOX_ALL_THREADS | KF_SANDBOX_LOG))
		return kf_reject(-EINVAL, "kf_sandbox_thread: unknown flags %#x", flags);
	/* Also sets no_new_privs (SCMP_FLTATR_CTL_NNP is on by default). */
	ctx = seccomp_init(deny);
	if (!ctx)
		return kf_fail(-ENOMEM, "kf_sandbox_thread: seccomp_init");
	err = sandbox_rules(ctx, deny);
	/* A 32-bit (int 0x80) or x32 system call is not on any list: the same end. */
	if (!err)
		err = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, deny);
	if (err) {
		err = kf_fail(err, "kf_sandbox_thread: seccomp_rule_add");
		goto release;
	}
	if (flags & KF_SANDBOX_ALL_THREADS) {
		err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
		if (err) {
			err = kf_fail(err, "kf_sandbox_thread: SCMP_FLTATR_CTL_TSYNC");
			goto release;
		}
	}
	err = seccomp_load(ctx);
	if (err)
		err = kf_fail(err, "kf_sandbox_thread: seccomp_load (no_new_privs + filter)");
release:
	seccomp_release(ctx);
	return err;
}
