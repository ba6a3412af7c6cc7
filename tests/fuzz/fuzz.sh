#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# fuzz.sh - `make fuzz`: runs one libFuzzer target for SECONDS and prints its execs and coverage.
#
#   tests/fuzz/fuzz.sh TARGET SECONDS     (from the tree root, after make)
#
# Reads tests/fuzz/corpus/TARGET and tests/fuzz/crashes/TARGET; writes only to
# build/fuzz/work/TARGET/ (new corpus entries, crash-* artefacts, the log).
set -euo pipefail

target=$1
seconds=$2
bin=build/fuzz/${target}_fuzz
work=build/fuzz/work/$target

[[ -x "$bin" ]] || { echo "fuzz: $bin not built (make; needs clang-14 libclang-rt-14-dev)" >&2; exit 1; }
mkdir -p "$work/corpus"
dirs=("$work/corpus" "tests/fuzz/corpus/$target")
[[ ! -d "tests/fuzz/crashes/$target" ]] || dirs+=("tests/fuzz/crashes/$target")
echo "fuzz: $target for $seconds s (log and finds in $work)"
if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
	-print_final_stats=1 -artifact_prefix="$work/" "${dirs[@]}" >"$work/log" 2>&1; then
	tail -40 "$work/log"
	echo "fuzz: $target FAILED: see $work/log; the input is $work/crash-* (or leak-*, timeout-*)" >&2
	exit 1
fi
seed=$(sed -n 's/^INFO: Seed: //p' "$work/log" | head -1)
done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" | tail -1)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/log")
cov=$(sed -n 's/.*DONE *cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, features \2, corpus \3/p' <<<"$done_line")
echo "fuzz: $target: $execs execs ($rate/s), $cov, peak RSS $rss MB, seed $seed"
