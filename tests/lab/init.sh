#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# init.sh - /init of the lab VM: load KVM and 9p, mount the host and the tree, run CMD, report its status.
#
# Runs as PID 1 under busybox ash. The host passes kfork_lab.{nonce,tree,cmd,hostcache,verbose,kernel}
# on the kernel command line (dotted names so the kernel neither puts them in our
# environment nor hands them to a module). Two lines are for the host only and carry
# the per-run nonce so nothing CMD prints can fake them:
#   KFORK-LAB-FATAL-<nonce>: <what failed>   the lab could not be set up; powered off
#   KFORK-LAB-START-<nonce>                  the lab is up: what follows is for the user
#   KFORK-LAB-EXIT-<nonce>=<status>          CMD ran and exited with <status>
# Everything else on the console is CMD's own output, passed through untouched.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH
MODDIR=/lib/modules/lab
KVM_MODULES="irqbypass kvm ccp kvm-amd"
# In dependency order for 6.1 and 6.12 (whose 9pnet needs netfs).
P9_MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p"
P9_OPTS="trans=virtio,version=9p2000.L,cache=loose,msize=512000"

NONCE=unset
TREE=
CMDFILE=
HOSTCACHE=
VERBOSE=0
# debian: Debian's kernel, KVM and 9p are modules in the initramfs. debug: the
# debug kernel (tests/lab/build-debug-kernel.sh), all of it built in.
KERNEL_KIND=debian

lab_fatal()
{
	echo "KFORK-LAB-FATAL-$NONCE: $*"
	sync
	poweroff -f
	sleep 60
}

lab_say()
{
	[ "$VERBOSE" = 1 ] && echo "lab: $* (at $(cut -d' ' -f1 /proc/uptime) s)"
	return 0
}

lab_mount_basics()
{
	/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin
	/bin/busybox --install -s
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	# What udev would add, and bash's process substitution (<(...)) needs.
	ln -s /proc/self/fd /dev/fd
	ln -s /proc/self/fd/0 /dev/stdin
	ln -s /proc/self/fd/1 /dev/stdout
	ln -s /proc/self/fd/2 /dev/stderr
	# Loopback, as any system has it: kforkd's tests listen on 127.0.0.1.
	ip link set lo up 2>/dev/null
	# CMD's bytes reach the host as written: no \n -> \r\n on the console.
	stty -onlcr </dev/console 2>/dev/null
}

lab_parse_cmdline()
{
	for word in $(cat /proc/cmdline); do
		case "$word" in
		kfork_lab.nonce=*) NONCE=${word#*=} ;;
		kfork_lab.tree=*) TREE=${word#*=} ;;
		kfork_lab.cmd=*) CMDFILE=${word#*=} ;;
		kfork_lab.hostcache=*) HOSTCACHE=${word#*=} ;;
		kfork_lab.verbose=*) VERBOSE=${word#*=} ;;
		kfork_lab.kernel=*) KERNEL_KIND=${word#*=} ;;
		esac
	done
	[ "$NONCE" != unset ] || lab_fatal "no kfork_lab.nonce on the kernel command line (boot the lab with tests/lab/lab.sh)"
	[ -n "$TREE" ] || lab_fatal "no kfork_lab.tree on the kernel command line"
	[ -n "$CMDFILE" ] || lab_fatal "no kfork_lab.cmd on the kernel command line"
}

# A module this kernel builds in or merged into another (lab-prepare.sh
# lists those in absent) is already there.
lab_insmod()
{
	mod=$1
	[ ! -f "$MODDIR/$mod.ko" ] && grep -q "^$mod " "$MODDIR/absent" 2>/dev/null && return 0
	err=$(insmod "$MODDIR/$mod.ko" 2>&1) || lab_fatal "insmod $mod.ko failed: $err"
}

lab_load_kvm()
{
	grep -qw svm /proc/cpuinfo || lab_fatal "lab CPU has no svm flag (QEMU needs -cpu ...,+svm)"
	if [ "$KERNEL_KIND" = debug ]; then
		[ -c /dev/kvm ] || lab_fatal "/dev/kvm missing under the debug kernel (CONFIG_KVM_AMD=y in tests/lab/debug-kernel.config?)"
		lab_say "kvm-amd built in"
		return
	fi
	for mod in $KVM_MODULES; do
		lab_insmod "$mod"
	done
	[ -c /dev/kvm ] || lab_fatal "/dev/kvm missing in lab after insmod kvm-amd"
	lab_say "kvm-amd loaded"
}

# A fresh VM has no entropy: without a hardware RNG the first getrandom() of
# a test (libkfork seeds every clone) would block for seconds.
lab_load_rng()
{
	[ "$KERNEL_KIND" = debug ] && return	# built in there
	lab_insmod virtio-rng	# the hwrng core is built in
}

lab_mount_host()
{
	if [ "$KERNEL_KIND" != debug ]; then
		for mod in $P9_MODULES; do
			lab_insmod "$mod"
		done
	fi
	mkdir -p /host
	err=$(mount -t 9p -o "ro,$P9_OPTS" hostroot /host 2>&1) ||
		lab_fatal "mount 9p hostroot (host /) on /host failed: $err"
	[ -d "/host$TREE" ] || lab_fatal "work tree $TREE not found in the host root"
	# The lab's own /tmp and /run first: a tree that lives under them (CI may
	# clone into /tmp) is then mounted on top, not hidden below.
	mount -t tmpfs -o mode=1777 tmpfs /host/tmp || lab_fatal "mount tmpfs on /host/tmp failed"
	mount -t tmpfs -o mode=755 tmpfs /host/run || lab_fatal "mount tmpfs on /host/run failed"
	mkdir -p "/host$TREE" 2>/dev/null
	err=$(mount -t 9p -o "$P9_OPTS" kforktree "/host$TREE" 2>&1) ||
		lab_fatal "mount 9p kforktree ($TREE) on /host$TREE failed: $err"
	for dir in proc sys dev; do
		mount -o bind "/$dir" "/host/$dir" || lab_fatal "bind mount /$dir on /host/$dir failed"
	done
	mkdir -p /dev/pts /dev/shm
	mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts || lab_fatal "mount devpts failed"
	mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm || lab_fatal "mount tmpfs on /host/dev/shm failed"
	mount -t tracefs tracefs /host/sys/kernel/tracing || lab_fatal "mount tracefs on /sys/kernel/tracing failed"
	mount -t bpf bpf /host/sys/fs/bpf || lab_fatal "mount bpffs on /sys/fs/bpf failed"
	# kmemleak's report and its scan trigger live in debugfs.
	if [ "$KERNEL_KIND" = debug ]; then
		mount -t debugfs debugfs /host/sys/kernel/debug || lab_fatal "mount debugfs on /sys/kernel/debug failed"
	fi
	lab_say "host root and $TREE mounted"
}

# Loads the tree's kfork.ko if one was built. A failure is reported, not fatal:
# CMD learns it from KFORK_KMOD and the test runner counts it as a failure.
lab_load_kfork()
{
	KFORK_KMOD=absent
	# A build for this very release first (kmod/kmod.mk: 6.12), then the default one.
	kos="build/kmod-$(uname -r)/kfork.ko build/kmod/kfork.ko kmod/kfork.ko"
	# Built against Debian's headers, kfork.ko would not load here (other vermagic).
	[ "$KERNEL_KIND" = debug ] && kos=build/kmod-debug/kfork.ko
	for ko in $kos; do
		[ -f "/host$TREE/$ko" ] || continue
		if err=$(insmod "/host$TREE/$ko" 2>&1); then
			echo "lab: insmod $ko: loaded"
			KFORK_KMOD="loaded:$ko"
		else
			echo "lab: insmod $ko FAILED: $err"
			dmesg | tail -n 5 | sed 's/^/lab: dmesg: /'
			KFORK_KMOD="failed:$ko"
		fi
		return
	done
}

lab_run_cmd()
{
	[ -f "/host$TREE/$CMDFILE" ] || lab_fatal "command file $TREE/$CMDFILE not found"
	lab_say "running CMD"
	# KFORK_CACHE: writable and kept across boots, inside the tree (make clean drops it);
	# the host's own cache stays readable, read-only, at KFORK_HOST_CACHE.
	mkdir -p "/host$TREE/build/lab/cache"
	chroot /host /usr/bin/env -i \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/tmp TMPDIR=/tmp TERM=dumb LANG=C.UTF-8 \
		KFORK_LAB=1 KFORK_CACHE="$TREE/build/lab/cache" KFORK_HOST_CACHE="$HOSTCACHE" \
		KFORK_KMOD="$KFORK_KMOD" KFORK_LAB_KERNEL="$KERNEL_KIND" \
		/bin/sh -c 'cd "$1" && exec /bin/sh "$2"' lab-cmd "$TREE" "$CMDFILE" </dev/null
	status=$?
	lab_say "CMD exited $status"
	# The tree is mounted cache=loose: flush CMD's writes to the host before power-off.
	sync
	umount "/host$TREE" 2>/dev/null
	echo "KFORK-LAB-EXIT-$NONCE=$status"
}

lab_mount_basics
lab_parse_cmdline
lab_say "kernel $(uname -r) up"
lab_load_kvm
lab_mount_host
lab_load_rng
echo "KFORK-LAB-START-$NONCE"
lab_load_kfork
lab_run_cmd
poweroff -f
sleep 60
