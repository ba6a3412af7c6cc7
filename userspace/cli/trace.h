/* SPDX-License-Identifier: GPL-2.0-only */
/* trace.h - `kfork trace`: per-spawn latency from libkfork's USDT probes and KVM's tracepoints. */
#ifndef KF_CLI_TRACE_H
#define KF_CLI_TRACE_H

int cmd_trace(int argc, char **argv);

#endif
