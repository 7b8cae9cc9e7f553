#!/usr/bin/env python3
"""Teaching benchmarks: the teach lag, and ingest throughput with teaching on and off.

Three runs per pass, each with a fresh `stickmeter serve` and data directory, fed by
stickmeter-loadgen as 3 HAProxy peers over 10,000 keys (3 counters each):

  plain      no teaching, --rate max: durable updates/s (the reference);
  teaching   --aggregate /loadgen --quota /loadgen and a default quota of gpc0 on every key,
             --rate max: durable updates/s, to compare with `plain`;
  lag        the same server, --rate 100000: the teach lag, from loadgen's push of an update to
             each peer receiving the taught sum (/loadgen.aggregate) that covers it.

With --repeat N the plan runs N times in turns; the summary gives each figure's median and range.
Usage: bench/e2e/teach.py --build build/loadgen [--duration 10] [--repeat 3]
"""

import argparse
import json
import os
import statistics
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402

PEERS, KEYS = 3, 10000


def put_default_quota(sm):
    body = json.dumps({"table": "/loadgen", "metric": "gpc0", "limit": 10**12,
                       "period": "month", "tz": "UTC"}).encode()
    req = urllib.request.Request(f"http://{sm.http}/api/v1/quotas", data=body, method="PUT",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            raise RuntimeError(f"PUT /api/v1/quotas answered {r.status}")


def one_run(binary, loadgen, teach, rate, duration, taught_table=None):
    extra = ["--aggregate", "/loadgen", "--quota", "/loadgen"] if teach else []
    sm = e2e_lib.Stickmeter(binary, extra).start()
    try:
        if teach:
            # The table exists once a peer announced it: a short warm-up run does that.
            e2e_lib.run_loadgen(loadgen, sm, PEERS, KEYS, 1000, 1, extra=["--key-prefix", "warm-"])
            put_default_quota(sm)
        lg_extra = ["--window", "1000000"] if rate == "max" else []
        if taught_table:
            lg_extra += ["--taught-table", taught_table]
        return e2e_lib.run_loadgen(loadgen, sm, PEERS, KEYS, rate, duration, extra=lg_extra)
    finally:
        sm.stop()
        sm.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    binary = os.path.join(args.build, "app", "stickmeter")
    loadgen = os.path.join(args.build, "bench", "loadgen", "stickmeter-loadgen")
    figures = {"plain_updates_per_s": [], "teaching_updates_per_s": [], "ratio": [],
               "teach_lag_p50_ms": [], "teach_lag_p99_ms": [], "teach_lag_max_ms": [],
               "push_to_ack_p99_ms_at_100k": []}
    for n in range(args.repeat):
        plain = one_run(binary, loadgen, False, "max", args.duration)
        teaching = one_run(binary, loadgen, True, "max", args.duration)
        lag = one_run(binary, loadgen, True, 100000, args.duration, "/loadgen.aggregate")
        for r in (plain, teaching, lag):
            if not r.get("ok"):
                sys.exit("a run failed: " + r.get("loadgen_text", ""))
        figures["plain_updates_per_s"].append(plain["updates_per_s"])
        figures["teaching_updates_per_s"].append(teaching["updates_per_s"])
        figures["ratio"].append(teaching["updates_per_s"] / plain["updates_per_s"])
        for q in ("p50", "p99", "max"):
            figures[f"teach_lag_{q}_ms"].append(lag["teach_lag_ms"][q])
        figures["push_to_ack_p99_ms_at_100k"].append(lag["lag_ms"]["p99"])
        print(f"pass {n + 1}: plain {plain['updates_per_s']:.0f}/s, teaching "
              f"{teaching['updates_per_s']:.0f}/s, teach lag p99 {lag['teach_lag_ms']['p99']:.1f} "
              f"ms at 100k/s (push-to-ACK p99 {lag['lag_ms']['p99']:.1f} ms)", file=sys.stderr)
    print("| figure | median | range |\n|---|---:|---|")
    for name, values in figures.items():
        fmt = "{:.2f}" if name == "ratio" else "{:.1f}" if name.endswith("_ms") else "{:.0f}"
        print(f"| {name} | {fmt.format(statistics.median(values))} | "
              f"{fmt.format(min(values))} - {fmt.format(max(values))} |")


if __name__ == "__main__":
    main()
