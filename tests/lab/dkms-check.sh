#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# dkms-check.sh - in the lab: dkms install of the DKMS build make made (build/dkms), then modprobe kfork.
#
# `make` ran dkms add and build into build/dkms (kmod/kmod.mk) against the same
# headers: kbuild under the lab's TCG takes ~8 minutes. Run in a mount namespace of
# its own (dkms_test does: unshare -m): /lib/modules is tmpfs there, since the lab's
# root is the host's, read-only.
# Leaves the module it found loaded (KFORK_KMOD=loaded:PATH) loaded again at the end.
# Exit status 0 when modprobe loaded the DKMS-built kfork.ko and /dev/kfork answered.
set -euo pipefail

kver=$(uname -r)
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' kmod/dkms.conf)
orig=${KFORK_KMOD#loaded:}
# A copy: dkms install marks its tree installed, and build/dkms must stay as make left it.
tree=$(mktemp -d /tmp/kfork-dkms.XXXXXX)
cp -a build/dkms/. "$tree/"
build=$(readlink -f "/lib/modules/$kver/build")
source=$(readlink -f "/lib/modules/$kver/source" || true)

step() { echo "# dkms-check: $*"; }

# On any exit, the tree's module is loaded again for the tests that follow.
restore()
{
	[[ -d /sys/module/kfork ]] || insmod "$orig" || echo "dkms-check: insmod $orig failed" >&2
}
trap restore EXIT

mount -t tmpfs kfork-dkms /lib/modules
mkdir -p "/lib/modules/$kver"
ln -s "$build" "/lib/modules/$kver/build"
[[ -z "$source" ]] || ln -s "$source" "/lib/modules/$kver/source"
opts=(-m kfork -v "$ver" -k "$kver" --sourcetree "$PWD/build/dkms-src" --dkmstree "$tree")

step "dkms install kfork $ver for $kver"
dkms status "${opts[@]}" | grep -q ": built" ||
	{ echo "build/dkms holds no DKMS build of kfork $ver for $kver: run make" >&2; exit 1; }
dkms install "${opts[@]}"
dkms status "${opts[@]}"

step "modprobe kfork (replacing $orig)"
rmmod kfork
modprobe kfork
loaded=$(cat /sys/module/kfork/version)
modinfo -n kfork
[[ "$loaded" == "$ver" ]] || { echo "loaded kfork is $loaded, DKMS built $ver" >&2; exit 1; }
[[ -c /dev/kfork ]] || { echo "/dev/kfork missing after modprobe" >&2; exit 1; }
build/kfork stats | sed -n 1p	# reads it all: head would SIGPIPE kfork under pipefail

step "back to $orig"
rmmod kfork
restore
step "ok"
