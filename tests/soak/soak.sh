#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# soak.sh - inside the lab (make soak): SOAK_N cycles per phase of build/tests/soak/soak, user then kmod backend.
#
#   make soak SOAK_N=2000      boots the lab once and runs this; exit status 0 only if both passed
# Each backend's run prints its per-cycle times and the start/end counters with their bounds.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
n=${SOAK_N:-100000}
tmpl=/tmp/kfork-soak-minimal.tmpl
if [[ "${KFORK_LAB:-}" != 1 ]]; then
	echo "soak.sh: not in the lab (KFORK_LAB unset): run make soak" >&2
	exit 2
fi
build/kfork template build --kind minimal -o "$tmpl"
rc=0
for backend in user kmod; do
	if [[ $backend == kmod && ! -e /dev/kfork ]]; then
		echo "soak: kmod: FAIL: /dev/kfork missing (KFORK_KMOD=${KFORK_KMOD:-absent})"
		rc=1
		continue
	fi
	echo "# ======== soak, backend $backend, SOAK_N=$n"
	build/tests/soak/soak -t "$tmpl" -b "$backend" -n "$n" || rc=1
done
exit $rc
