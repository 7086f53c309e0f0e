#!/usr/bin/env bash
# Fuzzing and fault injection, bounded (about 4 minutes):
#   1. fuzz       build/ci-fuzz: the libFuzzer harnesses of tests/fuzz (clang,
#                 ASan+UBSan), both backends: replay the seed corpus, then
#                 fuzz each harness/backend pair for FUZZ_TIME seconds
#                 (default 60), two at a time; prints the executions
#   2. EINTR storm  build/ci: the loop and lifecycle suites, both backends,
#                 with a SIGALRM every 100 us interrupting every blocking
#                 call (BGL_TEST_EINTR_STORM, tests/helpers.h)
# The allocation-failure tests (tests/fault) are meson tests of suite
# 'fault': 10-c.sh runs them in its normal and its ASan build.
# Every run goes on after a failure; the step fails if any run failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
failed=()

run() {  # NAME COMMAND...
  local name=$1; shift
  local start=$SECONDS
  echo "---- 12-fuzz: $name"
  if "$@"; then
    echo "---- 12-fuzz: $name: ok ($((SECONDS - start)) s)"
  else
    echo "---- 12-fuzz: $name: FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}

fuzz() {
  scripts/fuzz --build build/ci-fuzz --time "${FUZZ_TIME:-60}" --jobs 2
}

storm() {
  if [ ! -f build/ci/build.ninja ]; then
    mkdir -p build
    meson setup build/ci -Dtests=true -Dpython=disabled >build/ci.setup.log 2>&1 \
      || { cat build/ci.setup.log; return 1; }
  fi
  BGL_TEST_EINTR_STORM=100 meson test -C build/ci --print-errorlogs --num-processes 2 \
    --suite loop --suite lifecycle
}

run "fuzz (build/ci-fuzz, both backends)" fuzz
run "EINTR storm (build/ci, loop and lifecycle suites)" storm

[ ${#failed[@]} -eq 0 ] || { echo "12-fuzz: failed: ${failed[*]}"; exit 1; }
echo "12-fuzz: all runs passed"
