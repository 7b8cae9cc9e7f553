#!/usr/bin/env python3
"""Queries never starve the peers: a steady peer's push-to-ACK with and without dashboards.

One `stickmeter serve` (fresh data directory) first takes --keys keys (stickmeter-loadgen at
full speed, keys of their own), then a steady load of 4 peers at --rate updates/s runs twice: alone, and while 4
clients query the usage of every key back to back (`GET /api/v1/usage` without `key`, the Usage
page's query, over this month so far). Prints loadgen's push-to-ACK p50/p99/max for both, and
how many every-key queries completed and how long they took. Before the steady runs, times one
every-key query alone over the --keys keys: this month so far (rollups only), whole minutes
around the load, and both edges inside the load's seconds (every key's audit events read).

Usage: bench/e2e/queries.py --build build/test [--keys 200000] [--rate 10000] [--duration 15]
"""

import argparse
import os
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402


def steady(loadgen, sm, keys, rate, duration, clients, prefix):
    stop = threading.Event()
    times = []
    now_ms = int(time.time() * 1000)
    month_start = now_ms - now_ms % 86_400_000 - 30 * 86_400_000
    url = (f"http://{sm.http}/api/v1/usage?table=/loadgen&metric=gpc0"
           f"&from={month_start}&to={now_ms + 3_600_000}")

    def query():
        while not stop.is_set():
            start = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=60) as r:
                    r.read()
                times.append(time.monotonic() - start)
            except OSError:
                time.sleep(0.1)  # 503 past --max-queries: a dashboard retries

    threads = [threading.Thread(target=query) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        result = e2e_lib.run_loadgen(loadgen, sm, 4, keys, rate, duration,
                                     extra=["--key-prefix", prefix], sample_usage=False)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return result, times


def time_alone(sm, frm, to, runs=5):
    """Median, max and first seconds of one every-key usage query over [frm, to), none beside
    it (the first reads what no query has read since the load)."""
    url = (f"http://{sm.http}/api/v1/usage?table=/loadgen&metric=gpc0&from={frm}&to={to}")
    times = []
    for _ in range(runs):
        start = time.monotonic()
        with urllib.request.urlopen(url, timeout=60) as r:
            r.read()
        times.append(time.monotonic() - start)
    return statistics.median(times), max(times), times[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--duration", type=float, default=15)
    args = ap.parse_args()
    binary = os.path.join(args.build, "app", "stickmeter")
    loadgen = os.path.join(args.build, "bench", "loadgen", "stickmeter-loadgen")
    sm = e2e_lib.Stickmeter(binary).start()
    try:
        # Every key once, so that every-key queries read all of them. Keys of their own: the
        # steady runs' loadgen checks that what it pushed (from 1 again) is counted.
        warm_from = int(time.time() * 1000)
        e2e_lib.run_loadgen(loadgen, sm, 4, args.keys, "max", max(3.0, args.keys / 100_000),
                            extra=["--window", "1000000", "--key-prefix", "warm-"])
        warm_to = int(time.time() * 1000)
        # Let the warm-up's backlog drain (journal written out, memtables flushed) first.
        deadline = time.time() + 60
        while time.time() < deadline:
            metrics = e2e_lib.http_get(f"http://{sm.http}/metrics")
            if e2e_lib.metric_sum(metrics, "stickmeter_store_journal_backlog_bytes") == 0:
                break
            time.sleep(0.5)
        # ... and RocksDB's compactions of it finish, so that every run times the same layout.
        while time.time() < deadline:
            metrics = e2e_lib.http_get(f"http://{sm.http}/metrics")
            if (e2e_lib.metric_sum(metrics, "stickmeter_store_running_compactions") == 0 and
                    e2e_lib.metric_sum(metrics, "stickmeter_store_pending_compaction_bytes") == 0):
                break
            time.sleep(0.5)
        time.sleep(5)
        now_ms = int(time.time() * 1000)
        month = now_ms - now_ms % 86_400_000 - 30 * 86_400_000
        print("| every-key query alone | median / max ms | first ms |\n|---|---|---:|")
        for name, frm, to in (
                ("this month so far", month + 17, now_ms + 60_000 + 17),
                ("whole minutes around the load", warm_from - warm_from % 60_000,
                 warm_to - warm_to % 60_000 + 60_000),
                ("edges inside the load's seconds", warm_from + 1_500, warm_to - 500)):
            median, worst, first = time_alone(sm, frm, to)
            print(f"| {name} | {median * 1000:.0f} / {worst * 1000:.0f} | {first * 1000:.0f} |",
                  flush=True)
        print("| queries | push-to-ACK p50 / p99 / max ms | every-key queries done | "
              "query time median / max s |\n|---|---|---:|---|")
        for clients in (0, 4):
            r, times = steady(loadgen, sm, args.keys, args.rate, args.duration, clients,
                              f"steady{clients}-")
            if not r.get("ok"):
                sys.exit("a run failed: " + r.get("loadgen_text", ""))
            lag = r["lag_ms"]
            q = (f"{statistics.median(times):.2f} / {max(times):.2f}" if times else "-")
            print(f"| {clients} | {lag['p50']:.1f} / {lag['p99']:.1f} / {lag['max']:.1f} | "
                  f"{len(times)} | {q} |", flush=True)
    finally:
        sm.stop()
        sm.cleanup()


if __name__ == "__main__":
    main()
