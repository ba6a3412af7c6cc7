#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# build-debug-kernel.sh - build the lab's debug kernel (KASAN, lockdep, kmemleak) once, cache it, print its directory.
#
# Cache: ${KFORK_CACHE:-$HOME/.cache/kfork}/debug-kernel/<key>/ holding
#   vmlinux         booted by tests/lab/lab.sh with LAB_KERNEL=debug (PVH)
#   config          its .config
#   build/          the kbuild output directory, objects dropped: what an
#                   out-of-tree module builds against (make -C .../build M=...)
#   build-seconds   how long the build took
# key hashes debug-kernel.config, the source package's identity and RECIPE
# (bump it when this script changes how the kernel is built). The extracted
# source is shared with guest/build-kernel.sh (same src-<key> scheme), since
# build/ points into it. Concurrent builds of one key serialise on a flock;
# the result appears atomically (rename).
#
# Usage: build-debug-kernel.sh [-o LINK]   (LINK: also copy the vmlinux there)
set -eu

RECIPE=3
HERE=$(cd "$(dirname "$0")" && pwd)
FRAGMENT=$HERE/debug-kernel.config
KSRC_TAR=${KSRC_TAR:-/usr/src/linux-source-6.1.tar.xz}
ROOT=${KFORK_CACHE:-$HOME/.cache/kfork}
CACHE=$ROOT/debug-kernel
SRC_CACHE=$ROOT/guest-kernel
JOBS=${JOBS:-$(nproc)}	# every core the machine has
OUT_COPY=

while [ $# -gt 0 ]; do
	case $1 in
	-o) OUT_COPY=$2; shift 2 ;;
	*) echo "build-debug-kernel.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

[ -r "$KSRC_TAR" ] || {
	echo "build-debug-kernel.sh: $KSRC_TAR missing; apt-get install linux-source-6.1" >&2
	exit 1
}

src_id() {
	dpkg-query -W -f='${Package} ${Version}\n' linux-source-6.1 2>/dev/null || true
	stat -c '%n %s %Y' "$KSRC_TAR"
}

KEY=$( { echo "recipe $RECIPE"; src_id; cat "$FRAGMENT"; } | sha256sum | cut -c1-16)
SRC_KEY=$(src_id | sha256sum | cut -c1-16)
DEST=$CACHE/$KEY
mkdir -p "$CACHE" "$SRC_CACHE"

publish() {
	if [ -n "$OUT_COPY" ]; then
		mkdir -p "$(dirname "$OUT_COPY")"
		cp "$DEST/vmlinux" "$OUT_COPY.tmp.$$"
		mv -f "$OUT_COPY.tmp.$$" "$OUT_COPY"
	fi
	echo "$DEST"
}

if [ -f "$DEST/vmlinux" ]; then
	publish
	exit 0
fi

exec 9>"$CACHE/$KEY.lock"
flock 9
if [ -f "$DEST/vmlinux" ]; then
	publish
	exit 0
fi

# The same extracted tree and lock as guest/build-kernel.sh: one copy per tarball.
SRC=$SRC_CACHE/src-$SRC_KEY
(
	exec 8>"$SRC_CACHE/src-$SRC_KEY.lock"
	flock 8
	if [ ! -f "$SRC/.kfork-extracted" ]; then
		echo "build-debug-kernel.sh: extracting $KSRC_TAR" >&2
		rm -rf "$SRC" "$SRC.tmp"
		mkdir -p "$SRC.tmp"
		nice tar -xJf "$KSRC_TAR" -C "$SRC.tmp" --strip-components=1
		touch "$SRC.tmp/.kfork-extracted"
		mv "$SRC.tmp" "$SRC"
	fi
)

OBJ=$CACHE/obj-$KEY
rm -rf "$OBJ"
mkdir -p "$OBJ"
# A parent make's jobserver does not reach this script: without this the
# kernel's make falls back to -j1.
unset MAKEFLAGS MFLAGS MAKELEVEL
# The PVH entry (arch/x86/platform/pvh/head.S) calls xen_prepare_pvh() in
# enlighten.c before startup_64 has mapped KASAN's shadow, and 6.1 instruments
# that file: the first shadow check triple-faults, before any console output.
# Only that directory builds an enlighten.o in this config. It reaches memcmp()
# (xen_cpuid_base -> hypervisor_cpuid_base), and lib/string.c is instrumented
# too: recipe 2 faulted there (QEMU -d int: #PF at memcmp, CR2 a shadow
# address), so string.o is left uninstrumented as well.
KMAKE="make -C $SRC O=$OBJ ARCH=x86_64 KASAN_SANITIZE_enlighten.o=n KASAN_SANITIZE_string.o=n"

start=$(date +%s)
$KMAKE -s allnoconfig
"$SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "$FRAGMENT" >"$OBJ/merge.log" 2>&1 || {
	cat "$OBJ/merge.log" >&2
	exit 1
}
$KMAKE -s olddefconfig

# Every setting in the fragment must have survived dependency resolution.
grep -E '^(CONFIG_[A-Za-z0-9_]+=|# CONFIG_[A-Za-z0-9_]+ is not set)' "$FRAGMENT" |
while IFS= read -r want; do
	case $want in
	"# CONFIG_"*)
		opt=${want#\# }; opt=${opt%% *}
		if grep -q "^$opt=" "$OBJ/.config"; then
			echo "build-debug-kernel.sh: $opt wanted off, got: $(grep "^$opt=" "$OBJ/.config")" >&2
			echo x
		fi ;;
	*)
		if ! grep -qxF "$want" "$OBJ/.config"; then
			opt=${want%%=*}
			echo "build-debug-kernel.sh: $want requested, final .config has: $(grep -E "^(# )?$opt[= ]" "$OBJ/.config" || echo nothing)" >&2
			echo x
		fi ;;
	esac
done >"$OBJ/missing"
missing=$(wc -l <"$OBJ/missing")
if [ "$missing" -ne 0 ]; then
	echo "build-debug-kernel.sh: $missing required option(s) dropped; fix debug-kernel.config dependencies" >&2
	exit 1
fi

echo "build-debug-kernel.sh: building the debug vmlinux in $OBJ (-j$JOBS; measured: 722 s on 2 cores, 15 CPU-min)" >&2
# modules: nothing is =m, but it writes Module.symvers, which kfork.ko links against.
nice $KMAKE -s -j"$JOBS" vmlinux modules >"$OBJ/build.log" 2>&1 || {
	tail -n 40 "$OBJ/build.log" >&2
	echo "build-debug-kernel.sh: kernel build failed, full log: $OBJ/build.log" >&2
	exit 1
}
end=$(date +%s)

rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp"
mv "$OBJ/vmlinux" "$DEST.tmp/vmlinux"
cp "$OBJ/.config" "$DEST.tmp/config"
echo "$((end - start))" >"$DEST.tmp/build-seconds"
# An external module needs .config, Module.symvers, include/, arch/x86/include/generated,
# scripts/ and tools/objtool from the build, not the kernel's own objects.
find "$OBJ" \( -path "$OBJ/scripts" -o -path "$OBJ/tools" \) -prune -o \
	-type f \( -name '*.o' -o -name '*.a' -o -name '.*.cmd' -o -name '*.mod.c' \) -print0 |
	xargs -0 rm -f
rm -f "$OBJ"/vmlinux.o "$OBJ"/.tmp_vmlinux* "$OBJ"/System.map.tmp 2>/dev/null || true
mv "$OBJ" "$DEST.tmp/build"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "build-debug-kernel.sh: built in $((end - start)) s" >&2
publish
