#!/usr/bin/env python3
"""The ClickHouse sink under load: does shipping keep up with ingest, and how far behind is it?

Starts Debian's clickhouse-server on loopback ports (temporary config and data directory, as the
tests do), a `stickmeter serve --sink-clickhouse` and stickmeter-loadgen pushing at a fixed
rate or `max`. While the load runs it samples stickmeter_sink_clickhouse_lag_milliseconds (the
age of the oldest event ClickHouse has not confirmed) every 100 ms; after it, it times how long
the backlog takes to drain, then checks that ClickHouse holds every audit event once.

  bench/e2e/clickhouse_sink.py --build build/loadgen --rate 100000 --keys 10000 --duration 20
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import Stickmeter, free_port, http_get, metric_sum  # noqa: E402

PASSWORD = "bench-password"


class ClickHouse:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="stickmeter-ch-bench-")
        self.port = free_port()
        d = self.dir
        with open(os.path.join(d, "config.xml"), "w") as f:
            f.write(f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{self.port}</http_port>
  <tcp_port>{free_port()}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
</yandex>
""")
        with open(os.path.join(d, "users.xml"), "w") as f:
            f.write(f"""<?xml version="1.0"?>
<yandex><profiles><default></default></profiles>
<users><default><password>{PASSWORD}</password><networks><ip>127.0.0.1</ip></networks>
<profile>default</profile><quota>default</quota></default></users>
<quotas><default></default></quotas></yandex>
""")
        with open(os.path.join(d, "password"), "w") as f:
            f.write(PASSWORD + "\n")
        self.log = open(os.path.join(d, "clickhouse.log"), "w")
        self.proc = subprocess.Popen(
            ["/usr/sbin/clickhouse-server", f"--config-file={d}/config.xml"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.query("SELECT 1").strip() == "1":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("clickhouse-server did not start")

    def query(self, sql):
        url = (f"http://127.0.0.1:{self.port}/?user=default&password={PASSWORD}&query="
               + urllib.parse.quote(sql))
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.read().decode()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", required=True, help="build dir with app/stickmeter and the loadgen")
    ap.add_argument("--rate", default="100000", help="entry updates/s, or max")
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--peers", type=int, default=4)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--no-sink", action="store_true",
                    help="the same run without the sink, for comparison")
    args = ap.parse_args()

    ch = ClickHouse()
    sink_args = [] if args.no_sink else [
        "--sink-clickhouse", f"http://127.0.0.1:{ch.port}/",
        "--sink-clickhouse-password-file", os.path.join(ch.dir, "password")]
    sm = Stickmeter(os.path.join(args.build, "app/stickmeter"), sink_args)
    try:
        sm.start()
        loadgen = os.path.join(args.build, "bench/loadgen/stickmeter-loadgen")
        lg = subprocess.Popen(
            [loadgen, "--target", sm.peers, "--peers", str(args.peers), "--keys", str(args.keys),
             "--counters", "3", "--rate", str(args.rate), "--duration", str(args.duration),
             "--http", sm.http], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lags = []
        while lg.poll() is None:
            try:
                lags.append(metric_sum(http_get(f"http://{sm.http}/metrics"),
                                       "stickmeter_sink_clickhouse_lag_milliseconds"))
            except OSError:
                pass
            time.sleep(0.1)
        out, err = lg.communicate()
        load_end = time.monotonic()
        result = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
        drained = None
        while not args.no_sink and time.monotonic() - load_end < 120:
            m = http_get(f"http://{sm.http}/metrics")
            if (metric_sum(m, "stickmeter_sink_clickhouse_backlog_events") == 0 and
                    metric_sum(m, "stickmeter_sink_clickhouse_lag_milliseconds") == 0):
                drained = time.monotonic() - load_end
                break
            time.sleep(0.05)
        m = http_get(f"http://{sm.http}/metrics")
        rows = 0 if args.no_sink else int(
            ch.query("SELECT count() FROM default.stickmeter_events FINAL"))
        deltas = int(metric_sum(m, "stickmeter_deltas_written_total"))
        print(json.dumps({
            "rate": args.rate, "keys": args.keys, "peers": args.peers,
            "updates_per_s": result.get("updates_per_s"),
            "push_to_ack_ms_p99": result.get("lag_ms", {}).get("p99"),
            "sink_lag_ms_p50": percentile(lags, 50), "sink_lag_ms_p99": percentile(lags, 99),
            "sink_lag_ms_max": max(lags) if lags else None, "samples": len(lags),
            "drain_after_load_s": drained, "clickhouse_rows_final": rows,
            "deltas_committed": deltas, "all_shipped_once": rows == deltas,
            "loadgen": {k: v for k, v in result.items() if not isinstance(v, (list, dict))},
        }, indent=1))
    finally:
        sm.stop()
        sm.cleanup()
        ch.stop()


if __name__ == "__main__":
    main()
