#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# build-kernel.sh - build the guest vmlinux once, cache it outside the tree, print its path.
#
# Cache: ${KFORK_CACHE:-$HOME/.cache/kfork}/guest-kernel/<key>/vmlinux, where key
# hashes kernel.config, the source package's identity and RECIPE (bump it when
# this script changes how the kernel is built). Concurrent builds of the same
# key serialise on a flock; the result appears atomically (rename).
#
# Usage: build-kernel.sh [-o LINK]   (LINK: also copy the vmlinux there)
set -eu

RECIPE=1
HERE=$(cd "$(dirname "$0")" && pwd)
FRAGMENT=$HERE/kernel.config
KSRC_TAR=${KSRC_TAR:-/usr/src/linux-source-6.1.tar.xz}
CACHE=${KFORK_CACHE:-$HOME/.cache/kfork}/guest-kernel
JOBS=${JOBS:-$(nproc)}	# every core the machine has
OUT_COPY=

while [ $# -gt 0 ]; do
	case $1 in
	-o) OUT_COPY=$2; shift 2 ;;
	*) echo "build-kernel.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

[ -r "$KSRC_TAR" ] || {
	echo "build-kernel.sh: $KSRC_TAR missing; apt-get install linux-source-6.1" >&2
	exit 1
}

src_id() {
	dpkg-query -W -f='${Package} ${Version}\n' linux-source-6.1 2>/dev/null || true
	stat -c '%n %s %Y' "$KSRC_TAR"
}

KEY=$( { echo "recipe $RECIPE"; src_id; cat "$FRAGMENT"; } | sha256sum | cut -c1-16)
SRC_KEY=$(src_id | sha256sum | cut -c1-16)
DEST=$CACHE/$KEY
mkdir -p "$CACHE"

publish() {
	if [ -n "$OUT_COPY" ]; then
		mkdir -p "$(dirname "$OUT_COPY")"
		cp "$DEST/vmlinux" "$OUT_COPY.tmp.$$"
		mv -f "$OUT_COPY.tmp.$$" "$OUT_COPY"
	fi
	echo "$DEST/vmlinux"
}

if [ -f "$DEST/vmlinux" ]; then
	publish
	exit 0
fi

exec 9>"$CACHE/$KEY.lock"
flock 9
# Someone else may have finished while we waited for the lock.
if [ -f "$DEST/vmlinux" ]; then
	publish
	exit 0
fi

# One extracted source tree per tarball identity, shared by all keys; builds
# are out of tree (O=) so they never write into it.
SRC=$CACHE/src-$SRC_KEY
(
	exec 8>"$CACHE/src-$SRC_KEY.lock"
	flock 8
	if [ ! -f "$SRC/.kfork-extracted" ]; then
		echo "build-kernel.sh: extracting $KSRC_TAR" >&2
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
# kernel's make falls back to -j1 ("jobserver unavailable") and takes twice as long.
unset MAKEFLAGS MFLAGS MAKELEVEL
KMAKE="make -C $SRC O=$OBJ ARCH=x86_64"

start=$(date +%s)
$KMAKE -s tinyconfig
"$SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "$FRAGMENT" >"$OBJ/merge.log" 2>&1 || {
	cat "$OBJ/merge.log" >&2
	exit 1
}
$KMAKE -s olddefconfig

# Every setting in the fragment must have survived dependency resolution.
missing=0
grep -E '^(CONFIG_[A-Za-z0-9_]+=|# CONFIG_[A-Za-z0-9_]+ is not set)' "$FRAGMENT" |
while IFS= read -r want; do
	case $want in
	"# CONFIG_"*)
		opt=${want#\# }; opt=${opt%% *}
		# "not set" holds if the option is absent or explicitly unset.
		if grep -q "^$opt=" "$OBJ/.config"; then
			echo "build-kernel.sh: $opt wanted off, got: $(grep "^$opt=" "$OBJ/.config")" >&2
			echo x
		fi ;;
	*)
		if ! grep -qxF "$want" "$OBJ/.config"; then
			opt=${want%%=*}
			echo "build-kernel.sh: $want requested, final .config has: $(grep -E "^(# )?$opt[= ]" "$OBJ/.config" || echo nothing)" >&2
			echo x
		fi ;;
	esac
done >"$OBJ/missing"
missing=$(wc -l <"$OBJ/missing")
if [ "$missing" -ne 0 ]; then
	echo "build-kernel.sh: $missing required option(s) dropped; fix kernel.config dependencies" >&2
	exit 1
fi

echo "build-kernel.sh: building vmlinux in $OBJ (-j$JOBS, ~8 min on 2 cores)" >&2
nice $KMAKE -s -j"$JOBS" vmlinux >"$OBJ/build.log" 2>&1 || {
	tail -n 40 "$OBJ/build.log" >&2
	echo "build-kernel.sh: kernel build failed, full log: $OBJ/build.log" >&2
	exit 1
}
end=$(date +%s)

rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp"
cp "$OBJ/vmlinux" "$OBJ/.config" "$DEST.tmp/"
echo "$((end - start))" >"$DEST.tmp/build-seconds"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
rm -rf "$OBJ"
echo "build-kernel.sh: built in $((end - start)) s" >&2
publish
