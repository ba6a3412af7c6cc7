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
NAME=trace-histogram
# shellcheck source=bench/trace-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/trace-lib.sh"
template_build "$KIND"
# shellcheck disable=SC2086	# TRACE_ARGS: words
tracer_start "$WORK/hist.txt" --duration 36000 ${TRACE_ARGS:-}
"$KFORK" run -n "$N" -t "$WORK/t.tmpl" -- "$CODE"
sleep 1.5	# the tracer takes records every 100 ms
tracer_stop
# the last refresh holds every spawn
awk '/spawns traced in/ { last = "" } { last = last $0 "\n" } END { printf "%s", last }' "$WORK/hist.txt"
grep -v "tracing spawns" "$WORK/trace.err" >&2 || true
