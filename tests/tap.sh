# SPDX-License-Identifier: GPL-2.0-only
# tap.sh - runs kselftest binaries, shows their output, counts TAP results per test case (sourced).
#
# Counting rules, so nothing that did not run is counted as passed:
#   ok N ...                     passed        (ok N # XFAIL: passed, as kselftest means it)
#   ok N ... # SKIP reason       skipped       1..0 # SKIP reason with no results: 1 skipped
#   not ok N name                failed        not ok N ... # TODO: skipped
#   Bail out!                    1 failed
#   planned results that never came (crash, timeout): each one failed
#   no plan and no results: 1 failed; exit status other than 0 or 4 (KSFT_SKIP)
#   with no failure reported: 1 failed, named after the binary
# KFORK_TEST_TIMEOUT (default 1200 s) bounds one binary.

TAP_PASSED=0
TAP_FAILED=0
TAP_SKIPPED=0
TAP_FAILURES=()
TAP_SKIPS=()

# Counts one failure that no TAP line reported, and says so in the log.
tap_fail()
{
	TAP_FAILED=$((TAP_FAILED + 1))
	TAP_FAILURES+=("$1")
	echo "# FAIL: $1"
}

tap_is_test_binary()
{
	local bin=$1

	[[ -f "$bin" && -x "$bin" && "$(basename "$bin")" != *.* ]]
}

# tap_parse NAME LOG RC: adds LOG's results to the totals.
tap_parse()
{
	local name=$1 log=$2 rc=$3 line desc case_name=
	local plan= plan_skip= pass=0 fail=0 skip=0 results

	while IFS= read -r line || [[ -n "$line" ]]; do
		line=${line%$'\r'}
		if [[ "$line" =~ ^#[[:space:]]+RUN[[:space:]]+(.*)[[:space:]]\.\.\.$ ]]; then
			case_name=${BASH_REMATCH[1]}
		elif [[ "$line" =~ ^1\.\.([0-9]+)(.*)$ ]]; then
			plan=${BASH_REMATCH[1]}
			[[ ! "${BASH_REMATCH[2]}" =~ \#[[:space:]]*[Ss][Kk][Ii][Pp][[:space:]]*(.*) ]] ||
				plan_skip=${BASH_REMATCH[1]:-no reason given}
		elif [[ "$line" =~ ^not\ ok\ [0-9]+[[:space:]]*(.*)$ ]]; then
			desc=${BASH_REMATCH[1]}
			if [[ "$desc" =~ \#[[:space:]]*[Tt][Oo][Dd][Oo] ]]; then
				skip=$((skip + 1))
				TAP_SKIPS+=("$name: ${desc:-$case_name}")
			else
				fail=$((fail + 1))
				TAP_FAILURES+=("$name: ${desc:-$case_name}")
			fi
		elif [[ "$line" =~ ^ok\ [0-9]+[[:space:]]*(.*)$ ]]; then
			desc=${BASH_REMATCH[1]}
			if [[ "$desc" =~ ^(.*)\#[[:space:]]*[Ss][Kk][Ii][Pp][[:space:]]*(.*)$ ]]; then
				skip=$((skip + 1))
				desc=${BASH_REMATCH[1]%"${BASH_REMATCH[1]##*[![:space:]]}"}
				TAP_SKIPS+=("$name: ${desc:-$case_name} (${BASH_REMATCH[2]:-no reason given})")
			else
				pass=$((pass + 1))
			fi
		elif [[ "$line" =~ ^Bail\ out! ]]; then
			fail=$((fail + 1))
			TAP_FAILURES+=("$name: ${line}")
		fi
	done <"$log"

	TAP_PASSED=$((TAP_PASSED + pass))
	TAP_FAILED=$((TAP_FAILED + fail))
	TAP_SKIPPED=$((TAP_SKIPPED + skip))
	results=$((pass + fail + skip))

	if [[ -n "$plan_skip" && $results -eq 0 ]]; then
		TAP_SKIPPED=$((TAP_SKIPPED + 1))
		TAP_SKIPS+=("$name ($plan_skip)")
		skip=1
	elif [[ -z "$plan" && $results -eq 0 ]]; then
		tap_fail "$name: no TAP plan or results (exit status $rc)"
		return
	elif [[ -n "$plan" && $results -lt $plan ]]; then
		TAP_FAILED=$((TAP_FAILED + plan - results))
		fail=$((fail + plan - results))
		TAP_FAILURES+=("$name: $((plan - results)) of $plan planned results never came (exit status $rc)")
		echo "# FAIL: $name: $((plan - results)) of $plan planned results never came (exit status $rc)"
	elif [[ -n "$plan" && $results -gt $plan ]]; then
		tap_fail "$name: $results results for a plan of $plan"
	fi
	if [[ $rc -ne 0 && $rc -ne 4 && $fail -eq 0 ]]; then
		tap_fail "$name: exit status $rc although no test case failed"
	fi
	echo "# $name: $pass passed, $fail failed, $skip skipped"
}

# tap_run_binary BIN NAME: runs BIN from the current directory, output shown as it comes.
tap_run_binary()
{
	local bin=$1 name=$2 log rc timeout=${KFORK_TEST_TIMEOUT:-1200}

	log=$(mktemp "${TMPDIR:-/tmp}/kfork-tap.XXXXXX")
	echo "# ==== $name"
	set +e
	timeout -k 10 "$timeout" stdbuf -oL -eL "$bin" </dev/null 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
	[[ $rc -ne 124 && $rc -ne 137 ]] || echo "# $name: killed after $timeout s (KFORK_TEST_TIMEOUT)"
	tap_parse "$name" "$log" "$rc"
	rm -f "$log"
}

# tap_run_dir DIR: runs every test binary in DIR (executable, no dot in its name),
# saving the totals so far to TAP_COUNTS_FILE, if set, after each one.
tap_run_dir()
{
	local dir=$1 bin found=0

	for bin in "$dir"/*; do
		tap_is_test_binary "$bin" || continue
		found=1
		tap_run_binary "$bin" "$bin"
		[[ -z "${TAP_COUNTS_FILE:-}" ]] || tap_write_counts "$TAP_COUNTS_FILE"
	done
	[[ $found -eq 1 ]] || echo "# no test binaries in $dir"
}

# tap_write_counts FILE [complete]: saves the totals (atomically) for tap_read_counts.
tap_write_counts()
{
	local out=$1 complete=${2:-} item

	{
		[[ -z "$complete" ]] || echo "complete"
		echo "passed $TAP_PASSED"
		echo "failed $TAP_FAILED"
		echo "skipped $TAP_SKIPPED"
		for item in "${TAP_FAILURES[@]}"; do echo "failure $item"; done
		for item in "${TAP_SKIPS[@]}"; do echo "skip $item"; done
	} >"$out.tmp"
	# In the lab the tree is 9p with cache=loose: push the data out now, so a
	# lab killed later (timeout) still leaves these counts on the host.
	sync "$out.tmp" 2>/dev/null || true
	mv -f "$out.tmp" "$out"
}

# tap_read_counts FILE [PREFIX]: adds FILE's totals, PREFIX before each failure's and
# skip's name; TAP_COMPLETE=1 if its writer got to the end.
tap_read_counts()
{
	local file=$1 prefix=${2:-} key value

	TAP_COMPLETE=0
	while IFS=' ' read -r key value; do
		case "$key" in
		complete) TAP_COMPLETE=1 ;;
		passed) TAP_PASSED=$((TAP_PASSED + value)) ;;
		failed) TAP_FAILED=$((TAP_FAILED + value)) ;;
		skipped) TAP_SKIPPED=$((TAP_SKIPPED + value)) ;;
		failure) TAP_FAILURES+=("$prefix$value") ;;
		skip) TAP_SKIPS+=("$prefix$value") ;;
		esac
	done <"$file"
}

tap_print_summary()
{
	local item

	for item in "${TAP_SKIPS[@]}"; do echo "SKIP: $item"; done
	for item in "${TAP_FAILURES[@]}"; do echo "FAIL: $item"; done
	echo "$TAP_PASSED passed, $TAP_FAILED failed, $TAP_SKIPPED skipped"
}
