#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# run.sh - `make check`: host tests here, lab tests in one lab boot, one "N passed, N failed, N skipped" line last.
#
# Host half: every test binary in build/tests/host/ runs here (KVM tests skip on
# their own without /dev/kvm). Lab half: one boot of the lab VM (tests/lab/lab.sh,
# TCG, so it runs with or without /dev/kvm) runs tests/lab/run-in-lab.sh, which runs
# build/tests/lab/ and build/tests/kmod/ there and writes its counts to a file in
# build/lab/. A lab that does not come up counts as 1 failed. Results are counted per
# test case (see tests/tap.sh); the exit status is 1 if anything failed.
#
#   KFORK_CHECK=host   only the host half       KFORK_CHECK=lab   only the lab half
#   KFORK_LAB_TEST_DIRS, KFORK_TEST_TIMEOUT are passed on to the lab (see run-in-lab.sh, tap.sh)
# Run from the tree root (make check does).
set -euo pipefail

TREE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TREE"
# shellcheck source=tests/tap.sh
source tests/tap.sh

check_host()
{
	echo "# ======== host tests (build/tests/host)"
	tap_run_dir build/tests/host
}

# The lab starts CMD with a clean environment: carry over the knobs meant for it.
lab_env()
{
	local var

	for var in KFORK_LAB_TEST_DIRS KFORK_TEST_TIMEOUT; do
		[[ -z "${!var:-}" ]] || printf '%s=%q ' "$var" "${!var}"
	done
}

# Inside the lab already (make check run there): no second lab, run the lab half here.
check_lab()
{
	local results rc=0

	echo "# ======== lab tests (one lab boot: build/tests/lab, build/tests/kmod)"
	mkdir -p build/lab
	results=build/lab/results-$$-$RANDOM
	rm -f "$results"
	if [[ "${KFORK_LAB:-}" == 1 ]]; then
		tests/lab/run-in-lab.sh "$results" || rc=$?
	else
		tests/lab/lab.sh run "$(lab_env)tests/lab/run-in-lab.sh $results" || rc=$?
	fi
	if [[ -f "$results" ]]; then
		tap_read_counts "$results"
		rm -f "$results"
		[[ $TAP_COMPLETE -eq 1 ]] ||
			tap_fail "lab: stopped before all lab tests ran (lab.sh exit status $rc; see the lab: line above)"
	elif [[ $rc -eq 125 ]]; then
		tap_fail "lab: the lab VM did not come up or did not finish (see the lab: line above)"
	else
		tap_fail "lab: run-in-lab.sh wrote no results (lab.sh exit status $rc)"
	fi
}

main()
{
	case "${KFORK_CHECK:-all}" in
	all)
		check_host
		check_lab
		;;
	host) check_host ;;
	lab) check_lab ;;
	*) tap_fail "run.sh: KFORK_CHECK='$KFORK_CHECK' is not host, lab or empty" ;;
	esac
	tap_print_summary
	[[ $TAP_FAILED -eq 0 ]]
}

main
