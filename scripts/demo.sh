#!/usr/bin/env bash
# A live demo on loopback: a real HAProxy (Debian's package) with a billing peers section,
# stickmeter as its peer, and a bounded stream of requests from a few customers. Prints the UI's
# URL; Ctrl-C stops everything and removes the demo's files.
#   bash scripts/demo.sh            (DEMO_REQUESTS=N to change the traffic budget, default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTICKMETER_BUILD_TESTS=OFF \
  -DSTICKMETER_BUILD_BENCH=OFF >/dev/null
cmake --build build --target stickmeter >/dev/null

demo=$(mktemp -d /tmp/stickmeter-demo.XXXXXX)
http_port=${DEMO_HTTP_PORT:-8080}
peers_port=20101
haproxy_port=20180
pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping the demo"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$demo"
}
trap stop INT TERM EXIT

cat >"$demo/haproxy.cfg" <<CFG
global
    stats socket $demo/haproxy.sock mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

peers billing
    bind 127.0.0.1:20100
    server demo-lb1
    server stickmeter 127.0.0.1:$peers_port
    table customers type string len 64 size 10k expire 24d store gpc0,http_req_cnt,bytes_out_cnt,http_req_rate(10s)

frontend www
    bind 127.0.0.1:$haproxy_port
    http-request track-sc0 req.hdr(x-customer) table billing/customers
    http-request sc-inc-gpc0(0) if { path_beg /api/ }
    http-request return status 200 content-type application/json string "{\"ok\":true}" if { path_beg /api/ }
    http-request return status 200 content-type text/html string "<h1>hello</h1>"
CFG

build/app/stickmeter serve --data "$demo/data" --http "127.0.0.1:$http_port" \
  --peers-listen "127.0.0.1:$peers_port" 2>"$demo/stickmeter.log" &
pids+=($!)
/usr/sbin/haproxy -f "$demo/haproxy.cfg" -L demo-lb1 -db >"$demo/haproxy.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$http_port/api/v1/health" >/dev/null && break
  sleep 0.1
done

budget=${DEMO_REQUESTS:-20000}
(
  customers=(acme globex initech umbrella hooli)
  for ((i = 0; i < budget; i++)); do
    c=${customers[$((RANDOM % ${#customers[@]}))]}
    if ((RANDOM % 3)); then path=/api/orders; else path=/; fi
    curl -s -o /dev/null -H "X-Customer: $c" "http://127.0.0.1:$haproxy_port$path" || true
    sleep 0.0$((RANDOM % 5))
  done
) &
pids+=($!)

cat <<MSG

stickmeter demo is running:
  UI:       http://127.0.0.1:$http_port/
  API:      curl 'http://127.0.0.1:$http_port/api/v1/usage?table=/customers&metric=gpc0&from=0&to=4102444800000'
  HAProxy:  http://127.0.0.1:$haproxy_port/ (send your own: curl -H 'X-Customer: you' 127.0.0.1:$haproxy_port/api/x)
  Traffic:  $budget requests from 5 customers, in the background
Press Ctrl-C to stop.
MSG
wait "${pids[0]}"
