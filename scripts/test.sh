#!/usr/bin/env bash
# One command from a fresh clone to a passing test suite: installs what is missing, checks the
# formatting, builds with warnings as errors, runs every ctest test (unit, integration against
# real HAProxy, e2e, the browser tests) against Debian 12's HAProxy 2.6, runs the integration
# and end-to-end tests again against HAProxy 3.0 LTS, builds the server as scripts/run.sh does
# (Release) with warnings as errors, checks the storage engine's lock
# annotations with clang's -Wthread-safety, then builds again with ASan+UBSan and runs the unit
# tests under them.
#   SANITIZE=0 scripts/test.sh   skips the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
# Prints how long the stage that just ended took, and the total so far.
stage() { echo "test: $1 done after $((SECONDS - started)) s"; }
scripts/setup.sh --test
jobs=$(nproc)
stage "setup"

# The code is clang-formatted (.clang-format): checked first, it takes a second.
git ls-files -z '*.cc' '*.h' | xargs -0 clang-format --dry-run --Werror

# Line tables only (-g1): backtraces keep their files and lines, and the build takes a third
# less time than with full debug information.
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTICKMETER_WERROR=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null
cmake --build build/test -j "$jobs"
stage "build"
(cd build/test && ctest --output-on-failure -j "$jobs" --timeout 600)
stage "tests with HAProxy 2.6"
# The tests that drive a real HAProxy, again with 3.0 (installed by setup.sh --test).
haproxy30=/opt/stickmeter-test/bin/haproxy-3.0
echo "test: integration and e2e tests with $("$haproxy30" -v | head -n 1)"
(cd build/test && STICKMETER_HAPROXY="$haproxy30" \
  ctest --output-on-failure -j "$jobs" --timeout 600 -L 'integration|e2e')
stage "tests with HAProxy 3.0"

# The server as scripts/run.sh builds it (Release: -O3, where GCC warns of things -O2 does not
# see), with warnings as errors.
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTICKMETER_WERROR=ON \
  -DSTICKMETER_BUILD_TESTS=OFF -DSTICKMETER_BUILD_BENCH=OFF >/dev/null
cmake --build build/release -j "$jobs" --target stickmeter
stage "release build"

# Lock rules as checked annotations (common/thread_annotations.h): the annotated components
# build with clang and -Wthread-safety -Werror.
cmake -S . -B build/tsa -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
  -DSTICKMETER_THREAD_SAFETY=ON -DSTICKMETER_BUILD_BENCH=OFF -DSTICKMETER_BUILD_TESTS=OFF >/dev/null
cmake --build build/tsa -j "$jobs" --target tsdb sink
stage "lock annotations"

if [[ "${SANITIZE:-1}" != "0" ]]; then
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSTICKMETER_WERROR=ON \
    -DSTICKMETER_SANITIZE=ON -DSTICKMETER_BUILD_BENCH=OFF >/dev/null
  # The unit test executables only: the integration and e2e tests do not run here.
  cmake --build build/asan -j "$jobs" --target unit_tests
  stage "sanitizer build"
  (cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j "$jobs" -L unit --timeout 600)
  stage "unit tests under ASan+UBSan"
fi
