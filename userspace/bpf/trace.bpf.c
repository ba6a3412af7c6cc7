// SPDX-License-Identifier: GPL-2.0-only
/* trace.bpf.c - joins libkfork's USDT phase stamps and KVM/MM events into one record per spawn. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>

#include "trace.h"

char LICENSE[] SEC("license") = "GPL";

/* 0: every process; otherwise only this one (the USDT attach is limited too). */
const volatile __u32 target_pid = 0;

/* In-progress spawns. LRU: a clone spawned and destroyed without an exec never completes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct kf_trace_key);
	__type(value, struct kf_trace_rec);
} recs SEC(".maps");

/*
 * Thread -> the spawn it is working on: set at spawn_start and exec_start,
 * cleared at spawn_done and exec_done. KVM runs a vCPU on the thread that called
 * KVM_RUN, so a KVM event on that thread belongs to that spawn.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct kf_trace_key);
} current_spawn SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Hits per source, attributed or not: tells user space which tracepoints never fire. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KF_SRC_MAX + 1);	/* + 1: records lost to a full ring buffer */
	__type(key, __u32);
	__type(value, __u64);
} fired SEC(".maps");

/* Source of zeroes for a new record: too big for the 512-byte stack. */
static const struct kf_trace_rec zero_rec;

/*
 * Tracepoint records. Local "___kf" flavours: CO-RE finds each field by name in
 * the running kernel's BTF (vmlinux, or kvm.ko's when KVM is a module), so the
 * layout may differ between 6.1 and 6.18; only fields present in both are used.
 */
struct trace_event_raw_kvm_exit___kf {
	unsigned int exit_reason;
	__u32 isa;
} __attribute__((preserve_access_index));

struct trace_event_raw_kvm_userspace_exit___kf {
	__u32 reason;
	int errno;
} __attribute__((preserve_access_index));

/*
 * exceptions:page_fault_user has no BTF type on 6.18 (its event class is not
 * emitted), so its record is read at the fixed format both kernels share
 * (events/exceptions/page_fault_user/format).
 */
struct kf_page_fault_user {
	__u64 common;
	unsigned long address;
	unsigned long ip;
	unsigned long error_code;
};

#define X86_PF_PROT	0x1
#define X86_PF_WRITE	0x2
#define KF_FAULT_FLAG_WRITE	0x1	/* enum fault_flag, same value since 2.6 */

static __always_inline void fired_inc(__u32 src)
{
	__u64 *n = bpf_map_lookup_elem(&fired, &src);

	if (n)
		(*n)++;
}

static __always_inline int pid_wanted(__u32 pid)
{
	return !target_pid || pid == target_pid;
}

static __always_inline struct kf_trace_rec *rec_of(__u64 clone_id, struct kf_trace_key *key)
{
	key->pid = bpf_get_current_pid_tgid() >> 32;
	key->pad = 0;
	key->clone_id = clone_id;
	return bpf_map_lookup_elem(&recs, key);
}

/* The record of the spawn this thread is working on, or NULL. */
static __always_inline struct kf_trace_rec *rec_of_thread(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kf_trace_key *key = bpf_map_lookup_elem(&current_spawn, &tid);

	return key ? bpf_map_lookup_elem(&recs, key) : NULL;
}

static __always_inline void stamp(__u64 clone_id, __u32 which)
{
	struct kf_trace_key key;
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_USDT);
	rec = rec_of(clone_id, &key);
	if (rec && which < KF_TS_MAX)
		rec->ts[which] = bpf_ktime_get_ns();
}

static __always_inline void reason_add(struct kf_trace_reason *tab, __u32 *nr, __u32 max,
				       __u32 reason, __u64 *other)
{
	__u32 n = *nr;

	for (__u32 i = 0; i < KF_TRACE_EXIT_REASONS; i++) {
		if (i >= n || i >= max)
			break;
		if (tab[i].reason == reason) {
			tab[i].count++;
			return;
		}
	}
	if (n < max) {
		/* max is a power of two: the mask only convinces the verifier */
		tab[n & (max - 1)].reason = reason;
		tab[n & (max - 1)].count = 1;
		*nr = n + 1;
	} else {
		(*other)++;
	}
}

/* --- phases: libkfork's USDT probes ------------------------------------------ */

SEC("usdt")
int BPF_USDT(spawn_start, __u64 clone_id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct kf_trace_key key;
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_USDT);
	if (!pid_wanted(pid_tgid >> 32))
		return 0;
	key.pid = pid_tgid >> 32;
	key.pad = 0;
	key.clone_id = clone_id;
	if (bpf_map_update_elem(&recs, &key, &zero_rec, BPF_ANY))
		return 0;
	rec = bpf_map_lookup_elem(&recs, &key);
	if (!rec)
		return 0;
	rec->pid = key.pid;
	rec->tid = tid;
	rec->clone_id = clone_id;
	rec->ts[KF_TS_SPAWN_START] = bpf_ktime_get_ns();
	bpf_map_update_elem(&current_spawn, &tid, &key, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(spawn_vm, __u64 clone_id)
{
	stamp(clone_id, KF_TS_SPAWN_VM);
	return 0;
}

SEC("usdt")
int BPF_USDT(spawn_restored, __u64 clone_id)
{
	stamp(clone_id, KF_TS_SPAWN_RESTORED);
	return 0;
}

SEC("usdt")
int BPF_USDT(spawn_done, __u64 clone_id, __u64 ns)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kf_trace_key key;
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_USDT);
	rec = rec_of(clone_id, &key);
	if (!rec)
		return 0;
	rec->ts[KF_TS_SPAWN_DONE] = bpf_ktime_get_ns();
	rec->lib_spawn_ns = ns;
	/* Whatever the caller does before kf_exec() is not this spawn's. */
	bpf_map_delete_elem(&current_spawn, &tid);
	return 0;
}

SEC("usdt")
int BPF_USDT(exec_start, __u64 clone_id)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kf_trace_key key;
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_USDT);
	rec = rec_of(clone_id, &key);
	if (!rec)
		return 0;
	rec->ts[KF_TS_EXEC_START] = bpf_ktime_get_ns();
	bpf_map_update_elem(&current_spawn, &tid, &key, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(exec_first_byte, __u64 clone_id)
{
	struct kf_trace_key key;
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_USDT);
	rec = rec_of(clone_id, &key);
	/* One stamp per spawn: later execs on the same clone keep the first. */
	if (rec && !rec->ts[KF_TS_EXEC_FIRST_BYTE])
		rec->ts[KF_TS_EXEC_FIRST_BYTE] = bpf_ktime_get_ns();
	return 0;
}

SEC("usdt")
int BPF_USDT(exec_done, __u64 clone_id, __u64 ns, __u64 exits, __s64 status)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 lost = KF_SRC_MAX;
	struct kf_trace_rec *rec, *out;
	struct kf_trace_key key;

	fired_inc(KF_SRC_USDT);
	rec = rec_of(clone_id, &key);
	if (!rec)
		return 0;
	rec->ts[KF_TS_EXEC_DONE] = bpf_ktime_get_ns();
	rec->lib_exec_ns = ns;
	rec->lib_exits = exits;
	rec->status = status;
	out = bpf_ringbuf_reserve(&events, sizeof(*out), 0);
	if (out) {
		__builtin_memcpy(out, rec, sizeof(*out));
		bpf_ringbuf_submit(out, 0);
	} else {
		fired_inc(lost);
	}
	/* A spawn is its first exec: later execs on the clone start no record. */
	bpf_map_delete_elem(&recs, &key);
	bpf_map_delete_elem(&current_spawn, &tid);
	return 0;
}

/* --- KVM ---------------------------------------------------------------------- */

SEC("tp/kvm/kvm_exit")
int kvm_exit(struct trace_event_raw_kvm_exit___kf *ctx)
{
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_KVM_EXIT);
	rec = rec_of_thread();
	if (!rec)
		return 0;
	rec->exits++;
	rec->isa = ctx->isa;
	reason_add(rec->exit_reasons, &rec->nr_exit_reasons, KF_TRACE_EXIT_REASONS,
		   ctx->exit_reason, &rec->exits_other);
	return 0;
}

SEC("tp/kvm/kvm_userspace_exit")
int kvm_userspace_exit(struct trace_event_raw_kvm_userspace_exit___kf *ctx)
{
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_USER_EXIT);
	rec = rec_of_thread();
	if (!rec)
		return 0;
	rec->user_exits++;
	if (rec->ts[KF_TS_EXEC_START])
		rec->user_exits_exec++;
	reason_add(rec->user_reasons, &rec->nr_user_reasons, KF_TRACE_USER_REASONS,
		   ctx->reason, &rec->user_exits_other);
	return 0;
}

SEC("tp/kvm/kvm_pio")
int kvm_pio(void *ctx)
{
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_PIO);
	rec = rec_of_thread();
	if (rec)
		rec->pio++;
	return 0;
}

SEC("tp/kvm/kvm_page_fault")
int kvm_page_fault(void *ctx)
{
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_STAGE2_FAULT);
	rec = rec_of_thread();
	if (rec)
		rec->stage2_faults++;
	return 0;
}

SEC("tp/kvmmmu/kvm_mmu_set_spte")
int kvm_mmu_set_spte(void *ctx)
{
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_SPTE);
	rec = rec_of_thread();
	if (rec)
		rec->sptes++;
	return 0;
}

/* --- host memory ------------------------------------------------------------------ */

SEC("tp/exceptions/page_fault_user")
int page_fault_user(struct kf_page_fault_user *ctx)
{
	struct kf_trace_rec *rec;
	unsigned long err;

	fired_inc(KF_SRC_HOST_FAULT);
	rec = rec_of_thread();
	if (!rec)
		return 0;
	rec->host_faults++;
	err = ctx->error_code;
	if ((err & (X86_PF_PROT | X86_PF_WRITE)) == (X86_PF_PROT | X86_PF_WRITE))
		rec->host_cow_faults++;
	return 0;
}

/*
 * KVM resolves the guest's faults on the clone's memory with get_user_pages,
 * in the kernel: no user page fault, so only handle_mm_fault sees those
 * copy-on-write copies. Needs kprobes.
 */
SEC("kprobe/handle_mm_fault")
int BPF_KPROBE(handle_mm_fault, void *vma, unsigned long address, unsigned int flags)
{
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_MM_FAULT);
	rec = rec_of_thread();
	if (!rec)
		return 0;
	rec->mm_faults++;
	if (flags & KF_FAULT_FLAG_WRITE)
		rec->mm_write_faults++;
	return 0;
}
