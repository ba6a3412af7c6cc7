#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# debug-selftest.sh - proves the debug lab catches real kernel reports: one debug-kernel boot per deliberate bug.
#
#   tests/lab/debug-selftest.sh [KIND...]     (make lab-debug-selftest; default: every kind)
# build/kmod-debug/kfork.ko has a debug_fault parameter (kmod/fault.c, never in the
# module users get): writing KIND to it commits that bug once. Each boot writes one
# KIND, then saves dmesg (and kmemleak's list, for leak); klog-scan.sh must then find
# the expected report in those or in the console (a panic, from panic_on_warn, ends
# the boot before CMD can save anything, and replays the kernel log there).
# Prints TAP, one result per KIND, and keeps the logs in build/lab/selftest-KIND-*.txt.
# About 1-2 min per boot on 2 cores.
set -euo pipefail

TREE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$TREE"

# KIND -> the report klog-scan.sh must name (an extended regex over its output).
declare -A WANT=(
	[kasan]='^KASAN: slab-out-of-bounds in kfork_fault_kasan \[kfork\]$'
	[leak]='^kmemleak: unreferenced object \(size 64\) from kfork_fault_leak \[kfork\]$'
	[lockdep]='^lockdep: possible circular locking dependency detected at kfork_fault_lockdep \[kfork\]$'
	[sleep]='^BUG: sleeping function called from invalid context at .*fault\.c:[0-9]+$'
	[warn]='^WARNING at .*fault\.c:[0-9]+ kfork_fault_warn \[kfork\]$'
)
KINDS=(kasan leak lockdep sleep warn)
[[ $# -eq 0 ]] || KINDS=("$@")

[[ -f build/kmod-debug/kfork.ko ]] || { echo "1..0 # SKIP build/kmod-debug/kfork.ko missing (make kmod-debug)"; exit 0; }
mkdir -p build/lab
echo "TAP version 13"
echo "1..${#KINDS[@]}"
n=0 failed=0
for kind in "${KINDS[@]}"; do
	n=$((n + 1))
	[[ -n "${WANT[$kind]:-}" ]] || { echo "not ok $n debug_selftest.$kind # no such kind"; failed=$((failed + 1)); continue; }
	out=build/lab/selftest-$kind
	rm -f "$out"-*.txt
	cmd="echo $kind >/sys/module/kfork/parameters/debug_fault; "
	[[ $kind != leak ]] || cmd+="sleep 6; echo scan >/sys/kernel/debug/kmemleak; echo scan >/sys/kernel/debug/kmemleak; cat /sys/kernel/debug/kmemleak >$out-kmemleak.txt; "
	cmd+="dmesg >$out-dmesg.txt"
	start=$SECONDS
	LAB_KERNEL=debug LAB_CONSOLE_LOG=$out-console.txt LAB_TIMEOUT=${LAB_TIMEOUT:-600} \
		tests/lab/lab.sh run "$cmd" >"$out-lab.txt" 2>&1 || true
	found=$(tests/lab/klog-scan.sh -p "" "$out"-*.txt 2>/dev/null | sort -u || true)
	if grep -qE "${WANT[$kind]}" <<<"$found"; then
		echo "ok $n debug_selftest.$kind ($((SECONDS - start)) s)"
	else
		echo "not ok $n debug_selftest.$kind ($((SECONDS - start)) s)"
		failed=$((failed + 1))
	fi
	sed 's/^/#   found: /' <<<"$found"
done
[[ $failed -eq 0 ]]
