#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# trace-overhead.sh - spawn p50 with and without `kfork trace` attached, alternating in one run.
#
#   bench/trace-overhead.sh [N] [ROUNDS]     N spawns per measurement (default 200), ROUNDS (default 4)
#
# KIND=tiny|minimal (default tiny; minimal needs a Linux guest: the lab), CODE (default
# 'echo hi'), BACKENDS (default: user, and kmod if /dev/kfork exists; each run with
# KFORK_BACKEND set), TRACE_ARGS (extra `kfork trace` options, e.g. --faults or
# --sources kvm_exit). Rounds alternate A B B A ... so drift hits both sides alike; the
# figure is the median over rounds of kfork run's own spawn p50. Needs root (BPF).
set -euo pipefail

N=${1:-200}
ROUNDS=${2:-4}
KIND=${KIND:-tiny}
CODE=${CODE:-echo hi}
TRACE_ARGS=${TRACE_ARGS:-}
if [[ -z "${BACKENDS:-}" ]]; then
	BACKENDS=user
	[[ ! -e /dev/kfork ]] || BACKENDS="user kmod"
fi
NAME=trace-overhead
# shellcheck source=bench/trace-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/trace-lib.sh"
template_build "$KIND"

# Prints "spawn_p50_us round_trip_p50_us wall_us_per_clone" of one `kfork run -n N`: libkfork
# times kf_spawn() and kf_exec() itself and its probes fire after its clock stops, so the
# wall time of the whole run is what shows every trap the tracer costs.
measure()
{
	local t0 t1 figures

	t0=$(date +%s%N)
	figures=$("$KFORK" run -n "$N" -t "$WORK/t.tmpl" -- "$CODE" |
		sed -n 's/.*spawn p50 \([0-9.]*\) us.*round trip p50 \([0-9.]*\) us.*/\1 \2/p')
	t1=$(date +%s%N)
	echo "$figures $(( (t1 - t0) / 1000 / N ))"
}

measure_traced()
{
	# shellcheck disable=SC2086	# TRACE_ARGS: words
	tracer_start "$WORK/records.json" --json --duration 3600 $TRACE_ARGS
	measure
	tracer_stop
	[[ $(wc -l <"$WORK/records.json") -eq $N ]] ||
		die "traced run recorded $(wc -l <"$WORK/records.json") spawns, expected $N"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One backend: warm-up, ROUNDS alternating rounds, two lines of figures.
run_backend()
{
	export KFORK_BACKEND=$1
	rm -f "$WORK/off" "$WORK/on"
	measure >/dev/null	# warm up: page cache, template pages
	for r in $(seq "$ROUNDS"); do
		if (( r % 2 )); then
			measure >>"$WORK/off"; measure_traced >>"$WORK/on"
		else
			measure_traced >>"$WORK/on"; measure >>"$WORK/off"
		fi
	done
	off=$(cut -d' ' -f1 "$WORK/off" | median)
	on=$(cut -d' ' -f1 "$WORK/on" | median)
	rt_off=$(cut -d' ' -f2 "$WORK/off" | median)
	rt_on=$(cut -d' ' -f2 "$WORK/on" | median)
	wall_off=$(cut -d' ' -f3 "$WORK/off" | median)
	wall_on=$(cut -d' ' -f3 "$WORK/on" | median)
	echo "trace-overhead: backend $1: spawn p50 $off us untraced, $on us traced: $(pct "$off" "$on")"
	echo "trace-overhead: backend $1: spawn+exec p50 $rt_off us untraced, $rt_on us traced: $(pct "$rt_off" "$rt_on")"
	echo "trace-overhead: backend $1: wall time per clone (whole kfork run -n) $wall_off us untraced, $wall_on us traced: $(pct "$wall_off" "$wall_on")"
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (b - a) * 100 / a }'; }

echo "trace-overhead: $KIND template, $ROUNDS rounds x $N spawns each way, kernel $(uname -r), backends: $BACKENDS, kfork trace ${TRACE_ARGS:-(defaults)}"
for b in $BACKENDS; do
	run_backend "$b"
done
