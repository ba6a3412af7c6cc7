#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# deps.sh - installs the Debian packages kfork builds and tests with, if any is missing.
#
# Called by `make demo`, `make check` and .ci/run; cheap when all are present.
set -euo pipefail

PACKAGES=(
	build-essential linux-headers-amd64 qemu-system-x86 busybox-static
	libbpf-dev bpftool clang llvm libnl-3-dev libnl-genl-3-dev linux-source-6.1
	bc flex bison libelf-dev libssl-dev cpio xz-utils dwarves
	python3 python3.11 kmod dkms zlib1g-dev gnuplot-nox systemtap-sdt-dev strace jq
	libjansson-dev pkgconf clang-14 libclang-rt-14-dev libseccomp-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[[ ${#missing[@]} -gt 0 ]] || exit 0

cmd=(apt-get install -y -q --no-install-recommends "${missing[@]}")
if [[ $EUID -ne 0 ]]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: run as root, or install them: sudo ${cmd[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || { echo "deps: apt-get update failed: check the network and /etc/apt/sources.list" >&2; exit 1; }
"${cmd[@]}" || { echo "deps: apt-get install failed (see above)" >&2; exit 1; }
