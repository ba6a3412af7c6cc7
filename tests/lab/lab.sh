#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# lab.sh - boots the lab VM (Debian's 6.1 kernel, QEMU TCG with SVM, nested KVM) and runs a command of this tree in it.
#
#   tests/lab/lab.sh prepare    fetch and cache the lab kernel, its modules and the initramfs
#   tests/lab/lab.sh run CMD    boot the lab and run CMD with /bin/sh from the tree root
#
# Inside the lab CMD runs in a chroot of the host's root (read-only, over 9p) with
# this tree mounted writable at its own absolute path, so the host's binaries and
# build/ work unchanged and whatever CMD writes to the tree lands in the real tree.
# /tmp, /run, /dev/shm are tmpfs; /proc, /sys, /dev, tracefs and bpffs are the lab's.
# CMD's environment: PATH, HOME=/tmp, KFORK_LAB=1,
#   KFORK_CACHE=<tree>/build/lab/cache   writable, kept across boots, removed by make clean
#   KFORK_HOST_CACHE=<host KFORK_CACHE>  the host's cache (guest kernel, ...), read-only
#   KFORK_KMOD=absent | loaded:<path> | failed:<path>   kfork.ko found in build/kmod/ or kmod/
#
# Environment: LAB_MEM (default 4G), LAB_TIMEOUT (default 1800 s), LAB_VERBOSE=1
# (kernel messages and init's steps), LAB_CPU (default qemu64,+svm,+npt; EPYC,+svm
# adds XSAVE), LAB_KVER (default: the release linux-headers-amd64 is for),
# KFORK_CACHE (default ~/.cache/kfork),
# LAB_KERNEL=debian (default) | debug: the debug kernel (tests/lab/build-debug-kernel.sh:
#   KASAN, lockdep, kmemleak, KVM and 9p built in) boots with panic_on_warn, and
#   panic_print=0x20 so a panic replays the whole kernel log on the console;
#   CMD then sees KFORK_LAB_KERNEL=debug and kfork.ko comes from build/kmod-debug/,
# LAB_CONSOLE_LOG=FILE: the raw console (kernel lines included) is also written there.
# Exit status: CMD's; 125 with one "lab: ..." line saying why if the lab did not
# come up or CMD's status never arrived (boot failure, panic, timeout).
set -euo pipefail
shopt -s lastpipe

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TREE=$(cd "$LAB_DIR/../.." && pwd)
KFORK_CACHE=$(realpath -m "${KFORK_CACHE:-$HOME/.cache/kfork}")
export KFORK_CACHE
# shellcheck source=tests/lab/lab-prepare.sh
source "$LAB_DIR/lab-prepare.sh"

lab_usage()
{
	echo "usage: $0 prepare | run CMD" >&2
	exit 2
}

lab_check_path()
{
	[[ "$2" != *[[:space:],]* ]] ||
		lab_die "$1 '$2' contains white space or a comma: it cannot go on the kernel or QEMU command line; move it"
}

# Copies CMD's output from the console to stdout as it arrives. Init's nonce-tagged
# lines are not shown: START opens CMD's part of the console (firmware and kernel
# lines before it are kept in LAB_EARLY, shown only if the lab fails or with
# LAB_VERBOSE=1), EXIT sets LAB_STATUS and closes it, FATAL sets LAB_FATAL.
lab_console()
{
	local nonce=$1 line state=early
	local start_re="KFORK-LAB-START-$nonce" exit_re="^(.*)KFORK-LAB-EXIT-$nonce=([0-9]+)"
	local fatal_re="KFORK-LAB-FATAL-$nonce: (.*)"

	while IFS= read -r line || [[ -n "$line" ]]; do
		[[ "$line" != *"Kernel panic - not syncing"* ]] || LAB_PANIC=${line%$'\r'}
		if [[ "$line" =~ $fatal_re ]]; then
			LAB_FATAL=${BASH_REMATCH[1]%$'\r'}
			continue
		fi
		case $state in
		early)
			if [[ "$line" =~ $start_re ]]; then
				state=cmd
				LAB_EARLY=()
			elif [[ "${LAB_VERBOSE:-0}" == 1 ]]; then
				printf '%s\n' "$line"
			else
				LAB_EARLY+=("$line")
			fi
			;;
		cmd)
			if [[ "$line" =~ $exit_re ]]; then
				LAB_STATUS=${BASH_REMATCH[2]}
				state=done
				# CMD's last line had no newline: it is still CMD's output.
				[[ -z "${BASH_REMATCH[1]}" ]] || printf '%s\n' "${BASH_REMATCH[1]}"
			else
				printf '%s\n' "$line"
			fi
			;;
		done)
			[[ "${LAB_VERBOSE:-0}" != 1 ]] || printf '%s\n' "$line"
			;;
		esac
	done
}

lab_tee_console()
{
	if [[ -n "${LAB_CONSOLE_LOG:-}" ]]; then
		tee "$LAB_CONSOLE_LOG"
	else
		cat
	fi
}

# Prints the seconds since EPOCHREALTIME value $1, to 0.1 s.
lab_seconds_since()
{
	local ds=$(( (${EPOCHREALTIME/./} - ${1/./}) / 100000 ))

	echo "$((ds / 10)).$((ds % 10))"
}

lab_run()
{
	local cmd=$1 nonce cmdfile errlog append start elapsed qemu_rc
	# Only panics, oopses and BUGs (levels 0-2) reach the console; KVM's err-level
	# chatter (unhandled MSRs of nested guests) would interleave with CMD's output.
	local quiet="quiet loglevel=3"
	local timeout=${LAB_TIMEOUT:-1800}

	[[ -n "$cmd" ]] || lab_die "nothing to run: lab.sh run CMD needs a non-empty CMD"
	command -v qemu-system-x86_64 >/dev/null ||
		lab_die "qemu-system-x86_64 not found: apt-get install qemu-system-x86"
	lab_check_path "work tree" "$TREE"
	lab_check_path "KFORK_CACHE" "$KFORK_CACHE"
	lab_prepare

	nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	mkdir -p "$TREE/build/lab"
	cmdfile=build/lab/cmd-$nonce.sh
	errlog=$TREE/build/lab/qemu-$nonce.err
	trap 'rm -f "$TREE/$cmdfile" "$errlog"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	printf '%s\n' "$cmd" >"$TREE/$cmdfile"

	[[ "${LAB_VERBOSE:-0}" != 1 ]] || quiet=
	append="console=ttyS0 panic=-1 $quiet kfork_lab.nonce=$nonce kfork_lab.tree=$TREE"
	append+=" kfork_lab.cmd=$cmdfile kfork_lab.hostcache=$KFORK_CACHE kfork_lab.verbose=${LAB_VERBOSE:-0}"
	# A big log buffer: run-in-lab.sh reads the whole of it at the end, and
	# KVM's chatter must not push an early report out. RCU's stall timeout at
	# its maximum: under TCG, with KASAN, one boot's initcalls on a loaded host
	# starved rcu_sched for 26 s (6502 jiffies; 21 s is the default); a stall of the module's
	# making (a loop that never schedules) still shows, 300 s later.
	[[ "${LAB_KERNEL:-debian}" != debug ]] ||
		append+=" kfork_lab.kernel=debug panic_on_warn=1 panic_print=0x20 log_buf_len=16M rcupdate.rcu_cpu_stall_timeout=300"
	append+="${LAB_APPEND:+ $LAB_APPEND}"	# e.g. earlyprintk=serial, to debug a boot

	LAB_STATUS= LAB_FATAL= LAB_PANIC= LAB_EARLY=()
	start=$EPOCHREALTIME
	set +e
	timeout --foreground -k 10 "$timeout" qemu-system-x86_64 \
		-accel tcg -cpu "${LAB_CPU:-qemu64,+svm,+npt}" -smp 1 -m "${LAB_MEM:-4G}" \
		-nographic -no-reboot -nic none \
		-kernel "$LAB_VMLINUX" -initrd "$LAB_INITRD" -append "$append" \
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$TREE,mount_tag=kforktree,security_model=none,multidevs=remap" \
		-device virtio-rng-pci \
		</dev/null 2>"$errlog" | lab_tee_console | lab_console "$nonce"
	qemu_rc=${PIPESTATUS[0]}
	set -e
	elapsed=$(lab_seconds_since "$start")

	if [[ -n "$LAB_STATUS" ]]; then
		lab_note "CMD exited $LAB_STATUS; lab boot to power-off ${elapsed} s"
		exit "$LAB_STATUS"
	fi
	[[ ${#LAB_EARLY[@]} -eq 0 ]] || printf 'lab: console: %s\n' "${LAB_EARLY[@]}" >&2
	[[ ! -s "$errlog" ]] || sed 's/^/lab: qemu: /' "$errlog" >&2
	[[ -z "$LAB_FATAL" ]] || lab_die "$LAB_FATAL"
	[[ $qemu_rc -ne 124 && $qemu_rc -ne 137 ]] ||
		lab_die "timed out after $timeout s (LAB_TIMEOUT) without CMD's exit status"
	[[ -z "$LAB_PANIC" ]] || lab_die "kernel panic in the lab: ${LAB_PANIC#*Kernel panic - }"
	[[ $qemu_rc -eq 0 ]] ||
		lab_die "qemu-system-x86_64 exited $qemu_rc before the lab reported CMD's status"
	lab_die "lab powered off after ${elapsed} s without reporting CMD's status (run with LAB_VERBOSE=1 to see the boot)"
}

[[ $# -ge 1 ]] || lab_usage
case "$1" in
prepare)
	[[ $# -eq 1 ]] || lab_usage
	lab_prepare
	echo "kernel  $LAB_VMLINUX"
	echo "initrd  $LAB_INITRD"
	;;
run)
	[[ $# -eq 2 ]] || lab_usage
	lab_run "$2"
	;;
*)
	lab_usage
	;;
esac
