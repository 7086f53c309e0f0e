#!/usr/bin/env bash
# Build libbgloop in release mode with the benchmarks and run them.
# Usage: bench/run.sh [bgloop_bench options, e.g. -r 7 -s 0.5]
# BGLOOP_BENCH_BUILDDIR overrides the build directory (default build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${BGLOOP_BENCH_BUILDDIR:-build-bench}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Quiet unless something fails: then the log says why.
quiet() { "$@" >"$log" 2>&1 || { cat "$log"; return 1; }; }
if [ -f "$builddir/build.ninja" ]; then
  quiet meson configure "$builddir" -Dbench=true -Dbuildtype=release -Db_ndebug=true
else
  quiet meson setup "$builddir" -Dbench=true -Dbuildtype=release -Db_ndebug=true \
    -Dtests=false -Dexamples=false
fi
quiet ninja -C "$builddir" -j2 bench/bgloop_bench
"$builddir/bench/bgloop_bench" "$@"
