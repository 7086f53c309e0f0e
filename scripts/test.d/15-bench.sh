#!/usr/bin/env bash
# Benchmarks smoke run: build bench/ in release mode against libuv
# and run every workload once at a small size.  It checks that the benchmark
# still builds and that each workload does all of its work on both libraries
# (bgloop_bench verifies the counts and fails otherwise); the figures printed
# here are too small and noisy to quote - use bench/run.sh for those.
set -euo pipefail
cd "$(dirname "$0")/../.."
export BGLOOP_BENCH_BUILDDIR=build/ci-bench
mkdir -p build
bench/run.sh -r 1 -s 0.05
