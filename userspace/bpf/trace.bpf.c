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

/* Spawns between their spawn_done and exec_done. LRU: a clone destroyed without an exec never completes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct kf_trace_key);
	__type(value, struct kf_trace_rec);
} recs SEC(".maps");

/*
 * Thread -> its KVM and memory events since its last libkfork probe. KVM runs a
 * vCPU on the thread that called KVM_RUN, and a thread makes one libkfork call
 * at a time, each ending with a probe: so what a thread counted when a probe
 * fires belongs to the call that probe ends. (Host faults the caller takes
 * between two calls count towards the next one.) Created by the first KVM
 * event or probe of a thread; LRU, for threads of other KVM users.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct kf_trace_counts);
} threads SEC(".maps");

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

/* Sources of zeroes: too big for the 512-byte stack. */
static const struct kf_trace_rec zero_rec;
static const struct kf_trace_counts zero_counts;

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

/*
 * This thread's counts, or NULL if its process is not traced. Only KVM events
 * and probes create them (create = 1): the host fault sources fire for every
 * process, and count only on threads that run clones.
 */
static __always_inline struct kf_trace_counts *counts_of_thread(int create)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct kf_trace_counts *c;

	if (!pid_wanted(pid_tgid >> 32))
		return NULL;
	c = bpf_map_lookup_elem(&threads, &tid);
	if (c || !create)
		return c;
	bpf_map_update_elem(&threads, &tid, &zero_counts, BPF_NOEXIST);
	return bpf_map_lookup_elem(&threads, &tid);
}

/* Moves what this thread counted into *to (NULL: the events belong to no record). */
static __always_inline void counts_take(struct kf_trace_counts *to)
{
	struct kf_trace_counts *c = counts_of_thread(1);

	if (!c)
		return;
	if (to)
		__builtin_memcpy(to, c, sizeof(*c));
	__builtin_memcpy(c, &zero_counts, sizeof(*c));
}

static __always_inline void emit(struct kf_trace_rec *rec)
{
	struct kf_trace_rec *out = bpf_ringbuf_reserve(&events, sizeof(*out), 0);

	if (!out) {
		fired_inc(KF_SRC_MAX);	/* lost to a full ring buffer */
		return;
	}
	__builtin_memcpy(out, rec, sizeof(*out));
	/* kfork trace polls: no wakeup in the middle of the caller's next spawn. */
	bpf_ringbuf_submit(out, BPF_RB_NO_WAKEUP);
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

/* --- phases: libkfork's USDT probes, one per call ---------------------------- */

SEC("usdt")
int BPF_USDT(spawn_done, __u64 clone_id, __u64 t_start, __u64 t_vm, __u64 t_restored,
	     __u64 t_done, __s64 err)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kf_trace_key key = { .pid = pid_tgid >> 32, .clone_id = clone_id };
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_USDT);
	if (!pid_wanted(key.pid))
		return 0;
	if (bpf_map_update_elem(&recs, &key, &zero_rec, BPF_ANY))
		return 0;
	rec = bpf_map_lookup_elem(&recs, &key);
	if (!rec) {
		counts_take(NULL);
		return 0;
	}
	rec->pid = key.pid;
	rec->tid = (__u32)pid_tgid;
	rec->clone_id = clone_id;
	rec->ts[KF_TS_SPAWN_START] = t_start;
	rec->ts[KF_TS_SPAWN_VM] = t_vm;
	rec->ts[KF_TS_SPAWN_RESTORED] = t_restored;
	rec->ts[KF_TS_SPAWN_DONE] = t_done;
	rec->probe_ns[0] = bpf_ktime_get_ns();
	counts_take(&rec->spawn);
	if (err) {
		/* A failed spawn has no exec: its record is complete. */
		rec->status = err;
		emit(rec);
		bpf_map_delete_elem(&recs, &key);
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(exec_done, __u64 clone_id, __u64 t_start, __u64 t_first_byte, __u64 t_done,
	     __u64 exits, __s64 status)
{
	struct kf_trace_key key = { .pid = bpf_get_current_pid_tgid() >> 32, .clone_id = clone_id };
	struct kf_trace_rec *rec;

	fired_inc(KF_SRC_USDT);
	if (!pid_wanted(key.pid))
		return 0;
	rec = bpf_map_lookup_elem(&recs, &key);
	if (!rec) {
		/* A later exec on the clone: a spawn is its first exec. */
		counts_take(NULL);
		return 0;
	}
	rec->ts[KF_TS_EXEC_START] = t_start;
	rec->ts[KF_TS_EXEC_FIRST_BYTE] = t_first_byte;
	rec->ts[KF_TS_EXEC_DONE] = t_done;
	rec->probe_ns[1] = bpf_ktime_get_ns();
	rec->lib_exits = exits;
	rec->status = status;
	counts_take(&rec->exec);
	emit(rec);
	bpf_map_delete_elem(&recs, &key);
	return 0;
}

/* A reset's events are not a spawn's. */
SEC("usdt")
int BPF_USDT(reset_done, __u64 clone_id, __u64 t_start, __u64 t_done, __s64 err)
{
	fired_inc(KF_SRC_USDT);
	counts_take(NULL);
	return 0;
}

/* --- KVM ---------------------------------------------------------------------- */

SEC("tp/kvm/kvm_exit")
int kvm_exit(struct trace_event_raw_kvm_exit___kf *ctx)
{
	struct kf_trace_counts *c;

	fired_inc(KF_SRC_KVM_EXIT);
	c = counts_of_thread(1);
	if (!c)
		return 0;
	c->exits++;
	c->isa = ctx->isa;
	reason_add(c->exit_reasons, &c->nr_exit_reasons, KF_TRACE_EXIT_REASONS,
		   ctx->exit_reason, &c->exits_other);
	return 0;
}

SEC("tp/kvm/kvm_userspace_exit")
int kvm_userspace_exit(struct trace_event_raw_kvm_userspace_exit___kf *ctx)
{
	struct kf_trace_counts *c;

	fired_inc(KF_SRC_USER_EXIT);
	c = counts_of_thread(1);
	if (!c)
		return 0;
	c->user_exits++;
	reason_add(c->user_reasons, &c->nr_user_reasons, KF_TRACE_USER_REASONS,
		   ctx->reason, &c->user_exits_other);
	return 0;
}

/* One more of a per-thread counter: the tracepoints that count and keep nothing else. */
#define COUNT_EVENT(src, field)					\
	do {							\
		struct kf_trace_counts *c;			\
								\
		fired_inc(src);					\
		c = counts_of_thread(1);			\
		if (c)						\
			c->field++;				\
	} while (0)

SEC("tp/kvm/kvm_pio")
int kvm_pio(void *ctx)
{
	COUNT_EVENT(KF_SRC_PIO, pio);
	return 0;
}

SEC("tp/kvm/kvm_page_fault")
int kvm_page_fault(void *ctx)
{
	COUNT_EVENT(KF_SRC_STAGE2_FAULT, stage2_faults);
	return 0;
}

SEC("tp/kvmmmu/kvm_mmu_set_spte")
int kvm_mmu_set_spte(void *ctx)
{
	COUNT_EVENT(KF_SRC_SPTE, sptes);
	return 0;
}

/* --- host memory ------------------------------------------------------------------ */

SEC("tp/exceptions/page_fault_user")
int page_fault_user(struct kf_page_fault_user *ctx)
{
	struct kf_trace_counts *c;
	unsigned long err;

	fired_inc(KF_SRC_HOST_FAULT);
	c = counts_of_thread(0);
	if (!c)
		return 0;
	c->host_faults++;
	err = ctx->error_code;
	if ((err & (X86_PF_PROT | X86_PF_WRITE)) == (X86_PF_PROT | X86_PF_WRITE))
		c->host_cow_faults++;
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
	struct kf_trace_counts *c;

	fired_inc(KF_SRC_MM_FAULT);
	c = counts_of_thread(0);
	if (!c)
		return 0;
	c->mm_faults++;
	if (flags & KF_FAULT_FLAG_WRITE)
		c->mm_write_faults++;
	return 0;
}
