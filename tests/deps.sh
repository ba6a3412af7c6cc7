#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# deps.sh - installs the Debian packages kfork builds and tests with, if any is missing.
#
# Called by `make demo`, `make check` and .ci/run; cheap when all are present.
# Then, as root, the second kernel kfork.ko is built and tested for: Debian
# 13's 6.12 from bookworm-backports (its headers; tests/lab/lab-prepare.sh
# fetches the image itself). That adds bookworm-backports as an apt source
# (backports are never picked over bookworm's own packages unless named).
# Not root, or KFORK_KERNEL_612=0: skipped, and make check says so.
set -euo pipefail

PACKAGES=(
	build-essential linux-headers-amd64 qemu-system-x86 busybox-static
	libbpf-dev bpftool clang llvm libnl-3-dev libnl-genl-3-dev linux-source-6.1
	bc flex bison libelf-dev libssl-dev cpio xz-utils dwarves
	python3 python3.11 kmod dkms zlib1g-dev gnuplot-nox systemtap-sdt-dev strace jq
	libjansson-dev pkgconf clang-14 libclang-rt-14-dev libseccomp-dev zstd
	libmicrohttpd-dev curl iproute2
)

BACKPORTS=/etc/apt/sources.list.d/kfork-bookworm-backports.sources

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

cmd=(apt-get install -y -q --no-install-recommends "${missing[@]}")
if [[ ${#missing[@]} -gt 0 && $EUID -ne 0 ]]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: run as root, or install them: sudo ${cmd[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
updated=0
if [[ ${#missing[@]} -gt 0 ]]; then
	echo "deps: installing ${missing[*]}"
	apt-get update -q || { echo "deps: apt-get update failed: check the network and /etc/apt/sources.list" >&2; exit 1; }
	updated=1
	"${cmd[@]}" || { echo "deps: apt-get install failed (see above)" >&2; exit 1; }
fi

# ---- 6.12 from bookworm-backports: headers for build/kmod-<release>/kfork.ko
[[ "${KFORK_KERNEL_612:-1}" != 0 && $EUID -eq 0 ]] || exit 0
if [[ ! -f $BACKPORTS ]]; then
	echo "deps: adding bookworm-backports as an apt source ($BACKPORTS)"
	printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
		'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$BACKPORTS"
	updated=0
fi
# The release linux-headers-amd64 names in backports, e.g. linux-headers-6.12.95+deb12-amd64.
bpo_headers()
{
	apt-cache depends -t bookworm-backports linux-headers-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-headers-6\.12[^ ]*-amd64\)$/\1/p' | head -n 1
}
pkg=$(bpo_headers)
if [[ -z "$pkg" && $updated -eq 0 ]]; then
	apt-get update -q || { echo "deps: apt-get update failed (bookworm-backports)" >&2; exit 1; }
	pkg=$(bpo_headers)
fi
[[ -n "$pkg" ]] || { echo "deps: bookworm-backports has no 6.12 linux-headers-amd64" >&2; exit 1; }
dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' && exit 0
echo "deps: installing $pkg (bookworm-backports)"
# By name, without -t: its own dependencies come from backports, nothing else does.
apt-get install -y -q --no-install-recommends "$pkg" ||
	{ echo "deps: apt-get install $pkg failed (see above)" >&2; exit 1; }
