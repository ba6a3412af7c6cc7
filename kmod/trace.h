/* SPDX-License-Identifier: GPL-2.0-only */
/* trace.h - kfork.ko's tracepoints: every phase of a spawn, pool fills, resets, clone ends. */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kfork

#if !defined(KFORK_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define KFORK_TRACE_H

#include <linux/tracepoint.h>

/*
 * A spawn emits kfork_spawn_start, then one event per phase it went through
 * (pool hit, or mem -> vm -> vcpu -> state -> prefault), then kfork_spawn_done;
 * the events of one spawn share the task (common_pid). elapsed_ns counts from
 * kfork_spawn_start; val is the phase's count (pages prefaulted) or 0.
 */
DECLARE_EVENT_CLASS(kfork_spawn_phase,
		    TP_PROTO(u64 tmpl, u64 elapsed_ns, u64 val),
		    TP_ARGS(tmpl, elapsed_ns, val),
		    TP_STRUCT__entry(__field(u64, tmpl)
				     __field(u64, elapsed_ns)
				     __field(u64, val)),
		    TP_fast_assign(__entry->tmpl = tmpl;
				   __entry->elapsed_ns = elapsed_ns;
				   __entry->val = val;),
		    TP_printk("tmpl=%llu elapsed_ns=%llu val=%llu",
			      __entry->tmpl, __entry->elapsed_ns, __entry->val));

#define KFORK_SPAWN_PHASE(name) \
	DEFINE_EVENT(kfork_spawn_phase, kfork_spawn_##name, \
		     TP_PROTO(u64 tmpl, u64 elapsed_ns, u64 val), \
		     TP_ARGS(tmpl, elapsed_ns, val))

KFORK_SPAWN_PHASE(start);	/* the ioctl began */
KFORK_SPAWN_PHASE(pool);	/* a pre-built VM was taken: mem, vm, vcpu skipped */
KFORK_SPAWN_PHASE(mem);		/* guest memory mapped copy-on-write */
KFORK_SPAWN_PHASE(vm);		/* KVM_CREATE_VM, memory slot, irqchip, PIT */
KFORK_SPAWN_PHASE(vcpu);	/* KVM_CREATE_VCPU, kvm_run mapped */
KFORK_SPAWN_PHASE(state);	/* the template's machine state restored */
KFORK_SPAWN_PHASE(prefault);	/* working set mapped; val = pages */

TRACE_EVENT(kfork_spawn_done,
	    TP_PROTO(u64 tmpl, u64 clone, int err, u64 elapsed_ns, bool pooled),
	    TP_ARGS(tmpl, clone, err, elapsed_ns, pooled),
	    TP_STRUCT__entry(__field(u64, tmpl)
			     __field(u64, clone)
			     __field(int, err)
			     __field(bool, pooled)
			     __field(u64, elapsed_ns)),
	    TP_fast_assign(__entry->tmpl = tmpl;
			   __entry->clone = clone;
			   __entry->err = err;
			   __entry->pooled = pooled;
			   __entry->elapsed_ns = elapsed_ns;),
	    TP_printk("tmpl=%llu clone=%llu err=%d pooled=%d elapsed_ns=%llu",
		      __entry->tmpl, __entry->clone, __entry->err, __entry->pooled,
		      __entry->elapsed_ns));

TRACE_EVENT(kfork_pool_fill,
	    TP_PROTO(u64 tmpl, int err, u64 elapsed_ns, u32 ready),
	    TP_ARGS(tmpl, err, elapsed_ns, ready),
	    TP_STRUCT__entry(__field(u64, tmpl)
			     __field(int, err)
			     __field(u32, ready)
			     __field(u64, elapsed_ns)),
	    TP_fast_assign(__entry->tmpl = tmpl;
			   __entry->err = err;
			   __entry->ready = ready;
			   __entry->elapsed_ns = elapsed_ns;),
	    TP_printk("tmpl=%llu err=%d ready=%u elapsed_ns=%llu",
		      __entry->tmpl, __entry->err, __entry->ready, __entry->elapsed_ns));

TRACE_EVENT(kfork_reset,
	    TP_PROTO(u64 tmpl, u64 clone, int err, u64 pages, u64 elapsed_ns),
	    TP_ARGS(tmpl, clone, err, pages, elapsed_ns),
	    TP_STRUCT__entry(__field(u64, tmpl)
			     __field(u64, clone)
			     __field(int, err)
			     __field(u64, pages)
			     __field(u64, elapsed_ns)),
	    TP_fast_assign(__entry->tmpl = tmpl;
			   __entry->clone = clone;
			   __entry->err = err;
			   __entry->pages = pages;
			   __entry->elapsed_ns = elapsed_ns;),
	    TP_printk("tmpl=%llu clone=%llu err=%d pages=%llu elapsed_ns=%llu",
		      __entry->tmpl, __entry->clone, __entry->err, __entry->pages,
		      __entry->elapsed_ns));

TRACE_EVENT(kfork_clone_destroy,
	    TP_PROTO(u64 tmpl, u64 clone),
	    TP_ARGS(tmpl, clone),
	    TP_STRUCT__entry(__field(u64, tmpl)
			     __field(u64, clone)),
	    TP_fast_assign(__entry->tmpl = tmpl;
			   __entry->clone = clone;),
	    TP_printk("tmpl=%llu clone=%llu",
		      __entry->tmpl, __entry->clone));

#endif /* KFORK_TRACE_H */

/* Out of tree: the header is found through ccflags -I$(src). */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
