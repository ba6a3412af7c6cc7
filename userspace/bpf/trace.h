/* SPDX-License-Identifier: GPL-2.0-only */
/* trace.h - what kfork trace's BPF programs hand to user space: one record per spawn. */
#ifndef KF_BPF_TRACE_H
#define KF_BPF_TRACE_H

/*
 * Shared by trace.bpf.c (which sees vmlinux.h) and the user side (which sees
 * linux/types.h): __u32/__u64 only, no enums in the structs.
 */
#ifndef __bpf__
#include <linux/types.h>
#endif

/*
 * Stamps of one spawn: libkfork's own CLOCK_MONOTONIC readings, handed over
 * as the arguments of its USDT probes (provider "kfork", lib/probes.h), so
 * that the phases are exactly the intervals libkfork timed.
 */
#define KF_TS_SPAWN_START	0
#define KF_TS_SPAWN_VM		1
#define KF_TS_SPAWN_RESTORED	2
#define KF_TS_SPAWN_DONE	3
#define KF_TS_EXEC_START	4
#define KF_TS_EXEC_FIRST_BYTE	5
#define KF_TS_EXEC_DONE		6
#define KF_TS_MAX		7

/* Where each figure comes from; fired[] counts every hit, attributed or not. */
#define KF_SRC_USDT		0	/* libkfork's probes */
#define KF_SRC_KVM_EXIT		1	/* kvm:kvm_exit: VM exits by reason */
#define KF_SRC_USER_EXIT	2	/* kvm:kvm_userspace_exit: KVM_RUN returns */
#define KF_SRC_PIO		3	/* kvm:kvm_pio */
#define KF_SRC_STAGE2_FAULT	4	/* kvm:kvm_page_fault */
#define KF_SRC_SPTE		5	/* kvmmmu:kvm_mmu_set_spte: stage-2 entries installed */
#define KF_SRC_HOST_FAULT	6	/* exceptions:page_fault_user */
#define KF_SRC_MM_FAULT		7	/* kprobe handle_mm_fault: also KVM's faults on the guest's behalf */
#define KF_SRC_MAX		8

#define KF_SRC_BIT(src)		(1u << (src))
/*
 * Sources that fire per page (per guest or host fault, per stage-2 entry;
 * the kmod backend pre-faults hundreds of pages per clone, and the host
 * fault ones fire for every process): off unless asked for (--faults).
 */
#define KF_SRC_PER_PAGE		(KF_SRC_BIT(KF_SRC_STAGE2_FAULT) | KF_SRC_BIT(KF_SRC_SPTE) | \
				 KF_SRC_BIT(KF_SRC_HOST_FAULT) | KF_SRC_BIT(KF_SRC_MM_FAULT))
/*
 * kvm:kvm_exit fires on every VM exit (~500 per minimal-guest exec): in the
 * lab it alone took kmod spawn p50 from ~2 ms to ~30 ms; kvm:kvm_pio (~316)
 * is one more per exit, and kvm:kvm_userspace_exit one per KVM_RUN return
 * (~240: +5-7% on an exec in the lab, where libkfork counts the same returns
 * itself and hands the count to exec_done). Off unless asked for (--exits).
 */
#define KF_SRC_PER_EXIT		(KF_SRC_BIT(KF_SRC_KVM_EXIT) | KF_SRC_BIT(KF_SRC_PIO) | \
				 KF_SRC_BIT(KF_SRC_USER_EXIT))
#define KF_SRC_ALL		(KF_SRC_BIT(KF_SRC_MAX) - 1)
#define KF_SRC_DEFAULT		(KF_SRC_ALL & ~KF_SRC_PER_PAGE & ~KF_SRC_PER_EXIT)

/* Distinct reasons kept per spawn; more are counted in *_other. */
#define KF_TRACE_EXIT_REASONS	16
#define KF_TRACE_USER_REASONS	8

/* kvm_exit's isa field */
#define KF_ISA_VMX		1
#define KF_ISA_SVM		2

struct kf_trace_key {
	__u32 pid;
	__u32 pad;
	__u64 clone_id;
};

struct kf_trace_reason {
	__u32 reason;
	__u32 count;
};

/* What the KVM and memory events of one thread added up to between two libkfork probes. */
struct kf_trace_counts {
	__u32 isa;			/* from kvm_exit, 0 if it never fired */
	__u32 nr_exit_reasons;
	__u32 nr_user_reasons;
	__u32 pad;
	__u64 exits;			/* kvm_exit hits */
	__u64 exits_other;		/* beyond KF_TRACE_EXIT_REASONS distinct reasons */
	__u64 user_exits;		/* kvm_userspace_exit hits */
	__u64 user_exits_other;
	__u64 pio;
	__u64 stage2_faults;
	__u64 sptes;
	__u64 host_faults;		/* user-mode page faults of the spawning thread */
	__u64 host_cow_faults;		/* of which writes to present pages: copy-on-write */
	__u64 mm_faults;		/* handle_mm_fault calls, user and kernel (GUP for KVM) */
	__u64 mm_write_faults;
	struct kf_trace_reason exit_reasons[KF_TRACE_EXIT_REASONS];
	struct kf_trace_reason user_reasons[KF_TRACE_USER_REASONS];
};

/* One spawn and its first exec. */
struct kf_trace_rec {
	__u32 pid;
	__u32 tid;
	__u64 clone_id;
	__u64 ts[KF_TS_MAX];		/* libkfork's stamps, 0 = not reached */
	__u64 probe_ns[2];		/* bpf_ktime_get_ns() in spawn_done and in exec_done */
	__u64 lib_exits;		/* exec_done: KVM_RUN returns libkfork counted */
	__s64 status;			/* exit code, or -errno of the spawn or the exec */
	struct kf_trace_counts spawn;	/* the thread's events during kf_spawn() */
	struct kf_trace_counts exec;	/* and during kf_exec() */
};

#ifndef __bpf__
/* The loader (trace.c): open -> set rodata -> load -> attach, then poll records. */
#include <stddef.h>
#include <sys/types.h>

struct tracer;

struct tracer_source {
	const char *name;	/* "kvm:kvm_exit" */
	const char *figure;	/* what is lost without it */
	int attached;
	int off;		/* not asked for: not loaded, figures null */
	int silent;		/* attached, but known never to fire here */
	char why[192];		/* why it is not attached, or silent */
};

typedef void (*tracer_rec_fn)(const struct kf_trace_rec *rec, void *arg);

/* sources: KF_SRC_BIT()s of the optional sources to attach (KF_SRC_USDT always is). */
int tracer_open(pid_t pid, const char *binary, unsigned int sources, int verbose,
		tracer_rec_fn fn, void *arg, struct tracer **out, char *msg, size_t msg_len);
/* The KF_SRC_* whose name (or the part after ':') is name, or -1. */
int tracer_source_by_name(const char *name);
/* Sleeps timeout_ms (records come without wakeups), then hands every record to fn. */
int tracer_poll(struct tracer *t, int timeout_ms);
const struct tracer_source *tracer_source(const struct tracer *t, unsigned int src);
/* Hits per KF_SRC_* since open; fired[KF_SRC_MAX] = records lost to a full ring buffer. */
int tracer_fired(const struct tracer *t, __u64 fired[KF_SRC_MAX + 1]);
const char *tracer_binary(const struct tracer *t);
void tracer_close(struct tracer *t);
#endif

#endif
