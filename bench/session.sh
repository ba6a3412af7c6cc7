#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# session.sh - one-shot Python exec in the warm interpreter (in place) vs fork-per-exec, both backends.
#
#   bench/session.sh DIR N      (in the lab, with /dev/kfork; make bench-session calls it)
#
# Builds a python template, then build/bench/session-bench runs N cycles per
# mode and backend, interleaved (bench/session.c says what each figure is).
# Writes DIR/session.md (the table) and DIR/session-runs.jsonl (every cycle).
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 DIR N" >&2; exit 2; }
dir=$1 n=$2
tmpl=/tmp/kfork-session-bench.tmpl
mkdir -p "$dir"
t0=$EPOCHREALTIME
build/kfork template build --kind python -o "$tmpl" >/dev/null
build_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
kmod=no
[[ -w /dev/kfork ]] && kmod=yes
{
	echo "# One-shot Python exec: in place (session) vs fork-per-exec"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel: $(uname -r); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "- template: python, built in ${build_s} s; kfork.ko loaded: $kmod; cycles per mode and backend: $n"
	echo "- microseconds; exec: print(1+1), checked to print 2 and exit 0"
	echo
	build/bench/session-bench -t "$tmpl" -n "$n" -o "$dir/session-runs.jsonl"
} | tee "$dir/session.md"
