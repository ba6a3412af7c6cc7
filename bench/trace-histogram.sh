#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# trace-histogram.sh - `kfork trace`'s per-phase histograms around one `kfork run -n N`.
#
#   bench/trace-histogram.sh [N] [KIND]     N spawns (default 1000) of KIND (default minimal)
#
# CODE (default 'echo hi'), TRACE_ARGS (extra `kfork trace` options, e.g. --exits).
# Prints kfork run's summary line, then the tracer's final histograms. Needs root
# (BPF) and, for a Linux guest, the lab: make lab CMD='bench/trace-histogram.sh'.
set -euo pipefail

N=${1:-1000}
KIND=${2:-minimal}
CODE=${CODE:-echo hi}
TREE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KFORK=$TREE/build/kfork
WORK=$(mktemp -d /tmp/kfork-trace-histogram.XXXXXX)
TRACER=

cleanup()
{
	[[ -z "$TRACER" ]] || kill -INT "$TRACER" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "trace-histogram: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (kfork trace loads BPF)"
[[ -x "$KFORK" ]] || die "$KFORK not built (run make)"
"$KFORK" template build --kind "$KIND" -o "$WORK/t.tmpl" >/dev/null 2>&1 ||
	die "kfork template build --kind $KIND failed"
# shellcheck disable=SC2086	# TRACE_ARGS: words
"$KFORK" trace --duration 36000 ${TRACE_ARGS:-} >"$WORK/hist.txt" 2>"$WORK/trace.err" &
TRACER=$!
for _ in $(seq 600); do
	grep -q "tracing spawns" "$WORK/trace.err" && break
	kill -0 "$TRACER" 2>/dev/null || die "kfork trace failed: $(cat "$WORK/trace.err")"
	sleep 0.1
done
"$KFORK" run -n "$N" -t "$WORK/t.tmpl" -- "$CODE"
sleep 1.5	# the tracer takes records every 100 ms
kill -INT "$TRACER"
wait "$TRACER" || die "kfork trace exited $?: $(cat "$WORK/trace.err")"
TRACER=
# the last refresh holds every spawn
tac "$WORK/hist.txt" | sed '/spawns traced in/q' | tac
grep -v "tracing spawns" "$WORK/trace.err" >&2 || true
