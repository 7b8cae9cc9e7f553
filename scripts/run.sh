#!/usr/bin/env bash
# One command from a fresh clone to a running stickmeter: installs what is missing, builds, and
# starts `stickmeter serve` with its data in ./stickmeter-data. Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTICKMETER_BUILD_TESTS=OFF \
  -DSTICKMETER_BUILD_BENCH=OFF >/dev/null
cmake --build build --target stickmeter
exec build/app/stickmeter serve --data ./stickmeter-data "$@"
