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
# 6.12 half: a lab boot of bookworm-backports' 6.12 (LAB_KVER) runs
# build/tests/kmod/ against build/kmod-<release>/kfork.ko, results named
# "lab-6.12: ...". Skipped, and said so, where its headers are not installed.
# Debug half: a further lab boot, under the debug kernel (LAB_KERNEL=debug:
# KASAN, lockdep, kmemleak, panic_on_warn), runs build/tests/kmod/ against
# build/kmod-debug/kfork.ko; every kernel report counts as a failure, named
# "lab-debug: KASAN: ...", like every test result of that boot.
#
#   KFORK_CHECK=host   only the host half       KFORK_CHECK=lab   only the lab half
#   KFORK_CHECK=lab-debug   only the debug half      KFORK_CHECK=lab-6.12   only the 6.12 half
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

# The kernel-module tests on 6.12, the other kernel users run (Debian 13's).
check_lab_612()
{
	local results kver ko rc=0 start=$SECONDS

	echo "# ======== kmod tests under Linux 6.12 (lab boot of bookworm-backports' kernel: build/tests/kmod)"
	if [[ "${KFORK_LAB:-}" == 1 ]]; then
		echo "# already in a lab: no 6.12 lab boot from inside it"
		return
	fi
	ko=$(ls -d build/kmod-6.12*-amd64/kfork.ko 2>/dev/null | head -n 1 || true)
	if [[ -z "$ko" ]]; then
		TAP_SKIPPED=$((TAP_SKIPPED + 1))
		TAP_SKIPS+=("lab-6.12 (no build/kmod-6.12*/kfork.ko: 6.12 headers not installed; tests/deps.sh installs them as root)")
		return
	fi
	kver=${ko#build/kmod-}
	kver=${kver%/kfork.ko}
	mkdir -p build/lab
	results=build/lab/results-612-$$-$RANDOM
	rm -f "$results"
	LAB_KVER=$kver tests/lab/lab.sh run \
		"$(lab_env)KFORK_LAB_TEST_DIRS=build/tests/kmod tests/lab/run-in-lab.sh $results" || rc=$?
	if [[ -f "$results" ]]; then
		tap_read_counts "$results" "lab-6.12: "
		rm -f "$results"
		[[ $TAP_COMPLETE -eq 1 ]] ||
			tap_fail "lab-6.12: stopped before all kmod tests ran (lab.sh exit status $rc; see the lab: line above)"
	else
		tap_fail "lab-6.12: the $kver lab wrote no results (lab.sh exit status $rc; see the lab: line above)"
	fi
	echo "# 6.12 lab ($kver): $((SECONDS - start)) s"
}

# A panic (panic_on_warn turns each WARN and KASAN report into one) stops the
# boot before run-in-lab.sh can look: then the console, where panic_print
# replayed the whole kernel log, is scanned instead.
check_lab_debug()
{
	local results console rc=0 line n=0 start=$SECONDS

	echo "# ======== kmod tests under the debug kernel (second lab boot: build/tests/kmod, KASAN, lockdep, kmemleak)"
	if [[ "${KFORK_LAB:-}" == 1 ]]; then
		echo "# already in a lab: no debug lab boot from inside it"
		return
	fi
	if [[ "${DEBUG_KERNEL:-1}" == 0 ]]; then
		TAP_SKIPPED=$((TAP_SKIPPED + 1))
		TAP_SKIPS+=("lab-debug (DEBUG_KERNEL=0: the debug kernel half was left out on request)")
		return
	fi
	if [[ ! -f build/kmod-debug/kfork.ko ]]; then
		tap_fail "lab-debug: build/kmod-debug/kfork.ko missing: make all (make kmod-debug) builds it"
		return
	fi
	mkdir -p build/lab
	results=build/lab/results-debug-$$-$RANDOM
	console=build/lab/debug-console.txt
	rm -f "$results"
	LAB_KERNEL=debug LAB_CONSOLE_LOG=$console tests/lab/lab.sh run \
		"$(lab_env)KFORK_LAB_TEST_DIRS=build/tests/kmod tests/lab/run-in-lab.sh $results" || rc=$?
	if [[ -f "$results" ]]; then
		tap_read_counts "$results" "lab-debug: "
		rm -f "$results"
	else
		TAP_COMPLETE=0
	fi
	if [[ $TAP_COMPLETE -ne 1 ]]; then
		while IFS= read -r line; do
			tap_fail "$line"
			n=$((n + 1))
		done < <(tests/lab/klog-scan.sh -p "lab-debug: " "$console" || true)
		[[ $n -ne 0 ]] ||
			tap_fail "lab-debug: the debug lab stopped before all kmod tests ran (lab.sh exit status $rc; see the lab: line above)"
	fi
	echo "# debug lab: $((SECONDS - start)) s, console kept in $console"
}

main()
{
	case "${KFORK_CHECK:-all}" in
	all)
		check_host
		check_lab
		check_lab_612
		check_lab_debug
		;;
	host) check_host ;;
	lab) check_lab ;;
	lab-6.12) check_lab_612 ;;
	lab-debug) check_lab_debug ;;
	*) tap_fail "run.sh: KFORK_CHECK='$KFORK_CHECK' is not host, lab, lab-6.12, lab-debug or empty" ;;
	esac
	tap_print_summary
	[[ $TAP_FAILED -eq 0 ]]
}

main
