#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# klog-scan.sh - finds the kernel's error reports (KASAN, lockdep, kmemleak, WARN, BUG, oops, panic) in logs.
#
#   tests/lab/klog-scan.sh [-p PREFIX] FILE...   (FILE: dmesg output, a console log,
#                                                 /sys/kernel/debug/kmemleak)
# Prints one line per report, PREFIX (default "kernel: ") and a name that says
# what and where, e.g.
#   kernel: KASAN: slab-out-of-bounds in kfork_clone_create [kfork]
#   kernel: lockdep: possible circular locking dependency detected (kfork_spawn/123)
#   kernel: WARNING at kmod/clone.c:45 kfork_clone_create [kfork]
#   kernel: kmemleak: unreferenced object (size 64) from kfork_template_add [kfork]
# A panic is named only when nothing before it was (panic_on_warn makes every
# WARN and KASAN report end in one). Exit status: 0 no report, 1 reports, 2 usage.
set -euo pipefail

prefix="kernel: "
if [[ "${1:-}" == -p ]]; then
	[[ $# -ge 2 ]] || { echo "usage: $0 [-p PREFIX] FILE..." >&2; exit 2; }
	prefix=$2
	shift 2
fi
[[ $# -ge 1 ]] || { echo "usage: $0 [-p PREFIX] FILE..." >&2; exit 2; }

# One awk over all files; the state (a pending kmemleak object, the panic rule)
# is per file.
LC_ALL=C awk -v prefix="$prefix" '
function clean(s) {
	sub(/\r$/, "", s)
	sub(/^<[0-9]+>/, "", s)				# syslog level
	sub(/^\[ *[0-9]+\.[0-9]+\]( \[ *[TC][0-9]+\])? ?/, "", s)	# printk time, caller id
	return s
}
# "func+0x1a/0x40 [mod]" -> "func [mod]"; the parts and clones GCC splits off
# ("func.cold", "func.isra.0", "func.constprop.0") are named after func.
function sym(s) {
	gsub(/\+0x[0-9a-f]+\/0x[0-9a-f]+/, "", s)
	gsub(/\.(cold|isra|part|constprop)(\.[0-9]+)?/, "", s)
	sub(/^[ \t]+/, "", s)
	sub(/[ \t]+$/, "", s)
	return s
}
function report(name) {
	print prefix name
	found++
	file_found++
	last_nr = FNR
}
# kmemleak: the object is named after the first frame of its backtrace that is
# in a module, or else the first that is not the allocator itself.
function leak_flush(    name) {
	if (!leak_size)
		return
	name = "kmemleak: unreferenced object (size " leak_size ")"
	if (leak_mod != "")
		name = name " from " leak_mod
	else if (leak_other != "")
		name = name " from " leak_other
	report(name)
	leak_size = ""
	leak_mod = ""
	leak_other = ""
	in_bt = 0
}
function lockdep_flush(where) {
	if (lockdep == "")
		return
	report(lockdep where)
	lockdep = ""
}
function allocator(f) {
	return f ~ /^(__)?(kmalloc|kzalloc|kvmalloc|kvzalloc|kmem_cache_|kmemleak|slab_|__slab|kasan|__do_kmalloc|krealloc|kmalloc_|__kmalloc|alloc_pages|__alloc_pages|__get_free_pages|kmemdup|kstrdup|memdup|vmalloc|__vmalloc|vzalloc|kvmalloc_node|kmalloc_trace|alloc_slab|new_slab|allocate_slab|___slab_alloc|__slab_alloc|kmem_cache_alloc)/
}
FNR == 1 {
	leak_flush()
	lockdep_flush("")
	file_found = 0
	last_nr = -100
}
{
	line = clean($0)
}
# ---- kmemleak (/sys/kernel/debug/kmemleak) ----
line ~ /^unreferenced object 0x[0-9a-f]+ \(size [0-9]+\):/ {
	leak_flush()
	leak_size = line
	sub(/^[^(]*\(size /, "", leak_size)
	sub(/\).*/, "", leak_size)
	next
}
leak_size != "" && line ~ /^ +backtrace:/ {
	in_bt = 1
	next
}
leak_size != "" && in_bt && line ~ /^ +\[<[0-9a-f]+>\] / {
	f = line
	sub(/^ +\[<[0-9a-f]+>\] /, "", f)
	f = sym(f)
	if (leak_mod == "" && f ~ / \[[A-Za-z0-9_]+\]$/)
		leak_mod = f
	if (leak_other == "" && !allocator(f))
		leak_other = f
	next
}
# comm, hex dump and its rows: all lines of an object are indented
leak_size != "" && line ~ /^ / {
	next
}
leak_size != "" {
	leak_flush()
}
# ---- KASAN ----
line ~ /BUG: KASAN: / {
	s = line
	sub(/.*BUG: KASAN: /, "", s)
	report("KASAN: " sym(s))
	next
}
# ---- WARN(): "WARNING: CPU: 0 PID: 1 at file:line func+0x../0x.. [mod]" ----
line ~ /^WARNING: CPU: [0-9]+ PID: [0-9]+ at / {
	s = line
	sub(/^WARNING: CPU: [0-9]+ PID: [0-9]+ at /, "", s)
	report("WARNING at " sym(s))
	next
}
# ---- lockdep, RCU lockdep: "WARNING: <what>" then a line naming the task ----
# lockdep, RCU lockdep: "WARNING: <what>", then the task and the lock "at: <func>".
# The report is held back until that line (or 12 lines) to name the place.
lockdep != "" && line ~ / at: [A-Za-z_]/ {
	s = line
	sub(/.* at: /, "", s)
	lockdep_flush(" at " sym(s))
	next
}
lockdep != "" && FNR - lockdep_nr > 12 {
	lockdep_flush("")
}
line ~ /^WARNING: / && line ~ /lock|RCU|irq/ {
	lockdep_flush("")
	s = line
	sub(/^WARNING: /, "", s)
	sub(/!$/, "", s)
	lockdep = "lockdep: " s
	lockdep_nr = FNR
	next
}
line ~ /^(BUG|INFO): (MAX_LOCKDEP|MAX_STACK_TRACE|looking up invalid subclass|trying to register non-static key|held lock freed)/ {
	s = line
	sub(/^(BUG|INFO): /, "", s)
	report("lockdep: " s)
	next
}
line ~ /^DEBUG_LOCKS_WARN_ON\(/ {
	report("lockdep: " line)
	next
}
# ---- BUG()s, oopses and the like ----
line ~ /^kernel BUG at / {
	s = line
	sub(/!$/, "", s)
	report(s)
	next
}
line ~ /^(watchdog: )?BUG: / {
	s = line
	sub(/^watchdog: /, "", s)
	# addresses and times differ from run to run: cut them off the name
	sub(/, address: .*/, "", s)
	sub(/ for address: .*/, "", s)
	sub(/ stuck for [0-9]+s.*/, " stuck", s)
	report(s)
	next
}
# An oops line right after a BUG: line names the same report.
line ~ /^(general protection fault|stack segment|Oops: |invalid opcode: )/ && FNR - last_nr > 10 {
	s = line
	sub(/[,:] .*/, "", s)
	report(s)
	next
}
line ~ /^UBSAN: / {
	report(sym(line))
	next
}
line ~ /^INFO: task .* blocked for more than [0-9]+ seconds/ {
	s = line
	sub(/ blocked for more than.*/, " blocked (hung task)", s)
	sub(/^INFO: /, "", s)
	report(s)
	next
}
line ~ /rcu: INFO: rcu_[a-z]+ (self-)?detected stall/ {
	report("RCU stall")
	next
}
line ~ /Kernel panic - not syncing: / {
	if (!file_found) {
		s = line
		sub(/.*Kernel panic - not syncing: /, "", s)
		report("panic: " s)
	}
	next
}
END {
	leak_flush()
	lockdep_flush("")
	exit found ? 1 : 0
}
' "$@"
