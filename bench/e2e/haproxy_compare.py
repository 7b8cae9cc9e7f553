#!/usr/bin/env python3
"""Real HAProxy under wrk load pushing its stick table to stickmeter: who is the bottleneck?

Starts stickmeter (fresh data directory, defaults: durable writes, audit on) and Debian's
/usr/sbin/haproxy on free loopback ports. HAProxy's frontend tracks the X-Tenant header into a
peers-section table storing gpc0,http_req_cnt,bytes_out_cnt and answers every request itself
(`http-request return`), so HAProxy, not a backend, is what wrk measures. wrk (a Lua script
picks the tenant at random among --keys) loads HAProxy for --duration seconds per run.

Per run it reports wrk's requests/s, the updates/s stickmeter received (the
stickmeter_peer_updates_received_total counter sampled before and after), the CPU of stickmeter,
HAProxy and wrk (/proc/PID/stat); then, with the load stopped, how long HAProxy's backlog takes
to drain into stickmeter (and at what rate), and whether stickmeter's http_req_cnt total over all
tenants then equals the sum of http_req_cnt in HAProxy's own table (`show table` on the stats
socket; the frontend's request counter is shown beside it). Usage:
  bench/e2e/haproxy_compare.py --build build/loadgen [--duration 15] [--keys 1000,100000]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HAPROXY = "/usr/sbin/haproxy"

LUA = """
local nkeys = 1000
function init(args)
  nkeys = tonumber(args[1]) or 1000
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end
function request()
  return wrk.format("GET", "/", {["X-Tenant"] = "tenant-" .. math.random(1, nkeys)})
end
"""


def haproxy_config(tmp, fe_port, local_peer_port, sm_peers_port):
    return f"""global
    stats socket {tmp}/haproxy.sock mode 600 level admin
    maxconn 4000

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

peers billing
    bind 127.0.0.1:{local_peer_port}
    server bench-lb1
    server stickmeter 127.0.0.1:{sm_peers_port}
    table usage type string len 64 size 2m expire 24d store gpc0,http_req_cnt,bytes_out_cnt

frontend www
    bind 127.0.0.1:{fe_port}
    http-request track-sc0 req.hdr(x-tenant) table billing/usage
    http-request sc-inc-gpc0(0)
    http-request return status 200 content-type text/plain string "ok"
"""


def haproxy_stat(sock_path, field):
    """One field of the `www` frontend row of `show stat`."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock_path)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = line.split(",")
        if row[0] == "www" and row[1] == "FRONTEND":
            return int(row[header.index(field)] or 0)
    return 0


def haproxy_table_total(sock_path):
    """Sum of http_req_cnt over every entry of HAProxy's own table (`show table`)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock_path)
        s.sendall(b"show table billing/usage\n")
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    total = 0
    for token in data.decode().split():
        if token.startswith("http_req_cnt="):
            total += int(token.split("=", 1)[1])
    return total


def updates_received(sm):
    return e2e_lib.metric_sum(e2e_lib.http_get(f"http://{sm.http}/metrics"),
                              "stickmeter_peer_updates_received_total")


def usage_total(sm, start_ms):
    url = (f"http://{sm.http}/api/v1/usage?table=/usage&metric=http_req_cnt"
           f"&from={start_ms - 60000}&to={int(time.time() * 1000) + 86400000}")
    rows = json.loads(e2e_lib.http_get(url, timeout=30))["rows"]
    return sum(r["total"] for r in rows), len(rows)


def one_run(args, keys):
    sm = e2e_lib.Stickmeter(args.stickmeter).start()
    tmp = sm.tmp
    fe_port, local_peer_port = e2e_lib.free_port(), e2e_lib.free_port()
    cfg = os.path.join(tmp, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(haproxy_config(tmp, fe_port, local_peer_port, sm.peers_port))
    lua = os.path.join(tmp, "tenants.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    start_ms = int(time.time() * 1000)
    hap = subprocess.Popen([HAPROXY, "-f", cfg, "-L", "bench-lb1", "-db"],
                           stdout=open(os.path.join(tmp, "haproxy.log"), "w"),
                           stderr=subprocess.STDOUT)
    try:
        # Wait for HAProxy's peer session to stickmeter.
        deadline = time.time() + 15
        while time.time() < deadline:
            peers = json.loads(e2e_lib.http_get(f"http://{sm.http}/api/v1/peers"))
            rows = peers if isinstance(peers, list) else peers.get("peers", [])
            if any(p.get("connected") for p in rows):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("HAProxy did not connect to stickmeter")
        u0 = updates_received(sm)
        cpu = {n: e2e_lib.cpu_ticks(p) for n, p in (("stickmeter", sm.proc.pid),
                                                    ("haproxy", hap.pid))}
        t0 = time.time()
        wrk = subprocess.Popen(
            ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s",
             "-s", lua, f"http://127.0.0.1:{fe_port}/", "--", str(keys)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(wrk.pid, 0)
        wall = time.time() - t0
        wrk_out = wrk.stdout.read()
        u1 = updates_received(sm)
        used = {n: 100.0 * (e2e_lib.cpu_ticks(p) - cpu[n]) / e2e_lib.TICKS / wall
                for n, p in (("stickmeter", sm.proc.pid), ("haproxy", hap.pid))}
        cpu_after = e2e_lib.cpu_ticks(sm.proc.pid)
        used["wrk"] = 100.0 * (usage.ru_utime + usage.ru_stime) / wall
        rps = 0.0
        for line in wrk_out.splitlines():
            if line.startswith("Requests/sec:"):
                rps = float(line.split()[1])
        # Exactness: once HAProxy has pushed its last changes and they are stored, the sum of
        # http_req_cnt over tenants equals what HAProxy's own table holds. How long that takes
        # after the load stops is HAProxy's backlog draining into stickmeter.
        sock = os.path.join(tmp, "haproxy.sock")
        haproxy_reqs = haproxy_stat(sock, "req_tot")
        table_total = haproxy_table_total(sock)
        total, rows = 0, 0
        t_end = time.time()
        deadline = t_end + 90
        while time.time() < deadline:
            total, rows = usage_total(sm, start_ms)
            if total == table_total:
                break
            time.sleep(0.5)
        converge_s = time.time() - t_end
        u2 = updates_received(sm)
        drain_cpu = 100.0 * (e2e_lib.cpu_ticks(sm.proc.pid) - cpu_after) / e2e_lib.TICKS / \
            max(converge_s, 1e-3)
        return {
            "table_total": table_total, "converge_s": converge_s,
            "drain_updates_per_s": (u2 - u1) / max(converge_s, 1e-3),
            "drain_cpu_pct": drain_cpu,
            "keys": keys, "connections": args.connections, "wrk_rps": rps,
            "updates_per_s": (u1 - u0) / wall, "updates": u1 - u0, "wall_s": wall,
            "cpu_pct": used, "haproxy_requests": haproxy_reqs, "stickmeter_total": total,
            "tenants": rows, "exact": total == table_total,
        }
    finally:
        hap.terminate()
        try:
            hap.wait(timeout=10)
        except subprocess.TimeoutExpired:
            hap.kill()
            hap.wait()
        sm.stop()
        sm.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build", "loadgen"))
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--keys", default="1000,100000")
    args = ap.parse_args()
    args.stickmeter = os.path.join(args.build, "app", "stickmeter")
    results = []
    print("| tenants | wrk requests/s | updates/s received under load | CPU % stickmeter | "
          "CPU % haproxy | CPU % wrk | backlog drained after load (s) | updates/s while "
          "draining (stickmeter CPU %) | stickmeter total = HAProxy table total "
          "(frontend requests) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for keys in (int(k) for k in args.keys.split(",")):
        r = one_run(args, keys)
        results.append(r)
        c = r["cpu_pct"]
        print(f"| {keys:,} | {r['wrk_rps']:,.0f} | {r['updates_per_s']:,.0f} | "
              f"{c['stickmeter']:.0f} | {c['haproxy']:.0f} | {c['wrk']:.0f} | "
              f"{r['converge_s']:.1f} | {r['drain_updates_per_s']:,.0f} "
              f"({r['drain_cpu_pct']:.0f}) | {r['stickmeter_total']:,} = "
              f"{r['table_total']:,}: {'yes' if r['exact'] else 'NO'} "
              f"({r['haproxy_requests']:,}) |", flush=True)
    with open(os.path.join(args.build, "haproxy_compare.jsonl"), "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    return 0 if all(r["exact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
