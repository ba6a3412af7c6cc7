#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
# tcg-smoke.py - boot build/guest/vmlinux + KIND.cpio.gz in QEMU TCG (PVH) and drive the agent: READY, INIT, execs, PING.
#
# Usage (tree root): guest/tcg-smoke.py minimal|python   (needs qemu-system-x86; no KVM needed)
import subprocess, struct, zlib, sys, time, select, os
kind = sys.argv[1]
t0 = time.time()
p = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64", "-m", "512", "-smp", "1",
    "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
    "-kernel", "build/guest/vmlinux", "-initrd", f"build/guest/{kind}.cpio.gz",
    "-append", "console=ttyS0 panic=-1 quiet"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
buf = b""
raw = b""
def frame(t, pl=b""):
    h = b"KF" + bytes([t, 0]) + struct.pack("<I", len(pl))
    return h + pl + struct.pack("<I", zlib.crc32(h + pl))
def recv(timeout=120):
    global buf, raw
    end = time.time() + timeout
    while True:
        i = buf.find(b"KF")
        if i >= 0 and len(buf) >= i + 8:
            n = struct.unpack("<I", buf[i+4:i+8])[0]
            if n < 70000 and len(buf) >= i + 12 + n:
                f = buf[i:i+12+n]
                if zlib.crc32(f[:-4]) == struct.unpack("<I", f[-4:])[0]:
                    buf = buf[i+12+n:]; return f[2], f[8:8+n]
                buf = buf[i+2:]; continue
        r, _, _ = select.select([p.stdout], [], [], max(0, end - time.time()))
        if not r: print("timeout; raw:", raw[-2000:]); p.kill(); sys.exit(1)
        d = os.read(p.stdout.fileno(), 65536); buf += d; raw += d
def send(b): p.stdin.write(b); p.stdin.flush()
print(recv(300), "after %.1fs" % (time.time() - t0))
def run(lang, code, stdin=None):
    send(frame(2, struct.pack("<BxxxI", lang, len(code)) + code))
    if stdin is not None: send(frame(3, stdin)); send(frame(3))
    while True:
        t, pl = recv(); print(t, pl[:200])
        if t in (20, 21): break
seed = os.urandom(32)
send(frame(1, seed + struct.pack("<QIIQ", int(time.time()), 0, 0, 7))); print(recv())
run(0, b"echo hi; uname -r; date; echo $KFORK_CLONE_ID; cat /proc/cmdline; exit 3")
run(0, b"tr a-z A-Z", b"stdin works\n")
if kind == "python":
    run(1, b"print(1+1)")
    run(1, b"import os, sys, random; print(sys.version.split()[0], len(os.listdir('/usr/lib/python3.11')), random.random() < 1)")
send(frame(4)); print(recv())
print("total %.1fs" % (time.time() - t0))
p.kill()
