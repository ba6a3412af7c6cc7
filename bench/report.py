#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
# report.py - turns a bench run directory (raw samples) into bench/results/<date>-<machine>.{json,md} and PNG plots.
#
#   bench/report.py build/bench/run-<stamp>     (bench/run.sh calls it)
#
# Percentiles are computed here from the raw samples kfork-bench wrote, nearest
# rank like kfork-bench's own summaries. Nothing is estimated: a figure with no
# samples is printed as unavailable with the reason its record gives.
import glob
import json
import os
import shutil
import subprocess
import sys

TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(TREE, "bench", "results")
RESET_PAGES = ["1", "16", "256", "4096"]
PHASES = ["vm", "restore", "arm", "first_byte", "result"]
# which attach point each kfork trace count comes from (as named in its start-up notes)
TRACE_SOURCE = {"kvm_exits": "kvm_exit", "stage2_faults": "kvm_page_fault",
                "host_faults": "handle_mm_fault", "host_cow_faults": "handle_mm_fault"}
DISTORTION = ("Absolute times from emulated environments are distorted: on the dev host "
              "/dev/kvm is PVM (guest kernel code emulated instruction by instruction), and "
              "the lab is a VM under QEMU TCG whose own kernel (KVM included) is emulated, "
              "so KVM ioctls cost ~50x bare metal there. Compare the ratios measured in one "
              "run (kmod vs user vs floor vs peer), not the absolute times, and do not compare "
              "host rows with lab rows.")


def pct(v, p):
    if not v:
        return None
    s = sorted(v)
    return s[int((len(s) - 1) * p + 0.5)]


def mend(text):
    """The longest prefix of a cut-short JSON object that parses once its open brackets are closed."""
    ends = [i for i, ch in enumerate(text) if ch in "}]"]
    for end in reversed(ends[-5000:]):
        head, stack, in_str, esc = text[:end + 1], [], False, False
        for ch in head:
            if in_str:
                esc, in_str = (not esc and ch == "\\"), in_str and (esc or ch != '"')
            elif ch == '"':
                in_str = True
            elif ch in "{[":
                stack.append("}" if ch == "{" else "]")
            elif ch in "}]" and stack:
                stack.pop()
        try:
            return json.loads(head + "".join(reversed(stack)))
        except ValueError:
            continue
    return None


def load(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        return {"unavailable": f"{os.path.basename(path)}: {e}"}
    try:
        return json.loads(text)
    except ValueError as e:
        r = mend(text) if text.strip() else None
        if isinstance(r, dict) and r.get("section"):
            r["truncated"] = "the run was cut short: figures after the last complete section are missing"
            return r
        why = "empty: the run was cut short before this configuration wrote anything" if not text.strip() else str(e)
        return {"unavailable": f"{os.path.basename(path)}: {why}"}


def load_trace(path):
    recs = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        return None
    return recs


def stat(v, unit="us"):
    """p50/p99/n of a sample list."""
    return {"p50": pct(v, .5), "p99": pct(v, .99), "n": len(v), "unit": unit}


def summarize_place(d):
    """Everything of one place (host or lab): env, floor, figures per kind/backend, traces, peers."""
    env = os.path.join(d, "env.json")
    if not os.path.exists(env):	# the kmod/floor/peer lab VM failed; the user one wrote its own
        env = os.path.join(d, "env-user.json")
    place = {"env": load(env), "configs": {}, "peer": {}, "raw": {}}
    fl = load(os.path.join(d, "floor.json"))
    if "samples_us" in fl:
        place["floor"] = {k: stat(v) for k, v in fl["samples_us"].items()}
        place["floor"]["failed"] = fl.get("failed", 0)
        place["raw"]["floor total"] = fl["samples_us"]["total"]
    else:
        place["floor"] = {"unavailable": fl.get("unavailable", "not run")}
    for path in sorted(glob.glob(os.path.join(d, "figures-*.json"))):
        r = load(path)
        name = os.path.basename(path)[len("figures-"):-len(".json")]
        kind, backend = name.split("-", 1)
        c = {"kind": kind, "backend": backend}
        if "unavailable" in r:
            c["unavailable"] = r["unavailable"]
            place["configs"][name] = c
            continue
        c["first_getrandom_us"] = r.get("first_getrandom_us")
        if r.get("truncated"):
            c["truncated"] = r["truncated"]
        c["warmup_failed"] = r.get("warmup_failed")
        t = r.get("ttfr")
        if t:
            c["spawn_cold"] = stat(t["spawn_us"])
            c["ttfr_cold"] = stat(t["ttfr_us"])
            c["first_byte_cold"] = stat(t["first_byte_us"])
            c["exits_user"] = stat(t["exits"], "KVM_RUN returns")
            c["destroy_call"] = stat(t["destroy_call_us"])
            c["ttfr_failed"] = t["failed"]
            c["ttfr_code"] = t["code"]
            if t.get("last_error"):
                c["ttfr_last_error"] = t["last_error"]
            place["raw"][f"{name} spawn"] = t["spawn_us"]
            place["raw"][f"{name} ttfr"] = t["ttfr_us"]
            place["raw"][f"{name} firstbyte"] = t["first_byte_us"]
        p = r.get("pool")
        if p and "unavailable" not in p:
            c["spawn_pool"] = stat(p["spawn_us"])
            c["ttfr_pool"] = stat(p["ttfr_us"])
            c["pool_failed"] = p["failed"]
            c["pool_size"] = p["pool_size"]
            c["pool_found_empty"] = int(sum(p["found_empty"]))
            place["raw"][f"{name} pool-spawn"] = p["spawn_us"]
        rs = r.get("reset")
        if rs:
            c["reset"] = {}
            for n in RESET_PAGES:
                x = rs.get(n, {"unavailable": "not run"})
                if "unavailable" in x:
                    c["reset"][n] = {"unavailable": x["unavailable"]}
                else:
                    c["reset"][n] = dict(stat(x["reset_us"]), failed=x["failed"],
                                         dirty_code=x["dirty_code"])
                    if x.get("last_error"):
                        c["reset"][n]["last_error"] = x["last_error"]
        if r.get("throughput"):
            c["throughput"] = r["throughput"]
        if r.get("density"):
            c["density"] = r["density"]
        fo = r.get("fanout")
        if fo:
            c["fanout"] = {"alive": fo["alive"], "answered": fo["answered"], "failed": fo["failed"],
                           "all_answered_s": fo["all_answered_s"], "exec": stat(fo["exec_us"])}
        tr = load_trace(os.path.join(d, f"trace-{name}.jsonl"))
        if tr is None:
            err = os.path.join(d, f"trace-{name}.err")
            why = "kfork trace not run for this configuration"
            if os.path.exists(err):
                why = "kfork trace: " + (open(err).read().strip().splitlines() or ["no output"])[-1]
            c["trace"] = {"unavailable": why}
        elif not tr:
            c["trace"] = {"unavailable": "kfork trace recorded no spawn"}
        else:
            ct = {"records": len(tr)}
            errf = os.path.join(d, f"trace-{name}.err")
            errs = [l.strip() for l in open(errf)] if os.path.exists(errf) else []
            for k in ("kvm_exits", "user_exits", "stage2_faults", "host_faults", "host_cow_faults",
                      "lib_exits"):
                v = [x[k] for x in tr if x.get(k) is not None]
                said = [l.split("kfork trace:", 1)[-1].strip() for l in errs
                        if TRACE_SOURCE.get(k) and TRACE_SOURCE[k] in l]
                if said and any("never fire" in l or "not configured" in l or "fail" in l for l in said):
                    ct[k] = {"unavailable": "kfork trace: " + "; ".join(said)}
                else:
                    ct[k] = stat(v, "count") if v else {"unavailable": "null in every kfork trace record"}
            ct["phases"] = {}
            for ph in PHASES:
                v = [x["phases_ns"][ph] / 1e3 for x in tr
                     if x.get("phases_ns", {}).get(ph) is not None]
                ct["phases"][ph] = stat(v) if v else None
            ct["notes"] = [l for l in errs if "unavailable" in l or "never fire" in l]
            c["trace"] = ct
        place["configs"][name] = c
    for path in sorted(glob.glob(os.path.join(d, "peer-*.json"))):
        r = load(path)
        kind = r.get("kind") or os.path.basename(path)[5:-5]
        if "samples_us" not in r or not r.get("n"):
            place["peer"][kind] = {"unavailable": r.get("unavailable") or r.get("last_error") or "no samples"}
            continue
        s = r["samples_us"]
        place["peer"][kind] = {
            "machine": r.get("machine"), "mem_mib": r.get("mem_mib"),
            "boot_to_ready_s": r.get("boot_to_ready_s"), "snapshot_bytes": r.get("snapshot_bytes"),
            "restore": stat(s["restore_us"]), "first_byte": stat(s["first_byte_us"]),
            "ttfr": stat(s["ttfr_us"]), "quit": stat(s["quit_us"]),
            "mem_drop_kib": stat(r.get("mem_available_drop_kib", []), "KiB"),
            "per_second": r.get("per_second"), "failed": r.get("failed"),
            "last_error": r.get("last_error")}
        place["raw"][f"peer-{kind} restore"] = s["restore_us"]
        place["raw"][f"peer-{kind} ttfr"] = s["ttfr_us"]
    return place


# --- Markdown ------------------------------------------------------------------

def fmt_us(v):
    if v is None:
        return "n/a"
    if v >= 10000:
        return f"{v / 1000:.0f} ms"
    if v >= 1000:
        return f"{v / 1000:.1f} ms"
    return f"{v:.0f} us"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    r = a / b
    if r == 0:
        return "0x"
    if r < 0.1:
        return f"1/{1 / r:.0f}"
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def cell(st, fmt=fmt_us):
    if st is None:
        return "n/a", "n/a"
    if "unavailable" in st:
        return "unavailable", "unavailable"
    return fmt(st["p50"]), fmt(st["p99"])


def place_table(name, pl):
    env = pl["env"]
    out = [f"### {name}: {env.get('kvm', '?')}",
           "",
           f"Machine `{env.get('hostname', '?')}`, kernel {env.get('kernel', '?')}, "
           f"{env.get('cores', '?')} cores, {int(env.get('mem_kib', 0)) >> 20} GiB, CPU {env.get('cpu', '?')}; "
           f"{env.get('mode', '?')} run at {env.get('date', '?')}, commit {env.get('commit', '?')}"
           + (f", kfork.ko: {env.get('kfork_kmod')} ({env.get('kmod_build', '?')})" if name.startswith("lab") else "") + ".",
           ""]
    if env.get("lab_vms") == 2:
        out += ["The lab VM has one vCPU, so the user backend and the kmod backend (with the floor and "
                "the peer) ran at the same time in two lab VMs, one per host core, each building its "
                "own templates from the same kernel and initramfs.", ""]
    fl = pl.get("floor", {})
    floor_p50 = fl.get("total", {}).get("p50") if "unavailable" not in fl else None
    if "unavailable" in fl:
        out.append(f"Floor unavailable: {fl['unavailable']}.")
    else:
        out.append(f"Floor (KVM_CREATE_VM + memslot + KVM_CREATE_VCPU + one KVM_RUN to HLT, one page; "
                   f"n={fl['total']['n']}): p50 {fmt_us(fl['total']['p50'])}, p99 {fmt_us(fl['total']['p99'])} "
                   f"(create_vm {fmt_us(fl['create_vm']['p50'])}, create_vcpu {fmt_us(fl['create_vcpu']['p50'])}, "
                   f"run to HLT {fmt_us(fl['run_to_hlt']['p50'])}); teardown p50 {fmt_us(fl['teardown']['p50'])}.")
    out.append("")
    if not pl.get("peer") and pl["env"].get("place") == "host":
        out.append("Peer: not run here; it runs in the lab (on the dev host QEMU -enable-kvm cannot boot "
                   "a Linux kernel under PVM, LAB.md), so host rows have no `/ peer` column.")
    elif not pl.get("peer"):
        out.append("Peer: no result in this run (the lab part stopped before it).")
    for kind, pr in pl.get("peer", {}).items():
        if "unavailable" in pr:
            out.append(f"Peer ({kind}): unavailable: {pr['unavailable']}")
        else:
            out.append(f"Peer ({kind}): Debian QEMU `-M {pr['machine']} -enable-kvm`, {pr['mem_mib']} MiB, "
                       f"restoring its own migration snapshot ({(pr['snapshot_bytes'] or 0) / 1e6:.1f} MB; "
                       f"cold boot to READY {pr['boot_to_ready_s']:.1f} s), n={pr['ttfr']['n']} "
                       f"({pr['failed']} failed): QEMU start -> running p50 {fmt_us(pr['restore']['p50'])}, "
                       f"-> first serial byte p50 {fmt_us(pr['first_byte']['p50'])}, "
                       f"-> result p50 {fmt_us(pr['ttfr']['p50'])} p99 {fmt_us(pr['ttfr']['p99'])}.")
    out.append("")
    kinds = sorted({c["kind"] for c in pl["configs"].values()}, key=lambda k: ["tiny", "minimal", "python"].index(k) if k in ("tiny", "minimal", "python") else 9)
    for kind in kinds:
        cfgs = {c["backend"]: c for n, c in pl["configs"].items() if c["kind"] == kind}
        gone = [b for b in ("user", "kmod") if b in cfgs and "unavailable" in cfgs[b]]
        backends = [b for b in ("user", "kmod") if b in cfgs and b not in gone]
        peer = pl.get("peer", {}).get(kind, {})
        peer = None if "unavailable" in peer else peer
        for b in gone:
            out.append(f"{kind}, {b} backend: unavailable: {cfgs[b]['unavailable']}.")
            out.append("")
        if not backends:
            continue
        hdr = "| figure (" + kind + ") |"
        sep = "|---|"
        for b in backends:
            hdr += f" {b} p50 | {b} p99 | {b} / floor |" + (f" {b} / peer |" if peer else "")
            sep += "---:|---:|---:|" + ("---:|" if peer else "")
        if "user" in backends and "kmod" in backends:
            hdr += " kmod / user p50 | kmod / user p99 |"
            sep += "---:|---:|"
        out += [hdr, sep]

        notes = []

        def row(label, get, peer_ref=None, fmt=fmt_us, floor=True):
            line = f"| {label} |"
            vals = {}
            for b in backends:
                c = cfgs[b]
                st = None if "unavailable" in c else get(c)
                if st is not None and "unavailable" in st:
                    line += " unavailable | | |" + (" |" if peer else "")
                    why = f"{kind}/{b}: {label} unavailable: {st['unavailable']}"
                    if why not in notes:
                        notes.append(why)
                    continue
                p50, p99 = cell(st, fmt)
                vals[b] = st
                line += f" {p50} | {p99} | {ratio(st and st['p50'], floor_p50) if floor else 'n/a'} |"
                if peer:
                    line += f" {ratio(st and st['p50'], peer_ref) if peer_ref else 'n/a'} |"
            if "user" in backends and "kmod" in backends:
                u, k = vals.get("user"), vals.get("kmod")
                line += f" {ratio(k and k['p50'], u and u['p50'])} | {ratio(k and k['p99'], u and u['p99'])} |"
            out.append(line)

        prs = peer and peer["restore"]["p50"]
        ptt = peer and peer["ttfr"]["p50"]
        row("spawn, cold", lambda c: c.get("spawn_cold"), prs)
        row("spawn, from a pool of 8", lambda c: c.get("spawn_pool"), prs)
        code = next((c.get("ttfr_code") for c in cfgs.values() if c.get("ttfr_code")), "?")
        code = "print(1+1)" if kind == "python" else code
        row(f"TTFR `{code}`, cold", lambda c: c.get("ttfr_cold"), ptt)
        row(f"TTFR `{code}`, from the pool", lambda c: c.get("ttfr_pool"), ptt)
        for n in RESET_PAGES:
            if any("reset" in c for c in cfgs.values()):
                row(f"reset after {n} dirtied pages", lambda c, n=n: c.get("reset", {}).get(n), prs)
        row("exits to user space per spawn (libkfork)", lambda c: c.get("exits_user"),
            fmt=lambda v: "n/a" if v is None else f"{v:.0f}", floor=False)
        for k, label in (("kvm_exits", "VM exits per spawn (kfork trace)"),
                         ("stage2_faults", "stage-2 faults per spawn (kfork trace)"),
                         ("host_cow_faults", "host CoW faults per spawn (kfork trace)")):
            row(label, lambda c, k=k: (c.get("trace", {}).get(k) if "unavailable" not in c.get("trace", {"unavailable": 1})
                                       else {"unavailable": c["trace"]["unavailable"]}),
                fmt=lambda v: "n/a" if v is None else f"{v:.0f}", floor=False)
        if any("throughput" in c for c in cfgs.values()):
            for th in (1, 2, 4):
                def tp(c, th=th):
                    t = [x for x in c.get("throughput", []) if x["threads"] == th]
                    return {"p50": t[0]["per_second"], "p99": None} if t else None
                row(f"throughput, {th} thread(s), spawn+exec+destroy per s", tp,
                    fmt=lambda v: "n/a" if v is None else f"{v:.1f}", floor=False)
        if any("density" in c for c in cfgs.values()):
            def dens(c):
                d = c.get("density")
                if d and d["kib_per_clone"] <= 0:
                    return {"unavailable": "MemAvailable rose while clones were added (the machine "
                                           "freed other memory meanwhile): no per-clone figure from it"}
                return {"p50": d["kib_per_clone"], "p99": None} if d else None
            row("density: MemAvailable drop per live clone (KiB, at the most clones)", dens,
                fmt=lambda v: "n/a" if v is None else f"{v:.0f}", floor=False)
            def memcg(c):
                d = c.get("density")
                if not d:
                    return None
                if d.get("memcg_kib_per_clone") is None:
                    return {"unavailable": d.get("memcg", "no memory cgroup reading")}
                return {"p50": d["memcg_kib_per_clone"], "p99": None}
            row("density: memory-cgroup charge per live clone (KiB, kernel memory included)", memcg,
                fmt=lambda v: "n/a" if v is None else f"{v:.0f}", floor=False)
            def per_gib(c):
                d = c.get("density")
                k = d and (d.get("memcg_kib_per_clone") or d.get("kib_per_clone"))
                return {"p50": (1 << 20) / k, "p99": None} if k and k > 0 else None
            row("clones per GiB (cgroup charge if measured, else MemAvailable)", per_gib,
                fmt=lambda v: "n/a" if v is None else f"{v:.0f}", floor=False)
            def fan(c):
                f = c.get("fanout")
                return {"p50": f["alive"], "p99": None} if f else None
            row("fan-out: clones alive at once, each answered an exec", fan,
                fmt=lambda v: "n/a" if v is None else f"{v:.0f}", floor=False)
            row("fan-out: exec latency with all alive", lambda c: c.get("fanout", {}).get("exec"), floor=False)
        out.append("")
        for b in backends:
            c = cfgs[b]
            if "unavailable" in c:
                continue
            for k in ("ttfr_failed", "pool_failed"):
                if c.get(k):
                    notes.append(f"{kind}/{b}: {k.split('_')[0]}: {c[k]} failed ({c.get('ttfr_last_error', '')})")
            for n, r in c.get("reset", {}).items():
                if "unavailable" not in r and r.get("failed"):
                    notes.append(f"{kind}/{b}: reset after {n}: {r['failed']} failed ({r.get('last_error')})")
            if c.get("density"):
                d = c["density"]
                notes.append(f"{kind}/{b}: density/fan-out stopped at {d['live']} clones: {d['stopped_because']}")
            if c.get("truncated"):
                notes.append(f"{kind}/{b}: {c['truncated']}")
            if c.get("first_getrandom_us", 0) and c["first_getrandom_us"] > 1000:
                notes.append(f"{kind}/{b}: first getrandom() blocked {c['first_getrandom_us'] / 1e3:.0f} ms (CRNG not ready)")
            if c.get("pool_found_empty"):
                notes.append(f"{kind}/{b}: pool found empty {c['pool_found_empty']} of {c['spawn_pool']['n']} times")
        out += [f"- {n}" for n in notes]
        out.append("")
    return out


def markdown(res):
    out = [f"## kfork benchmark, {res['date']} on `{res['machine']}` ({res['mode']} run)", "",
           DISTORTION, "",
           "Definitions: DESIGN.md. p50/p99 are nearest-rank over the n samples given; ratios divide "
           "p50s (kmod / user also p99s). `/ floor` divides by the raw KVM floor measured in the same "
           "run and place; `/ peer` divides spawn and reset by QEMU's restore (start -> running) and TTFR "
           "by QEMU's restore-to-result, same guest, same place. n/a: no comparable measurement.", ""]
    for name in ("host", "lab"):
        if name in res["places"]:
            label = "host (dev machine, tiny test guest)" if name == "host" else "lab (Linux guests, both backends, peer)"
            out += place_table(label, res["places"][name])
        else:
            out += [f"### {name}: unavailable: {res['missing'].get(name, 'not run')}", ""]
    return "\n".join(out) + "\n"


# --- plots -------------------------------------------------------------------

def write_cdf(path, v):
    s = sorted(v)
    with open(path, "w") as f:
        for i, x in enumerate(s):
            f.write(f"{x / 1000:.4f} {(i + 1) / len(s):.5f}\n")


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8", "#98df8a", "#ff9896"]


def style(i, title):
    """A colour per series; references (floor, peer) dashed, pools dotted."""
    dt = 2 if ("floor" in title or "peer" in title) else 3 if "pool" in title else 1
    return f"lw 2 lc rgb '{COLORS[i % len(COLORS)]}' dt {dt}"


def gnuplot(script, workdir):
    r = subprocess.run(["gnuplot"], input=script, text=True, cwd=workdir,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        print("report: gnuplot failed:\n" + r.stdout, file=sys.stderr)
    return r.returncode == 0


def plots(res, run, prefix):
    work = os.path.join(run, "plot")
    os.makedirs(work, exist_ok=True)
    made = []
    term = "set terminal pngcairo noenhanced size 1000,600 font 'DejaVu Sans,10'\nset key outside right\nset grid\n"
    sub = f"{res['machine']} {res['date']} ({res['mode']}); emulated KVM: compare ratios, not absolute times"

    def cdf_plot(what, fname, title):
        series = []
        for pname, pl in res["places"].items():
            for key, v in pl["raw"].items():
                if key.endswith(" " + what) or (what == "spawn" and key.endswith(" pool-spawn")) \
                        or (what == "spawn" and key in ("floor total",)) \
                        or (what == "spawn" and key.endswith(" restore")) \
                        or (what == "ttfr" and key.endswith(" ttfr")):
                    if not v:
                        continue
                    dat = f"{fname}-{len(series)}.dat"
                    write_cdf(os.path.join(work, dat), v)
                    series.append((dat, f"{pname}: {key}".replace("_", " ")))
        if not series:
            return
        s = term + f"set output '{prefix}-{fname}.png'\nset title \"{title}\\n{sub}\"\n"
        s += "set logscale x\nset xlabel 'ms (log scale)'\nset ylabel 'fraction of samples'\nset yrange [0:1]\n"
        s += "plot " + ", ".join(f"'{d}' using 1:2 with steps {style(i, t)} title \"{t}\""
                                 for i, (d, t) in enumerate(series)) + "\n"
        if gnuplot(s, work):
            made.append(f"{prefix}-{fname}.png")

    cdf_plot("spawn", "cdf-spawn", "spawn latency CDF (kf_spawn call -> runnable clone); floor and QEMU restore for scale")
    cdf_plot("ttfr", "cdf-ttfr", "time to first result CDF (kf_spawn -> result of echo hi / print(1+1))")

    # per-phase stacked bars: kfork trace phases if present, else libkfork's own stamps
    rows = []
    for pname, pl in res["places"].items():
        for name, c in pl["configs"].items():
            if "unavailable" in c:
                continue
            ph = c.get("trace", {}).get("phases") if "unavailable" not in c.get("trace", {"unavailable": 1}) else None
            if ph and all(ph.get(p) for p in PHASES):
                rows.append((f"{pname} {name} (trace)", [ph[p]["p50"] / 1000 for p in PHASES]))
            elif c.get("spawn_cold") and c.get("first_byte_cold") and c.get("ttfr_cold"):
                sp, fb, tt = c["spawn_cold"]["p50"], c["first_byte_cold"]["p50"], c["ttfr_cold"]["p50"]
                rows.append((f"{pname} {name} (libkfork)", [sp / 1000, 0, 0, max(fb - sp, 0) / 1000, max(tt - fb, 0) / 1000]))
    if rows:
        with open(os.path.join(work, "phases.dat"), "w") as f:
            f.write("config " + " ".join(PHASES) + "\n")
            for label, v in rows:
                f.write(f"\"{label}\" " + " ".join(f"{x:.3f}" for x in v) + "\n")
        s = term + f"set output '{prefix}-phases.png'\n"
        s += f"set title \"per-phase p50 of one spawn + exec (libkfork rows: vm = whole spawn)\\n{sub}\"\n"
        s += "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.8 border -1\n"
        s += "set boxwidth 0.6\nset ylabel 'ms'\nset xtics rotate by -20 left\nset key autotitle columnheader\n"
        s += "plot 'phases.dat' using 2:xtic(1), '' using 3, '' using 4, '' using 5, '' using 6\n"
        if gnuplot(s, work):
            made.append(f"{prefix}-phases.png")

    # throughput vs concurrent clones (threads)
    series = []
    for pname, pl in res["places"].items():
        for name, c in pl["configs"].items():
            if c.get("throughput"):
                dat = f"tp-{len(series)}.dat"
                with open(os.path.join(work, dat), "w") as f:
                    for t in c["throughput"]:
                        f.write(f"{t['threads']} {t['per_second']:.3f}\n")
                series.append((dat, f"{pname} {name}"))
    if series:
        s = term + f"set output '{prefix}-throughput.png'\nset title \"sustained spawn+exec+destroy per second vs concurrent clones (threads)\\n{sub}\"\n"
        s += "set xlabel 'concurrent clones (caller threads)'\nset ylabel 'per second (log scale)'\nset logscale y\nset xtics (1,2,4)\n"
        s += "plot " + ", ".join(f"'{d}' using 1:2 with linespoints {style(i, t)} title '{t}'"
                                 for i, (d, t) in enumerate(series)) + "\n"
        if gnuplot(s, work):
            made.append(f"{prefix}-throughput.png")

    # memory per clone vs live clones
    series = []
    for pname, pl in res["places"].items():
        for name, c in pl["configs"].items():
            pts = c.get("density", {}).get("points")
            if pts:
                dat = f"dens-{len(series)}.dat"
                with open(os.path.join(work, dat), "w") as f:
                    for p in pts:
                        f.write(f"{p['live']} {p['kib_per_clone'] / 1024:.4f}\n")
                series.append((dat, f"{pname} {name} (MemAvailable drop)"))
                if all(p.get("memcg_kib_per_clone") is not None for p in pts):
                    dat = f"dens-{len(series)}.dat"
                    with open(os.path.join(work, dat), "w") as f:
                        for p in pts:
                            f.write(f"{p['live']} {p['memcg_kib_per_clone'] / 1024:.4f}\n")
                    series.append((dat, f"{pname} {name} (memory cgroup charge)"))
    if series:
        s = term + f"set output '{prefix}-density.png'\nset title \"MemAvailable drop per live clone (after one exec each) vs live clones\\n{sub}\"\n"
        s += "set logscale x\nset xlabel 'live clones (log scale)'\nset ylabel 'MiB per clone'\n"
        s += "plot " + ", ".join(f"'{d}' using 1:2 with linespoints {style(i, t)} title '{t}'"
                                 for i, (d, t) in enumerate(series)) + "\n"
        if gnuplot(s, work):
            made.append(f"{prefix}-density.png")
    for m in made:
        os.replace(os.path.join(work, os.path.basename(m)), os.path.join(RESULTS, os.path.basename(m)))
    return made


def readme_update(base, md):
    """bench/README.md shows the latest full run: its table and the CDF plots, between markers."""
    path = os.path.join(TREE, "bench", "README.md")
    begin, end = "<!-- bench:latest:begin -->", "<!-- bench:latest:end -->"
    try:
        text = open(path).read()
    except OSError:
        return
    if begin not in text or end not in text:
        return
    body = md.replace("](" + base, "](results/" + base)
    body = body.replace("\n## kfork benchmark", "\n### kfork benchmark").replace("\n### ", "\n#### ")
    if body.startswith("## "):
        body = "#" + body
    body += f"\nFull results: [results/{base}.json](results/{base}.json), [results/{base}.md](results/{base}.md).\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(head + begin + "\n" + body + end + tail)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RUN_DIR")
    run = sys.argv[1]
    res = {"places": {}, "missing": {}}
    for name in ("host", "lab"):
        d = os.path.join(run, name)
        if any(os.path.exists(os.path.join(d, e)) for e in ("env.json", "env-user.json")):
            res["places"][name] = summarize_place(d)
        else:
            res["missing"][name] = ("the lab part did not run (LAB=0) or did not come up; see bench/run.sh output"
                                    if name == "lab" else "not run")
    if not res["places"]:
        sys.exit(f"report: nothing in {run}")
    first = res["places"].get("host") or res["places"]["lab"]
    res["machine"] = first["env"].get("hostname", "unknown")
    res["date"] = first["env"].get("date", "unknown")[:10]
    res["mode"] = first["env"].get("mode", "?")
    res["note"] = DISTORTION
    res["run_dir"] = os.path.relpath(run, TREE)
    os.makedirs(RESULTS, exist_ok=True)
    base = f"{res['date']}-{res['machine']}" + ("-quick" if res["mode"] == "quick" else "")
    res["plots"] = plots(res, run, base)
    res["plots"] = [os.path.basename(p) for p in res["plots"]]
    md = markdown(res)
    oneshot = os.path.join(run, "lab", "oneshot.md")
    if os.path.exists(oneshot):
        with open(oneshot) as f:
            md += "\n" + f.read()
        with open(os.path.join(run, "lab", "oneshot.json")) as f:
            res["oneshot"] = json.load(f)
        png = os.path.join(run, "lab", "oneshot.png")
        if os.path.exists(png):
            shutil.copy(png, os.path.join(RESULTS, base + "-oneshot.png"))
            res["plots"].append(base + "-oneshot.png")
    if res["plots"]:
        md += "\n" + "\n".join(f"![{p}]({p})" for p in res["plots"]) + "\n"
    with open(os.path.join(RESULTS, base + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(RESULTS, base + ".md"), "w") as f:
        f.write(md)
    if res["mode"] == "full":
        readme_update(base, md)
    print(md)
    print(f"report: wrote bench/results/{base}.json, .md and {len(res['plots'])} plots", file=sys.stderr)


if __name__ == "__main__":
    main()
