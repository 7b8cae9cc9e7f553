#!/usr/bin/env bash
# HTTP API throughput with wrk against http_bench_server (real store, 10,000 keys x 31 days).
#   bench/http/run_wrk.sh BUILD_DIR [DURATION_S]
set -euo pipefail
build=${1:?build dir}
duration=${2:-10}
dir=$(mktemp -d /tmp/http-wrk-XXXXXX)
fifo=$dir/stdin
mkfifo "$fifo"
"$build/bench/http/http_bench_server" "$dir" 0 2 <"$fifo" >"$dir/out" 2>"$dir/err" &
pid=$!
exec 3>"$fifo"
trap 'exec 3>&-; wait $pid || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 600); do grep -q ready "$dir/out" 2>/dev/null && break; sleep 0.5; done
port=$(awk '/ready/ {print $2}' "$dir/out")
[[ -n "$port" ]] || { cat "$dir/err"; exit 1; }
base="http://127.0.0.1:$port"
echo "== health"
wrk -t2 -c64 -d"${duration}s" --latency "$base/api/v1/health"
echo "== series: one key, 31 days, step 1h"
wrk -t2 -c32 -d"${duration}s" --latency \
  "$base/api/v1/series?table=/bench&metric=gpc0&key=hot&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&step=1h"
