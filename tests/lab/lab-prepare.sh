# SPDX-License-Identifier: GPL-2.0-only
# lab-prepare.sh - builds the lab's cached kernel, modules and initramfs (sourced by lab.sh).
#
# LAB_KERNEL picks the kernel: debian (default) is Debian's own, KVM and 9p as
# modules; debug is tests/lab/build-debug-kernel.sh's (KASAN, lockdep, kmemleak),
# everything built in, so its initramfs carries no module.
#
# Cache layout, one directory per kernel release, never half written:
#   $KFORK_CACHE/lab/$KVER/vmlinux            uncompressed kernel, booted through PVH
#   $KFORK_CACHE/lab/$KVER/modules/*.ko       KVM + 9p modules, exactly as Debian ships them
#   $KFORK_CACHE/lab/$KVER/lab-<key>.cpio.gz  busybox + modules + init.sh; <key> hashes its inputs
#   $KFORK_CACHE/lab/debug/lab-<key>.cpio.gz  busybox + init.sh, for LAB_KERNEL=debug
#   (the debug vmlinux itself: $KFORK_CACHE/debug-kernel/<key>/vmlinux)
# A flock on $KFORK_CACHE/lab/.lock serialises preparers; everything is built in a
# temporary name and renamed into place, so a killed run leaves no partial cache.

LAB_MODULES=(irqbypass kvm ccp kvm-amd
	virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
	9pnet 9pnet_virtio netfs fscache 9p
	virtio-rng)
# Modules a later release folded into another: not an error when missing.
declare -A LAB_MERGED=([fscache]="merged into netfs (6.4)")

lab_die()
{
	echo "lab: $*" >&2
	exit 125
}

lab_note()
{
	echo "lab: $*" >&2
}

# The lab boots the kernel release the installed linux-headers-amd64 is for,
# so modules built against those headers load there. LAB_KVER overrides.
lab_kver()
{
	local dep dirs

	if [[ -n "${LAB_KVER:-}" ]]; then
		echo "$LAB_KVER"
		return
	fi
	dep=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null || true)
	if [[ "$dep" =~ linux-headers-([0-9][^ ,]*-amd64) ]]; then
		echo "${BASH_REMATCH[1]}"
		return
	fi
	dirs=(/usr/src/linux-headers-*-amd64)
	[[ -d "${dirs[-1]}" ]] ||
		lab_die "cannot tell the lab kernel release: install linux-headers-amd64 (apt-get install linux-headers-amd64) or set LAB_KVER"
	echo "${dirs[-1]#/usr/src/linux-headers-}"
}

lab_fetch_image_deb()
{
	local kver=$1 dir=$2 pkg

	for pkg in "linux-image-$kver" "linux-image-$kver-unsigned"; do
		if (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
			ls "$dir"/*.deb
			return
		fi
	done
	lab_die "apt-get download linux-image-$kver failed: run 'apt-get update' and check that the package exists in the archive"
}

# vmlinuz is a bzImage whose payload is one compressed ELF: xz in Debian's 6.1,
# zstd in its 6.12. PVH boots the ELF directly, skipping the decompressor,
# which is slow under TCG.
lab_extract_vmlinux()
{
	local vmlinuz=$1 out=$2 off

	off=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1 || true)
	if [[ -n "$off" ]]; then
		# xz stops after its stream, so tail may die of SIGPIPE: only xz's status counts.
		{ tail -c +$((off + 1)) "$vmlinuz" || true; } | xz -dc --single-stream >"$out" ||
			lab_die "xz -dc of the payload of $vmlinuz failed"
	else
		off=$(LC_ALL=C grep -abo $'\x28\xb5\x2f\xfd' "$vmlinuz" | head -n 1 | cut -d: -f1 || true)
		[[ -n "$off" ]] || lab_die "no xz or zstd stream in $vmlinuz: lab.sh cannot unpack it"
		# zstd decodes the payload's frame, then fails on what follows it (the
		# bzImage's tail): the ELF check below is what counts.
		{ tail -c +$((off + 1)) "$vmlinuz" | zstd -dcq 2>/dev/null || true; } >"$out"
	fi
	[[ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" == '177ELF' ]] && readelf -h "$out" >/dev/null 2>&1 ||
		lab_die "payload of $vmlinuz is not an ELF vmlinux"
}

# Copies each module as shipped; a .ko.xz is unpacked (the signature is inside).
# One that this release builds in (modules.builtin), or merged into another
# (LAB_MERGED), is named in OUT/absent instead, for init.sh to skip.
lab_copy_modules()
{
	local root=$1 kver=$2 out=$3 mod found

	mkdir -p "$out"
	: >"$out/absent"
	for mod in "${LAB_MODULES[@]}"; do
		mapfile -t found < <(find "$root/lib/modules/$kver/kernel" \
			\( -name "$mod.ko" -o -name "$mod.ko.xz" \) 2>/dev/null)
		if [[ ${#found[@]} -eq 0 ]]; then
			if grep -q "/$mod\.ko\$" "$root/lib/modules/$kver/modules.builtin" 2>/dev/null; then
				echo "$mod built in" >>"$out/absent"
				continue
			fi
			if [[ -n "${LAB_MERGED[$mod]:-}" ]]; then
				echo "$mod ${LAB_MERGED[$mod]}" >>"$out/absent"
				continue
			fi
		fi
		[[ ${#found[@]} -eq 1 ]] ||
			lab_die "expected one $mod.ko in linux-image-$kver, found ${#found[@]}: is $mod built in or renamed in this kernel?"
		case "${found[0]}" in
		*.ko.xz) xz -dc "${found[0]}" >"$out/$mod.ko" ;;
		*.ko) cp "${found[0]}" "$out/$mod.ko" ;;
		esac
	done
}

lab_build_kernel_dir()
{
	local kver=$1 dest=$2 tmp deb

	tmp=$(mktemp -d "$KFORK_CACHE/lab/.tmp-$kver.XXXXXX")
	lab_note "fetching linux-image-$kver (vmlinux + ${#LAB_MODULES[@]} modules) into $dest"
	mkdir -p "$tmp/deb" "$tmp/root" "$tmp/new"
	deb=$(lab_fetch_image_deb "$kver" "$tmp/deb")
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/root" --wildcards \
		"./boot/vmlinuz-$kver" "./lib/modules/$kver/kernel/*.ko*" "./lib/modules/$kver/modules.builtin" ||
		lab_die "unpacking $deb failed"
	lab_extract_vmlinux "$tmp/root/boot/vmlinuz-$kver" "$tmp/new/vmlinux"
	lab_copy_modules "$tmp/root" "$kver" "$tmp/new/modules"
	mv -T "$tmp/new" "$dest" || lab_die "rename of $tmp/new to $dest failed"
	rm -rf "$tmp"
}

# A cache made before a module joined LAB_MODULES is refetched whole.
lab_kernel_dir_complete()
{
	local dir=$1 mod

	[[ -f "$dir/vmlinux" ]] || return 1
	for mod in "${LAB_MODULES[@]}"; do
		[[ -f "$dir/modules/$mod.ko" ]] || grep -q "^$mod " "$dir/modules/absent" 2>/dev/null || return 1
	done
}

# lab_initramfs_key DIR MODULE...: hashes init.sh, busybox and DIR/modules/MODULE.ko.
lab_initramfs_key()
{
	local dir=$1 mod

	shift
	{
		cat "$LAB_DIR/init.sh" /bin/busybox
		for mod in "$@"; do cat "$dir/modules/$mod.ko" 2>/dev/null || echo "absent $mod"; done
	} | sha256sum | cut -c1-16
}

# lab_build_initramfs DIR OUT MODULE...: busybox, init.sh and DIR/modules/MODULE.ko.
lab_build_initramfs()
{
	local dir=$1 out=$2 tmp mod ldd

	shift 2

	ldd=$(LC_ALL=C ldd /bin/busybox 2>&1 || true)
	[[ -x /bin/busybox && "$ldd" == *"not a dynamic"* ]] ||
		lab_die "/bin/busybox is missing or not static: apt-get install busybox-static"
	tmp=$(mktemp -d "$KFORK_CACHE/lab/.tmp-initramfs.XXXXXX")
	mkdir -p "$tmp/root"/{bin,dev,proc,sys,host,tmp,lib/modules/lab}
	cp /bin/busybox "$tmp/root/bin/busybox"
	ln -s busybox "$tmp/root/bin/sh"
	install -m 755 "$LAB_DIR/init.sh" "$tmp/root/init"
	for mod in "$@"; do
		[[ ! -f "$dir/modules/$mod.ko" ]] || cp "$dir/modules/$mod.ko" "$tmp/root/lib/modules/lab/"
	done
	cp "$dir/modules/absent" "$tmp/root/lib/modules/lab/absent" 2>/dev/null ||
		: >"$tmp/root/lib/modules/lab/absent"
	(cd "$tmp/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) \
		>"$tmp/lab.cpio.gz" || lab_die "packing the lab initramfs failed"
	mv -f "$tmp/lab.cpio.gz" "$out"
	rm -rf "$tmp"
}

# Makes sure the cache is complete; sets LAB_VMLINUX, LAB_INITRD, LAB_KVER.
lab_prepare()
{
	case "${LAB_KERNEL:-debian}" in
	debian) lab_prepare_debian ;;
	debug) lab_prepare_debug ;;
	*) lab_die "LAB_KERNEL='$LAB_KERNEL': say debian (Debian's kernel, the default) or debug (tests/lab/build-debug-kernel.sh)" ;;
	esac
}

lab_prepare_debian()
{
	local kver dir key

	kver=$(lab_kver)
	dir="$KFORK_CACHE/lab/$kver"
	mkdir -p "$KFORK_CACHE/lab" || lab_die "cannot create $KFORK_CACHE/lab (set KFORK_CACHE to a writable directory)"
	exec 9>"$KFORK_CACHE/lab/.lock"
	flock 9
	# Under the lock nobody else is building: leftovers are from killed runs.
	rm -rf "$KFORK_CACHE"/lab/.tmp-*
	if ! lab_kernel_dir_complete "$dir"; then
		rm -rf "$dir"
		lab_build_kernel_dir "$kver" "$dir"
	fi
	key=$(lab_initramfs_key "$dir" "${LAB_MODULES[@]}")
	if [[ ! -f "$dir/lab-$key.cpio.gz" ]]; then
		lab_note "building lab initramfs lab-$key.cpio.gz"
		lab_build_initramfs "$dir" "$dir/lab-$key.cpio.gz" "${LAB_MODULES[@]}"
	fi
	# Another tree may boot an older init right now: drop only long-unused ones.
	touch "$dir/lab-$key.cpio.gz"
	find "$dir" -maxdepth 1 -name 'lab-*.cpio.gz' -mmin +1440 -delete
	exec 9>&-
	LAB_VMLINUX="$dir/vmlinux"
	LAB_INITRD="$dir/lab-$key.cpio.gz"
	LAB_KVER=$kver
}

# The debug kernel comes from its own cache (built there if missing: 26 CPU-min);
# its initramfs has no module to load.
lab_prepare_debug()
{
	local kdir dir key

	kdir=$("$LAB_DIR/build-debug-kernel.sh") ||
		lab_die "tests/lab/build-debug-kernel.sh failed (see above): no debug kernel"
	dir="$KFORK_CACHE/lab/debug"
	mkdir -p "$dir" || lab_die "cannot create $dir (set KFORK_CACHE to a writable directory)"
	exec 9>"$KFORK_CACHE/lab/.lock"
	flock 9
	rm -rf "$KFORK_CACHE"/lab/.tmp-*
	key=$(lab_initramfs_key "$dir")
	if [[ ! -f "$dir/lab-$key.cpio.gz" ]]; then
		lab_note "building debug lab initramfs lab-$key.cpio.gz"
		lab_build_initramfs "$dir" "$dir/lab-$key.cpio.gz"
	fi
	touch "$dir/lab-$key.cpio.gz"
	find "$dir" -maxdepth 1 -name 'lab-*.cpio.gz' -mmin +1440 -delete
	exec 9>&-
	LAB_VMLINUX="$kdir/vmlinux"
	LAB_INITRD="$dir/lab-$key.cpio.gz"
	LAB_KVER=$(sed -n 's/^# Linux\/[^ ]* \([^ ]*\) Kernel Configuration$/\1/p' "$kdir/config")
	LAB_KVER=${LAB_KVER:-debug}
}
