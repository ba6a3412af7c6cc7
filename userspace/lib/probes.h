/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* probes.h - USDT probes marking each phase of a spawn and an exec, for `kfork trace`. */
#ifndef KF_LIB_PROBES_H
#define KF_LIB_PROBES_H

/*
 * Provider "kfork". Every probe's first argument is the clone id, so that the
 * BPF side can join the phases of one spawn. A probe is a single nop until a
 * tracer attaches (systemtap-sdt-dev's sys/sdt.h).
 *
 *   spawn_start(id)        kf_spawn() entered
 *   spawn_vm(id)           VM, memory slot, irqchip, vCPU created
 *   spawn_restored(id)     machine state restored
 *   spawn_done(id, ns)     clone runnable; ns = spawn latency as libkfork measured it
 *   reset_start(id), reset_done(id, ns)
 *   exec_start(id)         kf_exec() entered, request queued
 *   exec_first_byte(id)    first byte from the guest during this exec
 *   exec_done(id, ns, exits, status)  result in hand; exits = KVM_RUN returns
 */
#include <sys/sdt.h>

#define KF_PROBE1(name, a)		DTRACE_PROBE1(kfork, name, a)
#define KF_PROBE2(name, a, b)		DTRACE_PROBE2(kfork, name, a, b)
#define KF_PROBE4(name, a, b, c, d)	DTRACE_PROBE4(kfork, name, a, b, c, d)

#endif
