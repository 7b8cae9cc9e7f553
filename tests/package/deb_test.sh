#!/usr/bin/env bash
# Builds stickmeter's Debian package with CPack, installs it with dpkg, checks the installed
# layout, starts the installed binary on free loopback ports, checks health, stops it with
# SIGTERM, and removes the package again.
set -euo pipefail
build_dir=$1
if [[ $(id -u) -ne 0 ]]; then echo "not root: cannot install a package"; exit 77; fi
if dpkg-query -W -f='${Status}' stickmeter 2>/dev/null | grep -q 'install ok installed'; then
  echo "a stickmeter package is already installed on this machine; not touching it"; exit 77
fi
command -v dpkg-shlibdeps >/dev/null || { echo "dpkg-dev missing (dpkg-shlibdeps)"; exit 1; }

work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true
  dpkg -r stickmeter >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$work" && cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$work/out" >cpack.log 2>&1) ||
  { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/out/stickmeter_*.deb)
echo "built $deb"
dpkg-deb --info "$deb" | grep -E 'Package|Version|Depends'

dpkg -i "$deb" >/dev/null
test -x /usr/bin/stickmeter
test -f /usr/lib/systemd/system/stickmeter.service -o -f /lib/systemd/system/stickmeter.service
test -f /etc/stickmeter/stickmeter.json
getent passwd stickmeter >/dev/null
/usr/bin/stickmeter version | grep -q '^stickmeter '

# A free port below the kernel's ephemeral range, which outgoing connections of tests running
# beside this one keep taking (see FreePort in tests/support/process.h).
port() {
  python3 -c '
import random, socket
for _ in range(1000):
    p = random.randint(20000, 32767)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
    print(p)
    break'
}
http_port=$(port)
peers_port=$(port)
/usr/bin/stickmeter serve --data "$work/data" --http "127.0.0.1:$http_port" \
  --peers-listen "127.0.0.1:$peers_port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$http_port/api/v1/health" | grep -q '"ok"'; then break; fi
  sleep 0.1
done
curl -sf "http://127.0.0.1:$http_port/api/v1/health" | grep -q '"ok"' || { cat "$work/serve.log"; exit 1; }
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[[ $status -eq 0 ]] || { echo "exit status $status"; cat "$work/serve.log"; exit 1; }

dpkg -r stickmeter >/dev/null
test ! -e /usr/bin/stickmeter
echo "package installed, served health, stopped cleanly and was removed"
