#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# mkinitramfs.sh - build the guest initramfs (cpio newc, gzip) for one template kind.
#
# Usage: mkinitramfs.sh --kind minimal|python -o OUT.cpio.gz [--agent PATH]
#
#   /init                   kfork-agent (static)
#   /bin/busybox + applets  /bin/sh and the usual tools, all busybox-static
#   /etc/kfork-kind         the kind, read by the agent
#   python only: /usr/bin/python3 (Debian's 3.11), its shared libraries and
#   loader, /usr/lib/python3.11 (with __pycache__) minus what no sandbox exec
#   needs, /usr/lib/kfork/kfork_zygote.py.
#
# Reproducible: fixed mtimes, uid/gid 0, sorted file list, gzip -n, so the
# output changes only when an input does.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
KIND=
OUT=
AGENT=build/kfork-agent
BUSYBOX=${BUSYBOX:-/bin/busybox}
PYTHON=${PYTHON:-/usr/bin/python3.11}
PYLIB=/usr/lib/python3.11
ZYGOTE=$HERE/python/kfork_zygote.py

die() {
	echo "mkinitramfs.sh: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--kind) KIND=$2; shift 2 ;;
	-o) OUT=$2; shift 2 ;;
	--agent) AGENT=$2; shift 2 ;;
	*) die "unknown argument '$1' (usage: --kind minimal|python -o OUT [--agent PATH])" ;;
	esac
done
case $KIND in
minimal|python) ;;
*) die "--kind must be minimal or python, got '$KIND'" ;;
esac
[ -n "$OUT" ] || die "missing -o OUT.cpio.gz"
[ -x "$AGENT" ] || die "agent $AGENT missing: run make build/kfork-agent"
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install busybox-static"

umask 022
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/kfork-initramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

mkdir -p "$STAGE/bin" "$STAGE/sbin" "$STAGE/usr/bin" "$STAGE/usr/sbin" \
	"$STAGE/etc" "$STAGE/dev" "$STAGE/proc" "$STAGE/sys" "$STAGE/tmp" "$STAGE/root"
chmod 1777 "$STAGE/tmp"
cp "$AGENT" "$STAGE/init"
cp "$BUSYBOX" "$STAGE/bin/busybox"
"$BUSYBOX" --list-full | while read -r applet; do
	case $applet in
	bin/busybox|"") continue ;;
	esac
	mkdir -p "$STAGE/$(dirname "$applet")"
	[ -e "$STAGE/$applet" ] || ln -s /bin/busybox "$STAGE/$applet"
done
printf '%s\n' "$KIND" >"$STAGE/etc/kfork-kind"
# The kernel opens /dev/console for init before devtmpfs is mounted.
if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$STAGE/dev/console" c 5 1
	mknod -m 666 "$STAGE/dev/null" c 1 3
else
	echo "mkinitramfs.sh: not root, no /dev/console node (kernel warns, agent still works)" >&2
fi

# Copy a file and the shared objects it needs to the same paths in STAGE.
copy_with_libs() {
	mkdir -p "$STAGE/$(dirname "$2")"
	cp -L "$1" "$STAGE/$2"
	ldd "$1" 2>/dev/null | awk '/=> \//{ print $3 } /^[ \t]*\//{ print $1 }' |
	while read -r lib; do
		[ -e "$STAGE/$lib" ] && continue
		mkdir -p "$STAGE/$(dirname "$lib")"
		cp -L "$lib" "$STAGE/$lib"
	done
}

if [ "$KIND" = python ]; then
	[ -x "$PYTHON" ] || die "$PYTHON missing: apt-get install python3.11"
	[ -d "$PYLIB" ] || die "$PYLIB missing"
	copy_with_libs "$PYTHON" /usr/bin/python3.11
	ln -s python3.11 "$STAGE/usr/bin/python3"
	# Stdlib minus the test suite, GUI, packaging and build support.
	mkdir -p "$STAGE$PYLIB"
	(cd "$PYLIB" && find . \
		\( -path ./test -o -path ./idlelib -o -path ./tkinter -o -path ./turtledemo \
		-o -path ./ensurepip -o -path ./lib2to3 -o -path ./pydoc_data -o -path ./venv \
		-o -path ./distutils -o -path ./__phello__ -o -path './config-*' \
		-o -path ./unittest/test -o -path ./ctypes/test -o -path ./sqlite3/test \
		-o -path ./tkinter -o -name 'turtle.py' -o -name '*.opt-1.pyc' \
		-o -name '*.opt-2.pyc' -o -name 'turtle.*.pyc' -o -name 'EXTERNALLY-MANAGED' \
		\) -prune -o -path ./lib-dynload -prune -o -print |
		cpio -pdm --quiet "$STAGE$PYLIB")
	# Extension modules: drop tests, terminal UIs, TLS and the ones whose
	# libraries are large; hashlib falls back to its builtin hashes.
	for so in "$PYLIB"/lib-dynload/*.so; do
		case ${so##*/} in
		_test*|_xx*|xxlimited*|_ctypes_test*|_curses*|readline*|nis*|\
		ossaudiodev*|_dbm*|_ssl*|_hashlib*|audioop*) continue ;;
		esac
		copy_with_libs "$so" "$PYLIB/lib-dynload/${so##*/}"
	done
	mkdir -p "$STAGE/usr/lib/kfork"
	cp "$ZYGOTE" "$STAGE/usr/lib/kfork/kfork_zygote.py"
fi

mkdir -p "$(dirname "$OUT")"
find "$STAGE" -exec touch -h -d @0 {} +
(cd "$STAGE" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --reproducible -R 0:0 --quiet) | gzip -n -9 >"$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
echo "mkinitramfs.sh: $OUT ($KIND): $(du -sk "$STAGE" | cut -f1) KiB unpacked, $(($(stat -c %s "$OUT") / 1024)) KiB gzip" >&2
