/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* probes.h - USDT probes marking each phase of a spawn and an exec, for `kfork trace`. */
#ifndef KF_LIB_PROBES_H
#define KF_LIB_PROBES_H

/*
 * Provider "kfork". A probe is a single nop until a tracer attaches
 * (systemtap-sdt-dev's sys/sdt.h); attached, each hit is a uprobe trap, which
 * costs microseconds on hardware and ~250 us in the emulated lab. So there is
 * one probe per library call, fired after libkfork's own clock has stopped,
 * and it carries every stamp of the call: CLOCK_MONOTONIC ns, the clock BPF's
 * bpf_ktime_get_ns() reads. The first argument is the clone id, which joins a
 * spawn to its exec; the BPF side attributes a thread's KVM events to the call
 * that ends with the thread's next probe.
 *
 *   spawn_done(id, t_start, t_vm, t_restored, t_done, err)
 *       kf_spawn(): entered, VM + memory + vCPU created, machine state restored,
 *       clone runnable (or failed with -errno err; later stamps 0)
 *   exec_done(id, t_start, t_first_byte, t_done, exits, status)
 *       kf_exec(): request queued, first byte from the guest (0: none), result
 *       in hand; exits = KVM_RUN returns; status = exit code or -errno
 *   reset_done(id, t_start, t_done, err)
 */
#include <sys/sdt.h>

#define KF_PROBE4(name, a, b, c, d)		DTRACE_PROBE4(kfork, name, a, b, c, d)
#define KF_PROBE6(name, a, b, c, d, e, f)	DTRACE_PROBE6(kfork, name, a, b, c, d, e, f)

#endif
