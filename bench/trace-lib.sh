# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# trace-lib.sh - sourced by the kfork trace scripts in bench/: their setup, and the tracer started and stopped around a workload.
#
# Set NAME (for messages) before sourcing. Sets TREE, KFORK, WORK (a scratch
# directory removed at exit) and TRACER (the running tracer's pid, or empty).

TREE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KFORK=$TREE/build/kfork
WORK=$(mktemp -d "/tmp/kfork-$NAME.XXXXXX")
TRACER=

cleanup()
{
	[[ -z "$TRACER" ]] || kill -INT "$TRACER" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "$NAME: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (kfork trace loads BPF)"
[[ -x "$KFORK" ]] || die "$KFORK not built (run make)"

# template_build KIND: the template at $WORK/t.tmpl.
template_build()
{
	"$KFORK" template build --kind "$1" -o "$WORK/t.tmpl" >/dev/null 2>&1 ||
		die "kfork template build --kind $1 failed"
}

# tracer_start OUT [ARGS...]: `kfork trace ARGS >OUT` in the background, back once it is attached.
tracer_start()
{
	local out=$1

	shift
	"$KFORK" trace "$@" >"$out" 2>"$WORK/trace.err" &
	TRACER=$!
	for _ in $(seq 600); do
		grep -q "tracing spawns" "$WORK/trace.err" && return 0
		kill -0 "$TRACER" 2>/dev/null || die "kfork trace failed: $(cat "$WORK/trace.err")"
		sleep 0.1
	done
	die "kfork trace did not attach in 60 s: $(cat "$WORK/trace.err")"
}

# tracer_stop: Ctrl-C to the tracer (it takes what is left in its ring buffer first).
tracer_stop()
{
	kill -INT "$TRACER"
	wait "$TRACER" || die "kfork trace exited $?: $(cat "$WORK/trace.err")"
	TRACER=
}
