#!/usr/bin/env bash
# C suites: the Criterion tests of libbgloop (suite 'c': the loop,
# and the task/service/resource tests), each built against the default and
# the poll backend, in four runs:
#   1. build/ci        normal build, `meson test` (every test: C, examples)
#   2. build/ci-asan   ASan+UBSan build, every test, UBSan errors fatal
#   3. valgrind        memcheck over the C suites of build/ci (default
#                      backend; the poll twins are covered by run 2)
#   4. pkg-config      install build/ci into a DESTDIR, compile and link a
#                      program with `pkg-config --cflags --libs bgloop`
# Every run goes on after a failure; the step fails if any run failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
failed=()

configure() {  # DIR [meson options...]: set up, or reconfigure if it exists
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
  else
    mkdir -p "$(dirname "$dir")"
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
  fi || { cat "$dir.setup.log"; return 1; }
  meson compile -C "$dir" -j 2 >"$dir.compile.log" 2>&1 || { cat "$dir.compile.log"; return 1; }
  # Warnings are part of the contract (-Wall -Wextra clean): show them.
  grep -E 'warning:' "$dir.compile.log" | sort -u || true
}


run() {  # NAME COMMAND...: run one of the four, record the outcome
  local name=$1; shift
  local start=$SECONDS
  echo "---- 10-c: $name"
  if "$@"; then
    echo "---- 10-c: $name: ok ($((SECONDS - start)) s)"
  else
    echo "---- 10-c: $name: FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}

normal() {
  configure build/ci -Dtests=true -Dpython=disabled || return 1
  meson test -C build/ci --no-rebuild --print-errorlogs
}

asan() {
  configure build/ci-asan -Dtests=true -Dpython=disabled -Db_sanitize=address,undefined -Db_lundef=false \
    || return 1
  ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:print_summary=1 \
  UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1 \
    meson test -C build/ci-asan --no-rebuild --print-errorlogs
}

memcheck() {
  command -v valgrind >/dev/null || { echo "valgrind missing (scripts/setup)"; return 1; }
  [ -f build/ci/build.ninja ] || { echo "build/ci missing"; return 1; }
  # Criterion's workers re-execute the binary: tests/valgrind-check.sh
  # follows them and fails on any error in any process.  First prove that
  # it does: a Criterion test that leaks and reads uninitialised memory
  # must fail under the wrapper.
  local probe=build/ci/valgrind-probe
  printf '%s\n' '#include <criterion/criterion.h>' '#include <stdlib.h>' \
    'static void *volatile sink;' \
    'Test(probe, leaks_and_branches_on_garbage) {' \
    '  int *p = malloc(4 * sizeof *p); sink = malloc(64); sink = NULL;' \
    '  if (p[1] == 42) cr_log_info("?"); free(p); }' >"$probe.c"
  cc -g -O0 -o "$probe" "$probe.c" -lcriterion || return 1
  if tests/valgrind-check.sh "$probe" --tap=/dev/stdout >"$probe.log" 2>&1; then
    cat "$probe.log"; echo "valgrind-check.sh missed errors in a Criterion worker"; return 1
  fi
  echo "valgrind-check.sh catches errors in Criterion workers: ok"
  meson test -C build/ci --no-rebuild --print-errorlogs --suite c --no-suite poll \
    --wrapper "$root/tests/valgrind-check.sh" --timeout-multiplier 5
}

pkgconfig() {
  [ -f build/ci/build.ninja ] || { echo "build/ci missing"; return 1; }
  tests/pkgconfig/check.sh build/ci
}

run "normal build (build/ci)" normal
run "ASan+UBSan (build/ci-asan)" asan
run "valgrind (build/ci, suite c)" memcheck
run "pkg-config install" pkgconfig

[ ${#failed[@]} -eq 0 ] || { echo "10-c: failed: ${failed[*]}"; exit 1; }
echo "10-c: all C runs passed"
