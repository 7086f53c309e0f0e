#!/usr/bin/env bash
# Build libbgloop in release mode with the benchmarks and run them.
# Usage: bench/run.sh [bgloop_bench options, e.g. -r 7 -s 0.5]
# BGLOOP_BENCH_BUILDDIR overrides the build directory (default build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${BGLOOP_BENCH_BUILDDIR:-build-bench}
if [ -d "$builddir" ]; then
  meson configure "$builddir" -Dbench=true -Dbuildtype=release -Db_ndebug=true >/dev/null
else
  meson setup "$builddir" -Dbench=true -Dbuildtype=release -Db_ndebug=true \
    -Dtests=false -Dexamples=false >/dev/null
fi
ninja -C "$builddir" -j2 bench/bgloop_bench >/dev/null
exec "$builddir/bench/bgloop_bench" "$@"
