#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# run-in-lab.sh - inside the lab: runs every test binary in build/tests/lab/ and build/tests/kmod/, counts TAP.
#
#   tests/lab/lab.sh run 'tests/lab/run-in-lab.sh build/lab/results'   (what tests/run.sh does)
# Writes "passed N", "failed N", "skipped N" and one "failure <name>" / "skip <name>"
# line each to RESULTS (atomically, after every binary; "complete" once all ran),
# for the host to add to its own counts. A kfork.ko
# that exists but failed to load counts as 1 failed. Exits 1 if anything failed.
# KFORK_LAB_TEST_DIRS (default "build/tests/lab build/tests/kmod") names other
# directories, e.g. to try the runner itself on throwaway tests.
# Under the debug kernel (KFORK_LAB_KERNEL=debug, set by init.sh) kmemleak is
# scanned and cleared before the tests, so that boot-time objects are not
# counted, and scanned again after them; every report tests/lab/klog-scan.sh
# finds in the kernel log or in kmemleak's list then counts as one failure.
# Both are kept in build/lab/debug-dmesg.txt and build/lab/debug-kmemleak.txt.
set -euo pipefail

TREE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$TREE"
# shellcheck source=tests/tap.sh
source tests/tap.sh

[[ $# -eq 1 ]] || { echo "usage: $0 RESULTS-FILE" >&2; exit 2; }
results=$1
# Totals after every binary: if the lab dies or times out, what ran still counts.
TAP_COUNTS_FILE=$results
if [[ "${KFORK_LAB:-}" != 1 ]]; then
	echo "run-in-lab.sh: not in the lab (KFORK_LAB unset): run it through tests/lab/lab.sh run" >&2
	exit 2
fi

KMEMLEAK=/sys/kernel/debug/kmemleak

debug_kernel_begin()
{
	[[ "${KFORK_LAB_KERNEL:-debian}" == debug ]] || return 0
	if [[ -w $KMEMLEAK ]] && echo scan >$KMEMLEAK && echo clear >$KMEMLEAK; then
		echo "# debug kernel: kmemleak scanned and cleared before the tests"
	else
		tap_fail "debug kernel: kmemleak unusable ($KMEMLEAK; it disables itself when its pool runs out: see dmesg)"
	fi
}

# kmemleak reports only objects older than 5 s that a scan found unreferenced,
# and a second scan drops those that were only in flight during the first.
debug_kernel_end()
{
	local line start=$SECONDS

	[[ "${KFORK_LAB_KERNEL:-debian}" == debug ]] || return 0
	if [[ -w $KMEMLEAK ]]; then
		sleep 5
		echo scan >$KMEMLEAK && echo scan >$KMEMLEAK || tap_fail "debug kernel: echo scan >$KMEMLEAK failed"
		cat $KMEMLEAK >build/lab/debug-kmemleak.txt || tap_fail "debug kernel: reading $KMEMLEAK failed"
	else
		: >build/lab/debug-kmemleak.txt
	fi
	dmesg >build/lab/debug-dmesg.txt || tap_fail "debug kernel: dmesg failed"
	while IFS= read -r line; do
		tap_fail "$line"
	done < <(tests/lab/klog-scan.sh -p "" build/lab/debug-dmesg.txt build/lab/debug-kmemleak.txt || true)
	echo "# debug kernel: kernel log and kmemleak checked in $((SECONDS - start)) s"
}

debug_kernel_begin
case "${KFORK_KMOD:-absent}" in
failed:*) tap_fail "lab: insmod ${KFORK_KMOD#failed:} failed (its error is above)" ;;
esac
for dir in ${KFORK_LAB_TEST_DIRS:-build/tests/lab build/tests/kmod}; do
	# kmod tests appear once the module does; a missing lab test dir is worth a note.
	[[ -d "$dir" || "$dir" == build/tests/kmod ]] || echo "# no $dir: nothing built there"
	[[ ! -d "$dir" ]] || tap_run_dir "$dir"
done
debug_kernel_end
tap_write_counts "$results" complete
echo "# lab: $TAP_PASSED passed, $TAP_FAILED failed, $TAP_SKIPPED skipped"
[[ $TAP_FAILED -eq 0 ]]
