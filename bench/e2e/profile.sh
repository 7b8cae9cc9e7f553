#!/usr/bin/env bash
# Profiles stickmeter's sustained-ingest hot path: `stickmeter serve` runs under
# valgrind --tool=callgrind (this machine's perf has no hardware counters) on loopback while
# stickmeter-loadgen pushes a fixed rate for a few seconds; then the server gets SIGTERM and
# callgrind_annotate prints the functions by inclusive and by self cost.
#
#   bench/e2e/profile.sh [BUILD_DIR] [RATE] [SECONDS]    (defaults: build/loadgen 20000 8)
#
# Output: BUILD_DIR/profile/{callgrind.out.*,inclusive.txt,self.txt,loadgen.txt}. Bounded: the
# load generator stops after SECONDS, the server is killed if it does not exit within 120 s.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build/loadgen}
rate=${2:-20000}
seconds=${3:-8}
out=$build/profile
rm -rf "$out" && mkdir -p "$out"
data=$(mktemp -d /tmp/stickmeter-profile-XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port=$(port)
peers_port=$(port)

valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" \
  "$build/app/stickmeter" serve --data "$data/data" --http "127.0.0.1:$http_port" \
  --peers-listen "127.0.0.1:$peers_port" --name stickmeter >"$out/serve.log" 2>&1 &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$http_port/api/v1/health" >/dev/null && break
  sleep 0.1
done

"$build/bench/loadgen/stickmeter-loadgen" --target "127.0.0.1:$peers_port" --peers 4 \
  --keys 100000 --rate "$rate" --duration "$seconds" --drain-timeout 60 \
  --http "127.0.0.1:$http_port" >"$out/loadgen.json" 2>"$out/loadgen.txt" || true
cat "$out/loadgen.txt"

kill -TERM "$server"
for _ in $(seq 1 1200); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true

file=$(ls -S "$out"/callgrind.out.* | head -1)
callgrind_annotate --inclusive=yes "$file" >"$out/inclusive.txt" 2>/dev/null
callgrind_annotate "$file" >"$out/self.txt" 2>/dev/null
echo "== inclusive ==" && sed -n 20,60p "$out/inclusive.txt" | cut -c1-180
echo "== self ==" && sed -n 20,50p "$out/self.txt" | cut -c1-180
