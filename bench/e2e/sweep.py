#!/usr/bin/env python3
"""End-to-end ingest figures: a real stickmeter fed by stickmeter-loadgen over loopback.

Each run starts `stickmeter serve` on a fresh data directory (durable writes and the audit
trail on: the defaults), runs the load generator for a few seconds, then stops the server with
SIGTERM and measures its data directory. An update is one entry update message carrying 3
counters (3 counter values). HAProxy pushes without waiting for ACKs, as fast as we read; the
peers model that by keeping up to 1,000,000 updates unacknowledged (at max rate the lag is then
queueing time, and the drain after the push may take seconds). Runs:
  headline  max rate, 4 peers, 10k keys                     -> sustained durable updates/s
  latency   1k, 10k, 33.3k, 100k updates/s, 4 peers, 100k keys -> push-to-ACK p50/p99/max
  keys      max rate, 4 peers, 1k / 10k / 100k / 1M keys     -> scaling with keys
  peers     max rate, 10k keys, 1 / 4 / 16 / 64 peers        -> scaling with connections
Every run also measures ack-to-visible in /api/v1/usage (after the load), during the load how
long changes wait in the journal before they are written out (the store's journal lag, sampled
every 200 ms) and how long a usage query over every key takes (every 2 s or so), the server's CPU
(process and busiest threads), VmHWM and disk bytes per million updates.

Before each run a probe times 500 appends + fdatasync() beside the data directory, and during
it the machine's I/O pressure (/proc/pressure/io: the share of time some task waited for the
disk) is recorded: the fixed-rate p99s follow the disk, which on a shared virtual disk varies
from minute to minute. With --repeat N the whole plan runs N times in turns (so that drift of the
machine spreads over every run) and summary.md gives each run's median and range over the
passes, with the probe's figures beside them.

Writes results.jsonl, table.md (and summary.md) into --out, and a PNG plot (gnuplot; installed
with apt-get if missing) into --plot. Takes about four minutes a pass. Usage:
  bench/e2e/sweep.py --build build/loadgen [--duration 10] [--repeat N] [--out DIR] [--plot FILE]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def one_run(args, label, peers, keys, rate):
    sm = e2e_lib.Stickmeter(args.stickmeter, extra_args=args.serve_arg)
    fsync = e2e_lib.fsync_probe(sm.tmp)
    sm.start()
    try:
        r = e2e_lib.run_loadgen(args.loadgen, sm, peers, keys, rate, args.duration,
                                extra=["--window", "1000000", "--drain-timeout", "60"])
        r["vm_hwm_mib"] = e2e_lib.vm_hwm_kib(sm.proc.pid) / 1024.0
        disk, apparent = sm.stop()
        r["disk_mib"] = disk / 2**20
        r["disk_apparent_mib"] = apparent / 2**20
        r["label"] = label
        r["fsync_probe_ms"] = fsync
        millions = r["acked"] / 1e6 if r["acked"] else 0
        r["disk_mib_per_m"] = r["disk_mib"] / millions if millions else 0
        r["disk_apparent_mib_per_m"] = r["disk_apparent_mib"] / millions if millions else 0
        r["rss_mib_per_m"] = r["vm_hwm_mib"] / millions if millions else 0
        if r["loadgen_exit"] != 0:
            print(f"  loadgen failed: {r['loadgen_text']}", file=sys.stderr)
        return r
    finally:
        sm.stop()
        sm.cleanup()


def fmt_row(r):
    vis = r["ack_to_visible_ms"]
    threads = ", ".join(f"{t['cpu_pct']:.0f}" for t in r["server_threads"][:3])
    label = r["label"] + (f" (pass {r['pass']})" if r.get("passes", 1) > 1 else "")
    return (f"| {label} | {r['peers']} | {r['keys']:,} | {r['target_rate']} | "
            f"{r['updates_per_s']:,.0f} | {r['updates_per_s'] * r['counters']:,.0f} | "
            f"{r['lag_ms']['p50']:.2f} | {r['lag_ms']['p99']:.2f} | "
            f"{r['lag_ms']['max']:.1f} | {'-' if vis is None else f'{vis:.1f}'} | "
            f"{e2e_lib.fmt_trail(r.get('journal_lag_ms'))} | "
            f"{e2e_lib.fmt_trail(r.get('usage_all_keys_ms'))} | "
            f"{r['server_cpu_pct']:.0f} ({threads}) | {r['loadgen_cpu_pct']:.0f} | "
            f"{r['vm_hwm_mib']:.0f} | {r['disk_mib_per_m']:.0f} / {r['disk_apparent_mib_per_m']:.0f} | "
            f"{'yes' if r['ok'] else 'NO'} |")


HEADER = ("| run | peers | keys | target/s | acked updates/s | counter values/s | lag p50 ms | "
          "lag p99 ms | "
          "lag max ms | ack→visible ms | journal wait, under load ms (median / max) | "
          "usage of all keys, under load ms (median / max) | "
          "stickmeter CPU % (top threads) | loadgen CPU % | "
          "VmHWM MiB | disk MiB per M updates (du / apparent) | all acked |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def spread(values, fmt):
    """`median (min-max)` of a list of numbers."""
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


SUMMARY_HEADER = ("| run | passes | acked updates/s: median (min-max) | lag p50 ms: median | "
                  "lag p99 ms: median (min-max) | lag max ms: median (min-max) | "
                  "fsync probe before the run, p99 / max ms: median (worst max) | "
                  "time some task waited for I/O, % of the run: median (max) | "
                  "stickmeter CPU µs per update: median | "
                  "usage of all keys under load, ms: median (max) |\n"
                  "|---|---|---|---|---|---|---|---|---|---|")


def cpu_us_per_update(r):
    return r["server_cpu_pct"] / 100 / r["updates_per_s"] * 1e6 if r["updates_per_s"] else 0


def fmt_pressure(runs):
    io = [r["io_pressure_pct"] for r in runs if r.get("io_pressure_pct") is not None]
    return f"{median(io):.1f} ({max(io):.1f})" if io else "-"


def fmt_usage(runs):
    """Median and worst of the usage queries over every key timed during the runs."""
    medians = [r["usage_all_keys_ms"]["median"] for r in runs
               if (r.get("usage_all_keys_ms") or {}).get("median") is not None]
    worst = [r["usage_all_keys_ms"]["max"] for r in runs
             if (r.get("usage_all_keys_ms") or {}).get("max") is not None]
    return f"{median(medians):.0f} ({max(worst):.0f})" if medians else "-"


def passes_by_label(results):
    """{label: [its results, one per pass]}, in the plan's order."""
    out = {}
    for r in results:
        out.setdefault(r["label"], []).append(r)
    return out


def summary_rows(results):
    """One row per run of the plan: its passes' median and range."""
    rows = []
    for label, rs in passes_by_label(results).items():
        probes = [r["fsync_probe_ms"] for r in rs]
        rows.append(
            f"| {label} | {len(rs)} | {spread([r['updates_per_s'] for r in rs], '{:,.0f}')} | "
            f"{median([r['lag_ms']['p50'] for r in rs]):.2f} | "
            f"{spread([r['lag_ms']['p99'] for r in rs], '{:.1f}')} | "
            f"{spread([r['lag_ms']['max'] for r in rs], '{:.0f}')} | "
            f"{median([p['p99'] for p in probes]):.2f} / {median([p['max'] for p in probes]):.1f} "
            f"({max(p['max'] for p in probes):.1f}) | {fmt_pressure(rs)} | "
            f"{median([cpu_us_per_update(r) for r in rs]):.2f} | {fmt_usage(rs)} |")
    return rows


def ensure_gnuplot():
    if shutil.which("gnuplot"):
        return True
    print("gnuplot missing: apt-get install -y gnuplot-nox", file=sys.stderr)
    cmd = ["apt-get", "install", "-y", "gnuplot-nox"]
    if os.geteuid() != 0:
        cmd = ["sudo"] + cmd
    subprocess.run(cmd, check=False)
    return shutil.which("gnuplot") is not None


def plot(results, out_dir, png):
    # With several passes, each point is the pass with the median rate.
    picked = [sorted(rs, key=lambda r: r["updates_per_s"])[len(rs) // 2]
              for rs in passes_by_label(results).values()]
    keys = sorted((r for r in picked if r["label"].startswith("keys")), key=lambda r: r["keys"])
    peers = sorted((r for r in picked if r["label"].startswith("peers")),
                   key=lambda r: r["peers"])
    if not keys or not peers:
        print("the plot needs the keys and peers runs: skipped", file=sys.stderr)
        return
    if not ensure_gnuplot():
        print("no gnuplot: plot skipped", file=sys.stderr)
        return
    kdat, pdat = os.path.join(out_dir, "keys.dat"), os.path.join(out_dir, "peers.dat")
    with open(kdat, "w") as f:
        for r in keys:
            f.write(f"{r['keys']} {r['updates_per_s'] / 1e3:.1f} {r['vm_hwm_mib']:.1f} "
                    f"{r['disk_apparent_mib_per_m']:.2f} {r['lag_ms']['p99']:.2f}\n")
    with open(pdat, "w") as f:
        for r in peers:
            f.write(f"{r['peers']} {r['updates_per_s'] / 1e3:.1f} {r['vm_hwm_mib']:.1f} "
                    f"{r['disk_apparent_mib_per_m']:.2f} {r['lag_ms']['p99']:.2f}\n")
    script = f"""
set terminal pngcairo size 1100,800 font ",10"
set output "{png}"
set multiplot layout 2,2 title "stickmeter durable ingest at max rate (2 cores, loadgen on the same machine)"
set grid
set logscale x
set xlabel "keys (4 peers)"
set ylabel "acked updates/s (thousands)"
set yrange [0:*]
plot "{kdat}" using 1:2 with linespoints lw 2 pt 7 title "updates/s"
set xlabel "peer connections (10k keys)"
plot "{pdat}" using 1:2 with linespoints lw 2 pt 7 title "updates/s"
set xlabel "keys (4 peers)"
set ylabel "MiB"
plot "{kdat}" using 1:3 with linespoints lw 2 pt 7 title "VmHWM", \\
     "{kdat}" using 1:4 with linespoints lw 2 pt 5 title "disk per million updates (apparent)"
set xlabel "peer connections (10k keys)"
set ylabel "push-to-ACK p99 at max rate (ms)"
plot "{pdat}" using 1:5 with linespoints lw 2 pt 7 title "p99 lag"
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    print(f"plot: {png}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build", "loadgen"))
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--out", default=None, help="results directory (default BUILD/e2e)")
    ap.add_argument("--plot", default=os.path.join(REPO, "docs", "img", "e2e-scaling.png"))
    ap.add_argument("--only", default="", help="comma list of run groups to do")
    ap.add_argument("--repeat", type=int, default=1,
                    help="passes over the plan, in turns (summary.md: median and range)")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="an extra argument for `stickmeter serve` (repeat for more), "
                         "e.g. --serve-arg=--apply-delay-ms=0")
    args = ap.parse_args()
    args.stickmeter = os.path.join(args.build, "app", "stickmeter")
    args.loadgen = os.path.join(args.build, "bench", "loadgen", "stickmeter-loadgen")
    for b in (args.stickmeter, args.loadgen):
        if not os.access(b, os.X_OK):
            sys.exit(f"missing {b}: build the stickmeter and loadgen targets first")
    out = args.out or os.path.join(args.build, "e2e")
    os.makedirs(out, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)

    plan = [("headline", "headline max", 4, 10_000, "max"),
            ] + [("latency", f"latency {r / 1000:g}k/s", 4, 100_000, str(r))
                 for r in (1_000, 10_000, 33_333, 100_000)]
    # Push-to-ACK at 100k updates/s depends on how often a key repeats within a group commit.
    plan += [("latency-keys", f"latency 100k/s, {k:,} keys", 4, k, "100000")
             for k in (100, 1_000, 10_000)]
    plan += [("keys", f"keys {k:,}", 4, k, "max") for k in (1_000, 10_000, 100_000, 1_000_000)]
    plan += [("peers", f"peers {p}", p, 10_000, "max") for p in (1, 4, 16, 64)]
    if args.repeat < 1:
        sys.exit("--repeat: must be at least 1")
    only = set(filter(None, args.only.split(",")))
    plan = [run for run in plan if not only or run[0] in only]
    results = []
    with open(os.path.join(out, "results.jsonl"), "w") as f:
        for n in range(1, args.repeat + 1):
            for group, label, peers, keys, rate in plan:
                print(f"run: {label}" + (f", pass {n}" if args.repeat > 1 else ""),
                      file=sys.stderr, flush=True)
                r = one_run(args, label, peers, keys, rate)
                r["pass"], r["passes"] = n, args.repeat
                print("  " + r["loadgen_text"].replace("\n", "\n  "), file=sys.stderr, flush=True)
                results.append(r)
                f.write(json.dumps(r) + "\n")
                f.flush()
    table = HEADER + "\n" + "\n".join(fmt_row(r) for r in results) + "\n"
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table)
    print(table)
    if args.repeat > 1:
        summary = SUMMARY_HEADER + "\n" + "\n".join(summary_rows(results)) + "\n"
        with open(os.path.join(out, "summary.md"), "w") as f:
            f.write(summary)
        print(summary)
    if any(r["label"].startswith("keys") for r in results):
        plot(results, out, args.plot)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
