#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# run.sh - drives `make bench`: the host part, then the lab part for the Linux guests and the peer, then the report.
#
#   bench/run.sh                 what `make bench` runs (QUICK=1: fewer samples; LAB=0: host only;
#                                LAB_VMS=1: the whole lab part in one lab VM instead of two)
#   bench/run.sh --in-lab DIR [ROLE]  the lab part (run by the lab itself through tests/lab/lab.sh
#                                run); ROLE all (default), user (the user backend's figures) or
#                                kmod (the kmod backend's, the floor and the peer)
#
# The lab VM has one vCPU (LAB.md: -smp 2 livelocks under TCG), so by default
# two lab VMs run at once, one per host core: one measures the user backend,
# the other the kmod backend, the floor and the peer. Each builds its own
# templates from the same kernel and initramfs.
#   bench/run.sh --report DIR    (re)write the results from a run directory
#
# Raw samples land in build/bench/run-<stamp>/{host,lab}/*.json; bench/report.py
# turns them into bench/results/<date>-<machine>.{json,md} and PNG plots. Needs
# root (KVM, BPF tracing), gnuplot (gnuplot-nox) and, for the lab part,
# qemu-system-x86 (see tests/lab/lab.sh).
set -euo pipefail

TREE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TREE"
BENCH=build/bench/kfork-bench
KFORK=build/kfork

note() { echo "bench: $*" >&2; }
die() { note "$*"; exit 1; }

# Sample counts: full mode meets DESIGN.md's ">= 1000 spawns"; QUICK=1 is CI-sized.
if [[ "${QUICK:-}" == 1 ]]; then
	MODE=quick
	HOST_N=200 HOST_RESETS=100 HOST_FANOUT=200 HOST_FLOOR=300 TP_S=2
	LAB_N=30 LAB_POOL_N=20 LAB_PY_N=15 LAB_RESETS=8 LAB_FANOUT=30 LAB_FANOUT_S=30 LAB_FLOOR=40 LAB_TP_S=2
	PEER_N=3 TRACE_N=20 TRACE_PY_N=10 LAB_ONESHOT_N=10
else
	MODE=full
	# Every spawn figure over 1000 spawns, both guests, both backends: with the
	# lab part split over two lab VMs this stays within 30 minutes. Resets are
	# 100 per dirtied-page count, traced runs 200 (python 100), the peer 20
	# restores: the report gives every n.
	HOST_N=1000 HOST_RESETS=1000 HOST_FANOUT=1000 HOST_FLOOR=1000 TP_S=10
	LAB_N=1000 LAB_POOL_N=1000 LAB_PY_N=1000 LAB_RESETS=100 LAB_FANOUT=1000 LAB_FANOUT_S=420 LAB_FLOOR=300 LAB_TP_S=5
	PEER_N=20 TRACE_N=200 TRACE_PY_N=100 LAB_ONESHOT_N=100
fi

# Writes DIR/env.json: where this part ran.
describe_machine()
{
	local dir=$1 place=$2 kvm cpu

	if [[ -d /sys/module/kvm_pvm ]]; then
		kvm="PVM (software KVM, shadow paging: guest kernel code is emulated)"
	elif [[ -d /sys/module/kvm_amd || -d /sys/module/kvm_intel ]]; then
		local hw=SVM
		[[ -d /sys/module/kvm_intel ]] && hw=VMX
		if grep -qw hypervisor /proc/cpuinfo; then
			kvm="nested $hw (KVM inside a VM)"
			[[ "${KFORK_LAB:-}" != 1 ]] || kvm="nested $hw inside the lab VM (QEMU TCG: the lab's own kernel is emulated)"
		else
			kvm="bare metal $hw"
		fi
	else
		kvm="none (/dev/kvm missing)"
	fi
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
	local kmod_build="absent: build/kmod/kfork.ko not built"
	if [[ -f build/kmod/kfork.ko ]]; then
		kmod_build="current"
		[[ -z $(find kmod -newer build/kmod/kfork.ko -name '*.[ch]' -print -quit) ]] ||
			kmod_build="stale: kmod/ sources are newer than build/kmod/kfork.ko (its last build failed?): the kmod figures are of the last module that built"
	fi
	jq -n --arg place "$place" --arg host "$(hostname -s 2>/dev/null || cat /proc/sys/kernel/hostname)" \
		--arg kernel "$(uname -r)" --arg kvm "$kvm" --arg cpu "$cpu" --arg mode "$MODE" \
		--argjson cores "$(nproc)" \
		--argjson mem "$(awk '/MemTotal/ { print $2 }' /proc/meminfo)" \
		--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		--arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		--arg kmod "${KFORK_KMOD:-absent}" --arg kmod_build "$kmod_build" \
		--argjson vms "${LAB_VMS:-1}" \
		'{place: $place, hostname: $host, kernel: $kernel, kvm: $kvm, cpu: $cpu, cores: $cores,
		  mem_kib: $mem, date: $date, commit: $commit, mode: $mode, kfork_kmod: $kmod,
		  kmod_build: $kmod_build, lab_vms: $vms}' \
		>"$dir/${3:-env.json}"
}

# An explicit "unavailable" record, so the report says why a figure is missing.
unavailable()
{
	local out=$1 section=$2 kind=$3 backend=$4 why=$5

	jq -n --arg s "$section" --arg k "$kind" --arg b "$backend" --arg w "$why" \
		'{section: $s, kind: $k, backend: $b, unavailable: $w}' >"$out"
}

# Runs "$@" in a memory cgroup of its own, its memory.current in KFORK_BENCH_MEMCG,
# where cgroup v2 can be had: only in the lab (whose kernel is ours to configure);
# on the host the command runs as it is and density is MemAvailable alone.
in_memcg()
{
	local root=/sys/fs/cgroup cg rc=0

	if [[ "${KFORK_LAB:-}" == 1 ]]; then
		[[ -f $root/cgroup.controllers ]] || mount -t cgroup2 none "$root" 2>/dev/null || true
		if [[ -f $root/cgroup.controllers ]] && grep -qw memory "$root/cgroup.controllers"; then
			grep -qw memory "$root/cgroup.subtree_control" ||
				echo +memory >"$root/cgroup.subtree_control" 2>/dev/null || true
			cg=$root/kfork-bench-$BASHPID-$RANDOM
			if mkdir "$cg" 2>/dev/null; then
				if ( echo "$BASHPID" >"$cg/cgroup.procs" &&
				     KFORK_BENCH_MEMCG=$cg/memory.current exec "$@" ); then
					rc=0
				else
					rc=$?
				fi
				rmdir "$cg" 2>/dev/null || true
				return $rc
			fi
		fi
	fi
	"$@"
}

# Runs `kfork trace --json` around N spawn+exec cycles of KIND on BACKEND.
traced()
{
	local dir=$1 tmpl=$2 kind=$3 backend=$4 n=$5 tracer i
	local out=$dir/trace-$kind-$backend

	# the USDT probes live in libkfork, linked into kfork-bench: trace that binary;
	# exits and faults are opt-in (per-event costs): this traced run is apart from the timed ones
	"$KFORK" trace --json --duration 3600 --exits --faults --binary "$TREE/$BENCH" \
		>"$out.jsonl" 2>"$out.err" &
	tracer=$!
	for i in $(seq 600); do
		grep -q "tracing spawns" "$out.err" && break
		kill -0 "$tracer" 2>/dev/null || break
		sleep 0.1
	done
	if ! kill -0 "$tracer" 2>/dev/null; then
		note "kfork trace did not start: $(tail -1 "$out.err")"
		rm -f "$out.jsonl"
		return 0
	fi
	"$BENCH" figures -t "$tmpl" -k "$kind" -b "$backend" -n "$n" -s ttfr >"$out.bench.json" ||
		note "traced run of $kind/$backend failed"
	kill -INT "$tracer"
	wait "$tracer" || note "kfork trace exited $?: $(tail -1 "$out.err")"
}

host_part()
{
	local dir=$1 tmpl=$1/tiny.tmpl

	mkdir -p "$dir"
	describe_machine "$dir" host
	note "host: floor ($HOST_FLOOR runs)"
	"$BENCH" floor -n "$HOST_FLOOR" >"$dir/floor.json"
	if "$KFORK" template build --kind tiny -o "$tmpl" >/dev/null; then
		note "host: figures, tiny guest, user backend ($HOST_N spawns)"
		"$BENCH" figures -t "$tmpl" -k tiny -b user -n "$HOST_N" -r "$HOST_RESETS" \
			-f "$HOST_FANOUT" -d "$TP_S" >"$dir/figures-tiny-user.json"
		note "host: kfork trace around $TRACE_N spawns"
		traced "$dir" "$tmpl" tiny user "$TRACE_N"
	else
		unavailable "$dir/figures-tiny-user.json" figures tiny user "kfork template build --kind tiny failed"
	fi
	if [[ -e /dev/kfork ]]; then
		"$BENCH" figures -t "$tmpl" -k tiny -b kmod -n "$HOST_N" -r "$HOST_RESETS" \
			-f "$HOST_FANOUT" -d "$TP_S" >"$dir/figures-tiny-kmod.json"
	else
		unavailable "$dir/figures-tiny-kmod.json" figures tiny kmod \
			"no /dev/kfork on this host$([[ -d /sys/module/kvm_pvm ]] && echo ' (CONFIG_MODULES is off here: kfork.ko cannot load)')"
	fi
	rm -f "$tmpl"
}

# One lab VM's share: ROLE all, user (user backend) or kmod (kmod backend, floor, peer).
lab_part()
{
	local dir=$1 role=$2 tmp=/tmp/kfork-bench kind backend args backends=(user kmod)

	[[ $role == all ]] || backends=("$role")
	mkdir -p "$dir" "$tmp"
	if [[ $role == user ]]; then
		describe_machine "$dir" lab env-user.json
	else
		describe_machine "$dir" lab
	fi
	# A freshly booted lab's CRNG may block the first getrandom() for seconds:
	# kfork-bench records how long its first one took; this warms it first.
	head -c 16 /dev/random >/dev/null
	if [[ $role != user ]]; then
		note "lab: floor ($LAB_FLOOR runs)"
		"$BENCH" floor -n "$LAB_FLOOR" >"$dir/floor.json"
	fi
	for kind in minimal python; do
		note "lab[$role]: building the $kind template"
		local t0=$EPOCHREALTIME log=$dir/build-$kind-$role.log
		if ! "$KFORK" template build --kind "$kind" -o "$tmp/$kind.tmpl" >"$log" 2>&1; then
			for backend in "${backends[@]}"; do
				unavailable "$dir/figures-$kind-$backend.json" figures "$kind" "$backend" \
					"kfork template build --kind $kind failed in the lab: $(tail -1 "$log")"
			done
			continue
		fi
		note "lab[$role]: $kind template built in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
		for backend in "${backends[@]}"; do
			if [[ $backend == kmod && ! -e /dev/kfork ]]; then
				unavailable "$dir/figures-$kind-$backend.json" figures "$kind" kmod \
					"no /dev/kfork in the lab (KFORK_KMOD=${KFORK_KMOD:-absent}: build kmod/ with Debian's 6.1 headers)"
				continue
			fi
			if [[ $kind == minimal ]]; then
				args=(-n "$LAB_N" -p "$LAB_POOL_N" -r "$LAB_RESETS" -f "$LAB_FANOUT" -F "$LAB_FANOUT_S" -d "$LAB_TP_S")
			else
				args=(-n "$LAB_PY_N" -p "$LAB_POOL_N" -s ttfr,pool)
			fi
			note "lab[$role]: figures, $kind guest, $backend backend"
			in_memcg "$BENCH" figures -t "$tmp/$kind.tmpl" -k "$kind" -b "$backend" "${args[@]}" \
				>"$dir/figures-$kind-$backend.json"
			traced "$dir" "$tmp/$kind.tmpl" "$kind" "$backend" \
				"$([[ $kind == minimal ]] && echo "$TRACE_N" || echo "$TRACE_PY_N")"
		done
		if [[ $role != user && $kind == python && -e /dev/kfork ]]; then
			note "lab: one-shot kfork run, $LAB_ONESHOT_N processes per mode (bench/oneshot.sh)"
			bench/oneshot.sh "$dir" "$tmp/$kind.tmpl" "$LAB_ONESHOT_N" >"$dir/oneshot.log" 2>&1 ||
				note "lab: one-shot runs failed (see $dir/oneshot.log)"
		fi
		if [[ $role != user ]]; then
			note "lab: peer (QEMU restoring its own snapshot), $kind guest, $PEER_N restores"
			"$BENCH" peer -K build/guest/vmlinux -I "build/guest/$kind.cpio.gz" -k "$kind" \
				-n "$PEER_N" -w "$tmp" >"$dir/peer-$kind.json" || true
			cp "$tmp/kfork-peer-$kind.log" "$dir/" 2>/dev/null || true
		fi
		rm -f "$tmp/$kind.tmpl"
	done
}

case "${1:-}" in
--in-lab)
	[[ $# -eq 2 || ( $# -eq 3 && $3 =~ ^(all|user|kmod)$ ) ]] || die "usage: $0 --in-lab DIR [all|user|kmod]"
	[[ "${KFORK_LAB:-}" == 1 ]] || die "--in-lab runs inside the lab: tests/lab/lab.sh run '$0 --in-lab DIR'"
	lab_part "$2" "${3:-all}"
	exit 0
	;;
--report)
	[[ $# -eq 2 ]] || die "usage: $0 --report DIR"
	exec python3 bench/report.py "$2"
	;;
"") ;;
*) die "usage: $0 [--in-lab DIR [ROLE] | --report DIR]" ;;
esac

[[ $EUID -eq 0 ]] || die "needs root (/dev/kvm, BPF tracing)"
[[ -x "$BENCH" && -x "$KFORK" ]] || die "run make first ($BENCH, $KFORK)"
command -v gnuplot >/dev/null || die "gnuplot not found: apt-get install gnuplot-nox"
command -v jq >/dev/null || die "jq not found: apt-get install jq"
start=$EPOCHREALTIME
RUN=build/bench/run-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
note "$MODE run into $RUN"
host_part "$RUN/host"
if [[ "${LAB:-}" != 0 ]]; then
	LAB_VMS=${LAB_VMS:-2}
	[[ $LAB_VMS == 1 || $LAB_VMS == 2 ]] || die "LAB_VMS is 1 or 2, not '$LAB_VMS'"
	# the lab runner's default 1800 s is less than a full lab part on a loaded machine
	export LAB_TIMEOUT=${LAB_TIMEOUT:-$([[ $MODE == quick ]] && echo 900 || echo 5400)}
	if [[ $LAB_VMS == 1 ]]; then
		note "lab: one boot for the Linux guests, both backends and the peer"
		tests/lab/lab.sh run "QUICK=${QUICK:-} LAB_VMS=1 bench/run.sh --in-lab $RUN/lab all" ||
			note "the lab part failed (status $?): its figures are reported unavailable"
	else
		note "lab: two lab VMs at once, one per core: the user backend; the kmod backend, floor and peer"
		pids=()
		for role in user kmod; do
			tests/lab/lab.sh run "QUICK=${QUICK:-} LAB_VMS=2 bench/run.sh --in-lab $RUN/lab $role" &
			pids+=($!)
		done
		for i in 0 1; do
			wait "${pids[$i]}" ||
				note "the lab part of the $([[ $i == 0 ]] && echo user || echo kmod) backend failed (status $?): its figures are reported unavailable"
		done
	fi
fi
python3 bench/report.py "$RUN"
note "done in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
