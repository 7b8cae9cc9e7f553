#!/usr/bin/env bash
# Installs, from Debian's packages, whatever stickmeter needs that is missing.
#   scripts/setup.sh          build and run dependencies
#   scripts/setup.sh --test   also what the test suite and benchmarks drive (haproxy, chromium,
#                             curl, wrk, clang for the fuzzer, node/npm for the browser tests,
#                             clickhouse-server for the ClickHouse sink's tests, which start
#                             their own server: the system service is not used; zookeeper and
#                             a JRE for its fleet test, which starts its own ZooKeeper), and HAProxy
#                             3.0 LTS from Debian 13 beside Debian 12's 2.6 (below)
# Idempotent: when everything is present it only asks dpkg and returns in about a second.
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config librocksdb-dev libboost1.81-dev nlohmann-json3-dev
          libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libhowardhinnant-date-dev tzdata)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(haproxy curl chromium wrk openssl clang clang-format libclang-rt-14-dev procps dpkg-dev python3
             debootstrap clickhouse-server clickhouse-client zookeeper default-jre-headless)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
[[ "${1:-}" == "--test" ]] || exit 0

# HAProxy 3.0 LTS for the second integration/e2e pass of scripts/test.sh. Debian 12 only ships
# 2.6, so Debian 13's package is unpacked with its own libraries into a minimal root (debootstrap,
# about 45 s and 230 MB the first time) and run on the host through that root's dynamic loader:
# no chroot, so it binds the host's loopback and reads the tests' config files where they are.
# The wrapper script is what STICKMETER_HAPROXY points at.
haproxy30_root=/opt/stickmeter-test/haproxy-3.0
haproxy30=/opt/stickmeter-test/bin/haproxy-3.0
if [[ ! -x "$haproxy30" || ! -x "$haproxy30_root/usr/sbin/haproxy" ]]; then
  # The Debian mirror this machine already uses (sources.list or deb822 .sources files).
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
             /etc/apt/sources.list.d/*.sources 2>/dev/null |
           grep -v '^[[:space:]]*#' | grep -oE '(https?|ftp)://[^[:space:]]*/debian/?([[:space:]]|$)' |
           head -n 1 | tr -d '[:space:]' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "setup: installing HAProxy 3.0 (Debian 13) into $haproxy30_root from $mirror" >&2
  # Into a scratch directory first, so that an interrupted run is redone instead of trusted.
  "${sudo_cmd[@]}" rm -rf "$haproxy30_root.tmp"
  "${sudo_cmd[@]}" mkdir -p "$(dirname "$haproxy30_root")" "$(dirname "$haproxy30")"
  "${sudo_cmd[@]}" debootstrap --variant=minbase --include=haproxy trixie "$haproxy30_root.tmp" \
    "$mirror" >/dev/null
  "${sudo_cmd[@]}" rm -rf "$haproxy30_root"
  "${sudo_cmd[@]}" mv "$haproxy30_root.tmp" "$haproxy30_root"
  printf '%s\n' '#!/bin/sh' \
    '# HAProxy 3.0 from Debian 13, run with its own loader and libraries (see scripts/setup.sh).' \
    "r=$haproxy30_root" \
    'exec "$r/lib64/ld-linux-x86-64.so.2" --library-path "$r/lib/x86_64-linux-gnu:$r/usr/lib/x86_64-linux-gnu" "$r/usr/sbin/haproxy" "$@"' |
    "${sudo_cmd[@]}" tee "$haproxy30" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$haproxy30"
fi
