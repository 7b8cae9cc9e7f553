#!/usr/bin/env bash
# Installs, from Debian's packages, whatever stickmeter needs that is missing.
#   scripts/setup.sh          build and run dependencies
#   scripts/setup.sh --test   also what the test suite and benchmarks drive (haproxy, chromium,
#                             curl, wrk, clang for the fuzzer, node/npm for the browser tests)
# Idempotent: when everything is present it only asks dpkg and returns in about a second.
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config librocksdb-dev libboost1.81-dev nlohmann-json3-dev
          libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libhowardhinnant-date-dev tzdata)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(haproxy curl chromium wrk openssl clang libclang-rt-14-dev procps dpkg-dev python3)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
