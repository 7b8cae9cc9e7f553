#!/usr/bin/env python3
"""Interleaved runs of several stickmeter servers (builds or flags) under the same load.

This box's speed drifts by a quarter from one quarter-hour to the next, so two sweeps taken
apart do not compare builds. This runs them in turns instead: for each round and key count,
one run per server, each a fresh `stickmeter serve` fed by stickmeter-loadgen at max rate or
at --rate (4 peers, 3 counters, 1,000,000 unacknowledged updates allowed). It prints one line
per run: acknowledged updates/s, push-to-ACK p50 / p99 / max, and during the load how long
changes waited in the journal (the store's journal lag, sampled every 200 ms: median / max) and
how long a usage query over every key took (every 2 s or so: median / max).

A server is LABEL=BINARY, optionally followed by serve flags after a comma:
  bench/e2e/compare.py --loadgen build/rel/bench/loadgen/stickmeter-loadgen \\
      --keys 1000,10000,100000 --rounds 2 \\
      before=old/build/app/stickmeter \\
      default=build/rel/app/stickmeter \\
      lag0=build/rel/app/stickmeter,--apply-delay-ms=0
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402


def parse_server(spec):
    label, sep, rest = spec.partition("=")
    if not sep or not rest:
        sys.exit(f"server {spec!r}: expected LABEL=BINARY[,FLAG...]")
    binary, *flags = rest.split(",")
    if not os.access(binary, os.X_OK):
        sys.exit(f"server {label}: {binary} is not an executable")
    return label, binary, flags


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--keys", default="10000", help="comma list of key counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--rate", default="max", help="updates/s in total, or max")
    ap.add_argument("servers", nargs="+", metavar="LABEL=BINARY[,FLAG...]")
    args = ap.parse_args()
    servers = [parse_server(s) for s in args.servers]
    keys = [int(k) for k in args.keys.split(",")]
    print("| round | keys | server | acked updates/s | push-to-ACK p50 / p99 / max ms | "
          "journal wait ms (median / max) | usage, all keys, ms (median / max) |")
    print("|---|---|---|---|---|---|---|")
    for rnd in range(1, args.rounds + 1):
        for k in keys:
            for label, binary, flags in servers:
                sm = e2e_lib.Stickmeter(binary, extra_args=flags).start()
                try:
                    r = e2e_lib.run_loadgen(args.loadgen, sm, 4, k, args.rate, args.duration,
                                            extra=["--window", "1000000", "--drain-timeout", "60"])
                finally:
                    sm.stop()
                    sm.cleanup()
                ok = "" if r["loadgen_exit"] == 0 else " (loadgen failed)"
                lat = r["lag_ms"]
                print(f"| {rnd} | {k:,} | {label} | {r['updates_per_s']:,.0f}{ok} | "
                      f"{lat['p50']:.2f} / {lat['p99']:.2f} / {lat['max']:.1f} | "
                      f"{e2e_lib.fmt_trail(r['journal_lag_ms'])} | "
                      f"{e2e_lib.fmt_trail(r['usage_all_keys_ms'])} |",
                      flush=True)


if __name__ == "__main__":
    main()
