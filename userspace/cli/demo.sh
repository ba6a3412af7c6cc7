#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# demo.sh - the main job: freeze a warm Python guest, spawn clones of it, run code, show latency.
#
#   make demo [N=100]
#
# With hardware KVM it runs here. Where /dev/kvm is missing or is the software
# PVM (which cannot boot a Linux guest, see LAB.md) it runs inside the lab VM
# (nested KVM under QEMU TCG) and says so: absolute times there are emulated.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
N=${N:-100}
OUT=build/demo

demo_run()
{
	mkdir -p "$OUT"
	echo "== freezing the templates (boot once, warm Python, freeze)"
	time build/kfork template build --kind python -o "$OUT/python.tmpl"
	time build/kfork template build --kind minimal -o "$OUT/minimal.tmpl"
	echo
	echo "== one clone: kfork run -t $OUT/python.tmpl -- 'print(1+1)'"
	build/kfork run -t "$OUT/python.tmpl" -- 'print(1+1)'
	echo "== the same with --json (spawn_us: kf_spawn; exec_us: request -> result)"
	build/kfork run -t "$OUT/python.tmpl" --json -- 'print(1+1)'
	echo "== a failing program keeps its exit status and stderr apart"
	build/kfork run -t "$OUT/python.tmpl" --json -- 'import sys; print("out"); print("err", file=sys.stderr); sys.exit(3)' || true
	if [[ -e /dev/kfork ]]; then
		echo "== kfork.ko keeps the template: later one-shot runs attach (open_us) instead of loading it"
		build/kfork template load "$OUT/python.tmpl"
		for i in 1 2 3; do
			TIMEFORMAT="   (the whole command: %R s)"
			time build/kfork run -t "$OUT/python.tmpl" --json -- 'print(1+1)'
		done
		unset TIMEFORMAT
		build/kfork template unload "$OUT/python.tmpl"
	fi
	echo
	echo "== $N clones each: spawn -> exec -> result -> destroy"
	build/kfork run -t "$OUT/python.tmpl" -n "$N" -- 'print(1+1)'
	build/kfork run -t "$OUT/minimal.tmpl" -n "$N" -- 'echo hi'
}

if [[ "${1:-}" == --here ]]; then
	demo_run
elif [[ -c /dev/kvm && ! -d /sys/module/kvm_pvm ]]; then
	echo "demo: hardware KVM here: running directly"
	demo_run
else
	why="/dev/kvm is missing"
	[[ ! -d /sys/module/kvm_pvm ]] || why="/dev/kvm is the software PVM, which cannot boot a Linux guest"
	echo "demo: $why; running inside the lab VM (nested KVM under QEMU TCG: absolute times are emulated, ~50x slower than metal)"
	exec tests/lab/lab.sh run "N=$N userspace/cli/demo.sh --here"
fi
