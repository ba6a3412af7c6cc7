#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# oneshot.sh - one-shot `kfork run` as a user types it: N fresh processes per mode, wall time and phases.
#
#   bench/oneshot.sh DIR TEMPLATE N     (in the lab, with /dev/kfork; bench/run.sh calls it)
#
# Modes, interleaved run by run so that the lab's drift hits each alike:
#   user       KFORK_BACKEND=user: the process reads the file into a memfd, clones it
#   kmod       KFORK_BACKEND=kmod KFORK_ATTACH=0: reads the file and registers it with kfork.ko
#   kmod-kept  after `kfork template load`: attaches to the template kfork.ko keeps
#   process    `kfork --version`: starting and ending a kfork process at all, the floor
# Each run is one line of DIR/oneshot-runs.jsonl: the mode, the wall time of the
# whole process (fork+exec to exit, from this shell) and kfork run --json's
# open/spawn/exec. The steady state, the same spawn+exec round trip inside one
# long-lived process (kfork run -n N), is measured per backend in the same boot.
# bench/oneshot.py turns it into DIR/oneshot.{json,md} and DIR/oneshot.png.
set -euo pipefail

[[ $# -eq 3 ]] || { echo "usage: $0 DIR TEMPLATE N" >&2; exit 2; }
dir=$1 tmpl=$2 n=$3
KFORK=build/kfork
CODE='print(1+1)'
runs=$dir/oneshot-runs.jsonl
mkdir -p "$dir"
: >"$runs"

one()
{
	local mode=$1 t0 t1 out
	shift
	t0=$EPOCHREALTIME
	out=$(env "$@" "$KFORK" run -t "$tmpl" --json -- "$CODE")
	t1=$EPOCHREALTIME
	jq -c --arg mode "$mode" --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1e6 }')" \
		'{mode: $mode, wall_us: $wall, open_us, spawn_us, exec_us, kept, ok: (.stdout == "2\n" and .exit_code == 0)}' \
		<<<"$out" >>"$runs"
}

"$KFORK" template unload "$tmpl" 2>/dev/null || true
t0=$EPOCHREALTIME
"$KFORK" template load "$tmpl"
load_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
# The floor of any CLI here: start, link and exit a kfork process that does nothing.
start_floor()
{
	local t0=$EPOCHREALTIME

	"$KFORK" --version >/dev/null
	jq -nc --argjson wall "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1e6 }')" \
		'{mode: "process", wall_us: $wall, open_us: 0, spawn_us: 0, exec_us: 0, kept: false, ok: true}' >>"$runs"
}

for ((i = 0; i < n; i++)); do
	start_floor
	one user KFORK_BACKEND=user
	one kmod KFORK_BACKEND=kmod KFORK_ATTACH=0
	one kmod-kept KFORK_BACKEND=kmod
done
steady=()
for b in user kmod; do
	line=$(KFORK_BACKEND=$b KFORK_ATTACH=0 "$KFORK" run -t "$tmpl" -n "$n" -- "$CODE")
	steady+=("$(sed -n 's/.*round trip p50 \([0-9.]*\) us p99 \([0-9.]*\) us.*/{"backend":"'$b'","p50_us":\1,"p99_us":\2}/p' <<<"$line")")
done
"$KFORK" template unload "$tmpl"
printf '%s\n' "${steady[@]}" | jq -s --argjson n "$n" --argjson load_s "$load_s" \
	'{n: $n, load_s: $load_s, steady: .}' >"$dir/oneshot-steady.json"
python3 bench/oneshot.py "$dir"
