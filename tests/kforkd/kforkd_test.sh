#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# kforkd_test.sh - kforkd driven by curl over loopback and a Unix socket, as TAP: every endpoint and refusal, SIGTERM.
#
#   tests/kforkd/kforkd_test.sh host   the tiny test guest (needs /dev/kvm; fast, runs on the dev machine)
#   tests/kforkd/kforkd_test.sh lab    a python template (inside the lab: tests/lab/lab.sh), kfork.ko's counts too
# Run from the tree root. The daemon must stay up through every refusal, answer
# each with a JSON {"error": ...} body, keep its fd count flat, and on SIGTERM
# finish (or cancel) what runs, exit 0 and leave no clone behind.
set -uo pipefail

MODE=${1:-}
KFORKD=build/kforkd
KFORK=build/kfork
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kforkd-test.XXXXXX")
N=0
FAILED=0
PLAN=32
DPID=

ok() { N=$((N + 1)); echo "ok $N $1"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N $1"; }
skip() { N=$((N + 1)); echo "ok $N $1 # SKIP $2"; }
# check DESC CMD...: passes if CMD succeeds.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
diag() { sed 's/^/# /' "$@"; }

cleanup()
{
	[[ -z "$DPID" ]] || kill -KILL "$DPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

bail_skip() { echo "1..0 # SKIP $1"; exit 4; }

setup_host()
{
	[[ -r /dev/kvm && -w /dev/kvm ]] || bail_skip "/dev/kvm not available"
	[[ -r build/tests/tiny.bin ]] || bail_skip "build/tests/tiny.bin not built (run make)"
	TEMPLATE=$TMP/tiny.tmpl
	$KFORK template build --kind tiny -o "$TEMPLATE" >/dev/null 2>"$TMP/build.log" ||
		{ diag "$TMP/build.log"; echo "Bail out! kfork template build --kind tiny failed"; exit 1; }
	HAPPY_CODE='echo 2'
	CAT_CODE='cat'
	BIN_OUT_CODE=
	SPIN_CODE='spin'
	SLOW_CODE='spin'
	SLOW_TIMEOUT=3000
	EXIT3_CODE='exit 3'
	REVERSE=0
	QUEUE_SPIN_MS=2000
	CANCEL_SPIN_MS=2000
	FAST_MS=1000
}

# The python template the other lab tests share (tests/lab/e2e_test.c builds it under the same lock).
setup_lab()
{
	[[ "${KFORK_LAB:-}" == 1 ]] || bail_skip "not in the lab (run through tests/lab/lab.sh)"
	[[ -r /dev/kvm && -w /dev/kvm ]] || bail_skip "/dev/kvm not available"
	TEMPLATE=/tmp/kfork-e2e-python.tmpl
	exec 9>/tmp/kfork-e2e.lock
	flock 9
	if [[ ! -r "$TEMPLATE" ]]; then
		$KFORK template build --kind python -o "$TEMPLATE" >/dev/null 2>"$TMP/build.log" ||
			{ diag "$TMP/build.log"; echo "Bail out! kfork template build --kind python failed"; exit 1; }
	fi
	exec 9>&-
	HAPPY_CODE='print(1+1)'
	CAT_CODE='import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d[::-1])'
	BIN_OUT_CODE='import sys; sys.stdout.buffer.write(b"\xff\xfe ok")'
	SPIN_CODE='while True: pass'
	SLOW_CODE='import time; time.sleep(3); print("slept")'
	SLOW_TIMEOUT=30000
	EXIT3_CODE='import sys; sys.exit(3)'
	REVERSE=1
	# Every curl and jq costs a lot in the emulated lab (a second or so): wider margins.
	QUEUE_SPIN_MS=10000
	CANCEL_SPIN_MS=5000
	FAST_MS=3000
}

# start_daemon LOG ARGS...: starts kforkd on 127.0.0.1:0; sets DPID and URL once it is ready.
start_daemon()
{
	local log=$1 i
	shift
	: >"$log"
	$KFORKD --template t="$TEMPLATE" --listen 127.0.0.1:0 "$@" 2>"$log" &
	DPID=$!
	for ((i = 0; i < 1200; i++)); do
		grep -q '^kforkd: ready' "$log" && break
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q '^kforkd: ready' "$log"; then
		diag "$log"
		return 1
	fi
	URL=http://$(sed -n 's/^kforkd: listening on \(127[0-9.]*:[0-9]*\)$/\1/p' "$log")
}

# req METHOD PATH [BODY] [curl args...]: response body in $TMP/body, status in $CODE.
req()
{
	local method=$1 path=$2 body=${3:-}
	shift 3 2>/dev/null || shift $#
	if [[ -n "$body" ]]; then
		CODE=$(printf '%s' "$body" | curl -s -o "$TMP/body" -w '%{http_code}' -X "$method" \
			-H "$AUTH" --data-binary @- "$@" "$URL$path")
	else
		CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -X "$method" -H "$AUTH" "$@" "$URL$path")
	fi
}

exec_body() { jq -nc --arg c "$1" --argjson t "${2:-10000}" '{template:"t",code:$c,timeout_ms:$t}'; }
jq_true() { jq -e "$1" "$TMP/body" >/dev/null; }
field() { jq -r "$1" "$TMP/body" 2>/dev/null; }
is_error_json() { [[ "$(jq -r '.error | type' "$TMP/body" 2>/dev/null)" == string ]]; }
expect() { [[ "$CODE" == "$1" ]] && is_error_json || { echo "# got $CODE: $(head -c 300 "$TMP/body")"; false; }; }
fd_count() { ls "/proc/$DPID/fd" | wc -l; }
metric() { curl -s -H "$AUTH" "$URL/v1/metrics" | sed -n "s/^$1 //p"; }
alive() { kill -0 "$DPID" 2>/dev/null; }

# Polls health until running and queue depth are as given (or 30 s).
wait_busy()
{
	local end=$((SECONDS + 30))
	while ((SECONDS < end)); do
		curl -s "$URL/v1/health" >"$TMP/health"
		[[ "$(jq -r '"\(.running) \(.queue_depth)"' "$TMP/health")" == "$1 $2" ]] && return 0
		sleep 0.1
	done
	echo "# health never showed running/queued $1 $2: $(cat "$TMP/health")"
	return 1
}

kmod_live_clones() { $KFORK stats --json 2>/dev/null | head -1 | jq -r .live_clones; }

# kfork.ko's module-wide live clones come back to N (kf_destroy tears down on a library thread).
kmod_clones_back_to()
{
	local i n
	for ((i = 0; i < 50; i++)); do
		n=$(kmod_live_clones)
		[[ "$n" == "$1" ]] && return 0
		sleep 0.1
	done
	echo "# kfork.ko live clones: $n, expected $1"
	return 1
}

refusals_at_start()
{
	printf 'secret\n' >"$TMP/loose"
	chmod 644 "$TMP/loose"
	check "a group/world readable --token-file is refused at start" \
		bash -c "! $KFORKD --template t=$TEMPLATE --listen 127.0.0.1:0 --token-file $TMP/loose 2>$TMP/loose.log && grep -q 'chmod 600' $TMP/loose.log"
	check "a non-loopback --listen is refused without --listen-any" \
		bash -c "! $KFORKD --template t=$TEMPLATE --listen 0.0.0.0:0 2>$TMP/any.log && grep -q 'not a loopback' $TMP/any.log"
}

test_happy()
{
	req POST /v1/exec "$(exec_body "$HAPPY_CODE")"
	check "POST /v1/exec: $HAPPY_CODE -> \"2\\n\", exit 0" \
		jq_true '.stdout == "2\n" and .exit_code == 0 and .encoding == "utf-8"' 
	check "the result carries spawn_us and total_us" \
		test "$(field '(.spawn_us|type) + (.total_us|type)')" == numbernumber
	curl -s --unix-socket "$TMP/sock" -H "$AUTH" -d "$(exec_body "$HAPPY_CODE")" http://kforkd/v1/exec >"$TMP/body"
	check "the same over --socket" test "$(field .stdout)" == 2
	req POST /v1/exec "$(exec_body "$EXIT3_CODE")"
	check "the code's own exit status comes back (3)" test "$CODE $(field .exit_code)" == "200 3"
}

test_binary()
{
	local in want
	in=$(printf '\x00\x01\xfe\xff' | base64 -w0)
	if [[ $REVERSE == 1 ]]; then want=$(printf '\xff\xfe\x01\x00' | base64 -w0); else want=$in; fi
	req POST /v1/exec "$(jq -nc --arg c "$(printf '%s' "$CAT_CODE" | base64 -w0)" --arg i "$in" \
		'{template:"t",code:$c,stdin:$i,encoding:"base64"}')"
	check "encoding base64: binary stdin in, binary stdout back" \
		test "$CODE $(field .encoding) $(field .stdout)" == "200 base64 $want"
	if [[ -z "$BIN_OUT_CODE" ]]; then
		skip "output that is not UTF-8 comes back as base64" "the tiny guest cannot write invalid UTF-8"
	else
		req POST /v1/exec "$(exec_body "$BIN_OUT_CODE")"
		check "output that is not UTF-8 comes back as base64" \
			test "$CODE $(field .encoding) $(field .stdout)" == "200 base64 $(printf '\xff\xfe ok' | base64 -w0)"
	fi
	CODE=$(printf '{"template":"t","code":"x","stdin":"\xff"}' |
		curl -s -o "$TMP/body" -w '%{http_code}' -H "$AUTH" --data-binary @- "$URL/v1/exec")
	check "invalid UTF-8 in a utf-8 request -> 400" expect 400
	req POST /v1/exec '{"template":"t","code":"!!!!","encoding":"base64"}'
	check "bad base64 -> 400" expect 400
}

test_refusals()
{
	req POST /v1/exec '{"template": "t", "code": '
	check "bad JSON -> 400 with a JSON error" expect 400
	req POST /v1/exec '{"template":"t"}'
	check "missing code -> 400" expect 400
	req POST /v1/exec "$(jq -nc '{template:"nope",code:"1"}')"
	check "unknown template -> 404" expect 404
	head -c 70000 /dev/zero | tr '\0' x >"$TMP/big"
	CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "$AUTH" --data-binary @"$TMP/big" "$URL/v1/exec")
	check "a body over --max-body -> 413" expect 413
	CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -d "$(exec_body 1)" "$URL/v1/exec")
	check "no token -> 401" expect 401
	CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Authorization: Bearer wrong' -d "$(exec_body 1)" "$URL/v1/exec")
	check "wrong token -> 401" expect 401
	CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' "$URL/v1/metrics")
	check "metrics need the token too" expect 401
	CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' "$URL/v1/health")
	check "health answers without a token" test "$CODE $(field .status)" == "200 ok"
}

test_timeout()
{
	req POST /v1/exec "$(exec_body "$SPIN_CODE" 500)"
	check "timeout_ms 500 on an endless loop -> 200, timed_out, exit_code 124" \
		test "$CODE $(field .timed_out) $(field .exit_code)" == "200 true 124"
}

# --workers 1 --queue 1: one running, one queued, the third is refused at once.
test_queue_full()
{
	local t0 t1 body p1 p2
	# The first runs long enough for the other two to arrive while it runs; the second is quick.
	body=$(exec_body "$SPIN_CODE" "$QUEUE_SPIN_MS")
	curl -s -o "$TMP/q1" -H "$AUTH" -d "$body" "$URL/v1/exec" &
	p1=$!
	wait_busy 1 0 || true
	curl -s -o "$TMP/q2" -H "$AUTH" -d "$(exec_body "$HAPPY_CODE")" "$URL/v1/exec" &
	p2=$!
	wait_busy 1 1 || true
	t0=$(date +%s%N)
	req POST /v1/exec "$body"
	t1=$(date +%s%N)
	check "queue full -> 503 at once ($(( (t1 - t0) / 1000000 )) ms, bound $FAST_MS ms)" \
		bash -c "[[ $CODE == 503 && $(( (t1 - t0) / 1000000 )) -lt $FAST_MS ]]"
	wait "$p1" "$p2"
	check "the running and the queued one both finished" \
		test "$(jq -r .timed_out "$TMP/q1") $(jq -r .stdout "$TMP/q2")" == "true 2"
}

test_batch()
{
	req POST /v1/exec/batch "$(jq -nc --arg a "$HAPPY_CODE" --arg b "$EXIT3_CODE" \
		'[{template:"t",code:$a},{template:"t",code:$b}]')"
	check "batch of two -> two results in order" \
		test "$CODE $(field 'length') $(field '.[0].stdout') $(field '.[1].exit_code')" == "200 2 2 3"
	req POST /v1/exec/batch "$(jq -nc '[range(9)|{template:"t",code:"1"}]')"
	check "a batch over --max-batch -> 400" expect 400
}

test_metrics_and_fds()
{
	local before after i
	curl -s -H "$AUTH" "$URL/v1/metrics" >"$TMP/metrics"
	check "metrics: outcome counters moved (ok, code_error, timeout, bad_request, unauthorized, busy)" bash -c "
		for o in ok code_error timeout bad_request unauthorized busy; do
			n=\$(sed -n \"s/^kforkd_requests_total{outcome=\\\"\$o\\\"} //p\" $TMP/metrics)
			[[ \${n:-0} -ge 1 ]] || { echo \"# \$o: \${n:-missing}\"; exit 1; }
		done"
	check "metrics: spawn and total histograms, live clones 0, queue empty" bash -c "
		grep -q '^kforkd_spawn_seconds_count [1-9]' $TMP/metrics &&
		grep -q '^kforkd_total_seconds_bucket{le=\"+Inf\"} [1-9]' $TMP/metrics &&
		grep -q '^kforkd_live_clones 0$' $TMP/metrics && grep -q '^kforkd_queue_depth 0$' $TMP/metrics"
	before=$(fd_count)
	for ((i = 0; i < 10; i++)); do req POST /v1/exec "$(exec_body "$HAPPY_CODE")"; done
	for ((i = 0; i < 20; i++)); do after=$(fd_count); [[ $after -le $before ]] && break; sleep 0.1; done
	check "fd count flat across 10 requests ($before -> $after)" test "$after" -le "$before"
	if [[ "${KFORK_KMOD:-absent}" == loaded:* ]]; then
		check "kfork.ko: no clone left between requests" kmod_clones_back_to 0
	else
		skip "kfork.ko: no clone left between requests" "kfork.ko not loaded (KFORK_KMOD=${KFORK_KMOD:-absent})"
	fi
	check "the daemon stayed up through all of it" alive
}

# SIGTERM while a request runs: it finishes within --grace-ms, kforkd exits 0.
test_sigterm_finish()
{
	local rc p
	curl -s -o "$TMP/slow" -H "$AUTH" -d "$(exec_body "$SLOW_CODE" "$SLOW_TIMEOUT")" "$URL/v1/exec" &
	p=$!
	wait_busy 1 0 || true
	kill -TERM "$DPID"
	wait "$DPID"
	rc=$?
	DPID=
	wait "$p"
	check "SIGTERM mid-request: kforkd exits 0" test "$rc" == 0
	if [[ $REVERSE == 1 ]]; then
		check "... and the request finished with its result" test "$(jq -r .stdout "$TMP/slow")" == slept
	else
		check "... and the request finished with its result" test "$(jq -r .timed_out "$TMP/slow")" == true
	fi
}

# SIGTERM with a request that outlasts --grace-ms: the client gets 503, no clone is left.
test_sigterm_cancel()
{
	local rc t0 t1 p
	start_daemon "$TMP/d2.log" --workers 1 --grace-ms 300 --token-file "$TMP/token" || {
		not_ok "second kforkd started"; return; }
	curl -s -o "$TMP/cancel" -w '%{http_code}' -H "$AUTH" -d "$(exec_body "$SPIN_CODE" "$CANCEL_SPIN_MS")" \
		"$URL/v1/exec" >"$TMP/cancel.code" &
	p=$!
	wait_busy 1 0 || true
	t0=$(date +%s%N)
	kill -TERM "$DPID"
	wait "$p"
	t1=$(date +%s%N)
	wait "$DPID"
	rc=$?
	DPID=
	check "past --grace-ms the request is cancelled: 503 after $(( (t1 - t0) / 1000000 )) ms, exit $rc" \
		bash -c "[[ $(cat "$TMP/cancel.code") == 503 && $rc == 0 && $(( (t1 - t0) / 1000000 )) -lt $((FAST_MS + 2000)) ]] &&
			jq -e '.error | test(\"shutting down\")' $TMP/cancel >/dev/null"
	if [[ "${KFORK_KMOD:-absent}" == loaded:* ]]; then
		check "kfork.ko: no clone left after kforkd exits" kmod_clones_back_to 0
	else
		skip "kfork.ko: no clone left after kforkd exits" "kfork.ko not loaded (KFORK_KMOD=${KFORK_KMOD:-absent})"
	fi
}

main()
{
	case "$MODE" in
	host) setup_host ;;
	lab) setup_lab ;;
	*) echo "usage: $0 host|lab" >&2; exit 2 ;;
	esac
	[[ -x $KFORKD ]] || bail_skip "$KFORKD not built (run make)"
	echo "1..$PLAN"
	printf 'tok-%s\n' "$RANDOM$RANDOM$RANDOM" >"$TMP/token"
	chmod 600 "$TMP/token"
	AUTH="Authorization: Bearer $(cat "$TMP/token")"
	refusals_at_start
	start_daemon "$TMP/d1.log" --workers 1 --queue 1 --max-body 65536 --max-batch 8 \
		--token-file "$TMP/token" --socket "$TMP/sock" ||
		{ echo "Bail out! kforkd did not start"; exit 1; }
	test_happy
	test_binary
	test_refusals
	test_timeout
	test_queue_full
	test_batch
	test_metrics_and_fds
	test_sigterm_finish
	test_sigterm_cancel
	[[ $N -eq $PLAN ]] || echo "# ran $N results for a plan of $PLAN"
	[[ $FAILED -eq 0 ]]
}

main
