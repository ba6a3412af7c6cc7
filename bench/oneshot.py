#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""oneshot.py - summarise bench/oneshot.sh: p50/p99 per mode and phase, the issue's ratios, a plot.

    bench/oneshot.py DIR    reads DIR/oneshot-runs.jsonl and DIR/oneshot-steady.json,
                            writes DIR/oneshot.json, DIR/oneshot.md and DIR/oneshot.png
"""
import json
import os
import subprocess
import sys

MODES = ("user", "kmod", "kmod-kept", "process")
PHASES = ("open_us", "spawn_us", "exec_us", "rest_us")


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(len(s) * p / 100))] if s else None


def main():
    d = sys.argv[1]
    runs = [json.loads(line) for line in open(os.path.join(d, "oneshot-runs.jsonl")) if line.strip()]
    steady_in = json.load(open(os.path.join(d, "oneshot-steady.json")))
    steady = {s["backend"]: s for s in steady_in["steady"]}
    res = {"n": steady_in["n"], "load_s": steady_in["load_s"], "steady": steady, "modes": {}}
    for m in MODES:
        rs = [r for r in runs if r["mode"] == m]
        for r in rs:
            r["rest_us"] = r["wall_us"] - r["open_us"] - r["spawn_us"] - r["exec_us"]
            r["first_us"] = r["spawn_us"] + r["exec_us"]
        res["modes"][m] = {
            "n": len(rs), "failed": sum(1 for r in rs if not r["ok"]),
            "kept": sum(1 for r in rs if r["kept"]),
            **{k: {"p50": pct([r[k] for r in rs], 50), "p99": pct([r[k] for r in rs], 99)}
               for k in ("wall_us",) + PHASES + ("first_us",)},
        }
    M = res["modes"]

    def ratio(a, b):
        return round(a / b, 2) if a and b else None
    res["ratios"] = {
        "kept_wall_over_steady_kmod_p50": ratio(M["kmod-kept"]["wall_us"]["p50"], steady["kmod"]["p50_us"]),
        "kept_first_clone_over_steady_kmod_p50": ratio(M["kmod-kept"]["first_us"]["p50"], steady["kmod"]["p50_us"]),
        "kept_wall_over_user_wall_p50": ratio(M["kmod-kept"]["wall_us"]["p50"], M["user"]["wall_us"]["p50"]),
        "kept_wall_over_user_wall_p99": ratio(M["kmod-kept"]["wall_us"]["p99"], M["user"]["wall_us"]["p99"]),
        "kmod_wall_over_user_wall_p50": ratio(M["kmod"]["wall_us"]["p50"], M["user"]["wall_us"]["p50"]),
        "kept_wall_minus_process_floor_over_steady_kmod_p50": ratio(
            (M["kmod-kept"]["wall_us"]["p50"] or 0) - (M["process"]["wall_us"]["p50"] or 0), steady["kmod"]["p50_us"]),
        "user_wall_over_steady_user_p50": ratio(M["user"]["wall_us"]["p50"], steady["user"]["p50_us"]),
    }
    json.dump(res, open(os.path.join(d, "oneshot.json"), "w"), indent=1)

    def ms(v):
        return "n/a" if v is None else f"{v / 1000:.1f}"
    out = [f"### One-shot `kfork run -t python.tmpl -- 'print(1+1)'`, {res['n']} processes per mode, interleaved", "",
           "Wall: the whole process as a shell sees it. open: kf_template_open (read + check + register the "
           "file, or attach to the kept template). rest: process start, teardown and exit. "
           "ms, p50 / p99.", "",
           "| mode | wall | open | spawn | exec | rest | first clone (spawn+exec) | failed |",
           "|---|---|---|---|---|---|---|---|"]
    for m in MODES:
        x = M[m]
        cells = [f"{ms(x[k]['p50'])} / {ms(x[k]['p99'])}" for k in ("wall_us",) + PHASES + ("first_us",)]
        out.append(f"| {m} | " + " | ".join(cells) + f" | {x['failed']} |")
    out += ["", f"Steady state in one process (`kfork run -n {res['n']}`), spawn+exec round trip p50 / p99: "
            f"user {ms(steady['user']['p50_us'])} / {ms(steady['user']['p99_us'])} ms, "
            f"kmod {ms(steady['kmod']['p50_us'])} / {ms(steady['kmod']['p99_us'])} ms. "
            f"`kfork template load` took {res['load_s']:.2f} s.", ""]
    r = res["ratios"]
    out += ["| ratio (p50 unless said) | measured | target |", "|---|---|---|",
            f"| kmod-kept wall / steady kmod round trip | {r['kept_wall_over_steady_kmod_p50']} | <= 1.5 |",
            f"| (kmod-kept wall - process floor) / steady kmod round trip | {r['kept_wall_minus_process_floor_over_steady_kmod_p50']} | |",
            f"| kmod-kept first clone / steady kmod round trip | {r['kept_first_clone_over_steady_kmod_p50']} | <= 1.2 |",
            f"| kmod-kept wall / user wall | {r['kept_wall_over_user_wall_p50']} (p99 {r['kept_wall_over_user_wall_p99']}) | <= 0.5 |",
            f"| kmod (file loaded per process) wall / user wall | {r['kmod_wall_over_user_wall_p50']} | |",
            f"| user wall / steady user round trip | {r['user_wall_over_steady_user_p50']} | |", ""]
    open(os.path.join(d, "oneshot.md"), "w").write("\n".join(out) + "\n")

    with open(os.path.join(d, "oneshot.dat"), "w") as f:
        for m in MODES:
            f.write(m + " " + " ".join(f"{(M[m][k]['p50'] or 0) / 1000:.2f}" for k in PHASES) + "\n")
    script = ("set terminal pngcairo noenhanced size 900,500 font 'DejaVu Sans,10'\n"
              "set output 'oneshot.png'\nset title 'one-shot kfork run, p50 per phase (ms)'\n"
              "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.8 border -1\n"
              "set boxwidth 0.6\nset ylabel 'ms'\nset key outside right\nset grid y\n"
              "plot 'oneshot.dat' using 2:xtic(1) title 'open', '' using 3 title 'spawn', "
              "'' using 4 title 'exec', '' using 5 title 'rest (start, teardown, exit)'\n")
    subprocess.run(["gnuplot"], input=script, text=True, cwd=d, check=False)
    print("\n".join(out))


if __name__ == "__main__":
    main()
