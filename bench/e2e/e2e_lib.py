"""Shared helpers for the end-to-end benchmark scripts in bench/e2e/.

Starts a real `stickmeter serve` on free loopback ports with a fresh data directory, runs
stickmeter-loadgen against it, and samples the server's CPU (/proc/PID/stat and per thread),
peak RSS (VmHWM) and the size of its data directory. Standard library only.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    """utime + stime of a whole process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def thread_ticks(pid):
    """{tid: (name, utime + stime)} for every thread of a process."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[int(tid)] = (name, int(fields[11]) + int(fields[12]))
    return out


def pressure_us(resource):
    """Linux pressure stall information: microseconds in which at least one task waited for
    `resource` ("io", "cpu", "memory"), since boot; None where the kernel has no PSI."""
    try:
        with open(f"/proc/pressure/{resource}") as f:
            some = f.readline().split()
    except OSError:
        return None
    return int(some[-1].split("=")[1])


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def dir_bytes(path):
    """(allocated bytes as du counts them, apparent bytes) of a directory tree."""
    allocated = apparent = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return allocated, apparent


def fsync_probe(directory, syncs=500, size=8192):
    """The disk's fsync latency where `directory` is: appends `size` bytes and fdatasync()s,
    `syncs` times, as a WAL with one commit per sync does. Returns p50/p99/max in ms."""
    fd, path = tempfile.mkstemp(prefix="fsync-probe-", dir=directory)
    lat = []
    try:
        block = b"x" * size
        for _ in range(syncs):
            os.write(fd, block)
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1000.0)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    return {"p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, len(lat) * 99 // 100)],
            "max": lat[-1]}


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def metric_sum(metrics_text, name):
    """Sum of every sample of one Prometheus metric (all label sets)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Stickmeter:
    """A `stickmeter serve` on free loopback ports with its own temporary data directory."""

    def __init__(self, binary, extra_args=(), data_dir=None):
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="stickmeter-e2e-")
        self.data = data_dir or os.path.join(self.tmp, "data")
        self.http_port = free_port()
        self.peers_port = free_port()
        self.log_path = os.path.join(self.tmp, "serve.log")
        self.extra_args = list(extra_args)
        self.proc = None

    @property
    def http(self):
        return f"127.0.0.1:{self.http_port}"

    @property
    def peers(self):
        return f"127.0.0.1:{self.peers_port}"

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data", self.data, "--http", self.http,
             "--peers-listen", self.peers, "--name", "stickmeter"] + self.extra_args,
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("stickmeter exited: " + open(self.log_path).read()[-2000:])
            try:
                http_get(f"http://{self.http}/api/v1/health", timeout=0.5)
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("stickmeter did not become healthy")

    def stop(self):
        """SIGTERM (flush and close RocksDB), then the data directory's (du, apparent) bytes."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return dir_bytes(self.data)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def fmt_trail(lag):
    """A "median / max" ms figure sampled during a run, or "-"."""
    if not lag or lag["max"] is None:
        return "-"
    return f"{lag['median']:.0f} / {lag['max']:.0f}"


def run_loadgen(loadgen, sm, peers, keys, rate, duration, counters=3, extra=(), sample_usage=True):
    """Runs stickmeter-loadgen against `sm` and returns its JSON result plus server figures.

    With sample_usage, also times a usage query over every key every ~2 s of the run."""
    pid = sm.proc.pid
    cpu0, threads0, t0 = cpu_ticks(pid), thread_ticks(pid), time.time()
    stalls0 = {r: pressure_us(r) for r in ("io", "cpu")}
    args = [loadgen, "--target", sm.peers, "--peers", str(peers), "--keys", str(keys),
            "--counters", str(counters), "--rate", str(rate), "--duration", str(duration),
            "--http", sm.http] + list(extra)
    lg = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # While the load runs: how long changes wait in the journal before the applier writes them
    # out (the store's journal lag, every 200 ms), and how long a usage query over every key
    # takes (every 2 s or so; it reads those waiting changes from the journal, and with 100k
    # keys it takes a second of CPU itself). loadgen's own ack-to-visible is taken once, after
    # the load.
    lags, usage_ms = [], []
    usage_url = (f"http://{sm.http}/api/v1/usage?table=/loadgen&metric=gpc0"
                 f"&from={int(t0 * 1000) - 86_400_000}&to={int(t0 * 1000) + 86_400_000}")
    samples = 0
    while True:
        done_pid, status, usage = os.wait4(lg.pid, os.WNOHANG)
        if done_pid == lg.pid:
            break
        try:
            lags.append(metric_sum(http_get(f"http://{sm.http}/metrics"),
                                   "stickmeter_store_journal_lag_milliseconds"))
            samples += 1
            if sample_usage and samples % 10 == 0:
                start = time.monotonic()
                http_get(usage_url, timeout=30.0)
                usage_ms.append(1000.0 * (time.monotonic() - start))
        except OSError:
            pass  # the table exists once loadgen's first DEFINE arrived
        time.sleep(0.2)
    out, err = lg.stdout.read(), lg.stderr.read()
    lg.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    cpu1, threads1 = cpu_ticks(pid), thread_ticks(pid)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError("loadgen printed no result: " + err)
    result = json.loads(lines[-1])
    result["loadgen_exit"] = lg.returncode
    result["loadgen_text"] = err.strip()
    result["wall_s"] = wall
    result["server_cpu_pct"] = 100.0 * (cpu1 - cpu0) / TICKS / wall
    result["loadgen_cpu_pct"] = 100.0 * (usage.ru_utime + usage.ru_stime) / wall
    busiest = []
    for tid, (name, ticks) in threads1.items():
        before = threads0.get(tid, (name, 0))[1]
        busiest.append((100.0 * (ticks - before) / TICKS / wall, name, tid))
    busiest.sort(reverse=True)
    result["server_threads"] = [
        {"name": n, "tid": t, "cpu_pct": round(c, 1)} for c, n, t in busiest[:6]]
    result["vm_hwm_mib"] = vm_hwm_kib(pid) / 1024.0
    # Share of the run's time in which some task of the machine waited for the disk or a core:
    # what tells a run slowed by the machine from one slowed by stickmeter.
    for r, before in stalls0.items():
        after = pressure_us(r)
        result[f"{r}_pressure_pct"] = (
            None if before is None or after is None else 100.0 * (after - before) / 1e6 / wall)
    for name, values in (("journal_lag_ms", lags), ("usage_all_keys_ms", usage_ms)):
        values.sort()
        result[name] = {"median": values[len(values) // 2] if values else None,
                        "max": values[-1] if values else None}
    return result
