#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""kforkd-load.py - load test of kforkd over loopback: R requests from C clients, latency, losses, RSS and fds.

Standard library only (threads + http.client). Starts build/kforkd on
127.0.0.1 (port 0) with the template given, warms it up, then C client
threads, each on its own keep-alive connection, send R requests in all.
A request counts as done only if it got 200 and the expected stdout; every
other outcome (refused, wrong output, connection error) is an error, and
nothing may be lost (sent but never answered). Reports p50/p99 of the
client-side latency and of the daemon's spawn_us/total_us, requests/s, and
the daemon's RSS and open fds before and after. Exits 1 on any error.

    bench/kforkd-load.py --template python.tmpl [-n 10000] [-c 64] [--workers 4]
"""
import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def start_daemon(args, token_path):
    cmd = [args.kforkd, "--template", "t=" + args.template, "--listen", "127.0.0.1:0",
           "--workers", str(args.workers), "--queue", str(args.queue),
           "--max-connections", str(args.clients + 16), "--token-file", token_path]
    log = open(args.log, "w+")
    proc = subprocess.Popen(cmd, stderr=log)
    deadline = time.time() + args.start_timeout
    port = None
    while time.time() < deadline and proc.poll() is None:
        log.seek(0)
        text = log.read()
        m = re.search(r"^kforkd: listening on 127\.0\.0\.1:(\d+)$", text, re.M)
        if m and "kforkd: ready" in text:
            port = int(m.group(1))
            break
        time.sleep(0.1)
    if port is None:
        log.seek(0)
        sys.exit("kforkd did not start:\n" + log.read())
    return proc, port


class Client(threading.Thread):
    def __init__(self, port, headers, body, expect, counter, lock):
        super().__init__(daemon=True)
        self.port, self.headers, self.body, self.expect = port, headers, body, expect
        self.counter, self.lock = counter, lock
        self.lat, self.spawn, self.total, self.errors = [], [], [], []
        self.answered = 0

    def take(self):
        with self.lock:
            if self.counter[0] <= 0:
                return False
            self.counter[0] -= 1
            return True

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        while self.take():
            t0 = time.monotonic()
            try:
                conn.request("POST", "/v1/exec", self.body, self.headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.errors.append("connection: %r" % e)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                continue
            self.answered += 1
            self.lat.append((time.monotonic() - t0) * 1e6)
            try:
                r = json.loads(data)
            except ValueError:
                self.errors.append("%d, not JSON" % resp.status)
                continue
            if resp.status != 200 or r.get("stdout") != self.expect:
                self.errors.append("%d %s" % (resp.status, data[:200]))
                continue
            self.spawn.append(r["spawn_us"])
            self.total.append(r["total_us"])
        conn.close()


def one_request(port, headers, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/v1/exec", body, headers)
    data = conn.getresponse().read()
    conn.close()
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--template", required=True)
    ap.add_argument("-n", "--requests", type=int, default=10000)
    ap.add_argument("-c", "--clients", type=int, default=64)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--queue", type=int, default=0, help="default: --clients (nothing refused)")
    ap.add_argument("--code", default="print(1+1)")
    ap.add_argument("--expect", default="2\n")
    ap.add_argument("--kforkd", default="build/kforkd")
    ap.add_argument("--log", default="/tmp/kforkd-load.log")
    ap.add_argument("--start-timeout", type=float, default=300)
    args = ap.parse_args()
    if args.requests < 1 or args.clients < 1:
        sys.exit("--requests and --clients must be >= 1")
    args.queue = args.queue or args.clients

    token = os.urandom(16).hex()
    token_path = "/tmp/kforkd-load-%d.token" % os.getpid()
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, token.encode())
    os.close(fd)
    proc, port = start_daemon(args, token_path)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    body = json.dumps({"template": "t", "code": args.code, "timeout_ms": 60000})
    try:
        for _ in range(3):  # warm: first clones, first connection threads
            one_request(port, headers, body)
        rss0, fds0 = proc_rss_kib(proc.pid), proc_fds(proc.pid)
        counter, lock = [args.requests], threading.Lock()
        clients = [Client(port, headers, body, args.expect, counter, lock) for _ in range(args.clients)]
        t0 = time.monotonic()
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        wall = time.monotonic() - t0
        rss1, fds1 = proc_rss_kib(proc.pid), proc_fds(proc.pid)
        # kf_destroy() tears clones down on libkfork's thread, which may lag
        # behind the workers: give it up to 60 s to catch up.
        t1 = time.monotonic()
        while proc_fds(proc.pid) > fds0 and time.monotonic() - t1 < 60:
            time.sleep(0.2)
        settle = time.monotonic() - t1
        rss2, fds2 = proc_rss_kib(proc.pid), proc_fds(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
        os.unlink(token_path)

    lat = [x for c in clients for x in c.lat]
    spawn = [x for c in clients for x in c.spawn]
    total = [x for c in clients for x in c.total]
    errors = [e for c in clients for e in c.errors]
    answered = sum(c.answered for c in clients)
    ok = len(spawn)
    lost = args.requests - answered - sum(1 for e in errors if e.startswith("connection"))
    print("kforkd load: %d requests, %d clients, %d workers, queue %d, template %s" %
          (args.requests, args.clients, args.workers, args.queue, args.template))
    print("  ok %d, errors %d, lost %d, wall %.1f s, %.1f requests/s" %
          (ok, len(errors), lost, wall, ok / wall if wall else 0))
    print("  client latency us: p50 %.0f p99 %.0f max %.0f" %
          (percentile(lat, 50), percentile(lat, 99), max(lat) if lat else float("nan")))
    print("  daemon spawn_us:   p50 %.0f p99 %.0f" % (percentile(spawn, 50), percentile(spawn, 99)))
    print("  daemon total_us:   p50 %.0f p99 %.0f" % (percentile(total, 50), percentile(total, 99)))
    print("  daemon RSS KiB: %d before, %d right after, %d %.1f s later" % (rss0, rss1, rss2, settle))
    print("  daemon fds:     %d before, %d right after, %d %.1f s later" % (fds0, fds1, fds2, settle))
    print("  kforkd exit status after SIGTERM: %d" % rc)
    for e in errors[:10]:
        print("  error: " + e)
    flat = fds2 <= fds0
    if not flat:
        print("  fds did not come back to %d within 60 s" % fds0)
    sys.exit(0 if not errors and lost == 0 and ok == args.requests and rc == 0 and flat else 1)


if __name__ == "__main__":
    main()
