#!/usr/bin/env bash
# The Python extension under AddressSanitizer + UndefinedBehaviorSanitizer:
# a debug build of bgloop._bgloop (-O0 -g, libbgloop linked in statically,
# both instrumented) installed into a venv of the system CPython 3.11, and
# most of tests/python run on it with the compiler's libasan preloaded (the
# interpreter itself is not instrumented, so the runtime must come first).
# Before the tests, the step proves the sanitizers are live: the installed
# extension must call into both runtimes, and a probe library built here
# must stop a Python process under the same environment with a report, once
# for a heap-buffer-overflow and once for a signed overflow.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=build/ci-asan-ext-venv
builddir=build/ci-asan-ext
work=build/ci-asan-ext-run
logs=build/ci-asan-ext-logs

fail() { echo "22-sanitize-ext: $*"; exit 1; }

python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || fail "python3 is not CPython 3.11"
libasan=$(gcc -print-file-name=libasan.so)
[ -f "$libasan" ] || fail "gcc has no libasan.so ($libasan)"

rm -rf "$venv"
python3 -m venv "$venv" || fail "venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q \
  meson-python meson ninja packaging -r tests/python/requirements.txt || fail "pip install of the tools"
# b_lundef=false, as meson wants for sanitized shared objects (with clang
# the runtime's symbols are only resolved at load time).
"$venv/bin/python" -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps \
  -Cbuilddir="$root/$builddir" -Csetup-args=-Dbuildtype=debug \
  -Csetup-args=-Db_sanitize=address,undefined -Csetup-args=-Db_lundef=false . \
  || fail "build of the instrumented extension"
so=$(ls "$venv"/lib/python3.11/site-packages/bgloop/_bgloop*.so 2>/dev/null | head -n1)
[ -n "$so" ] || fail "no bgloop/_bgloop*.so in $venv"

# The extension must be instrumented: reports of bad loads and stores, and
# UBSan's handlers.
undef=$(nm -D --undefined-only "$so")
n_asan=$(grep -c ' __asan_report_\(load\|store\)' <<<"$undef")
n_ubsan=$(grep -c ' __ubsan_handle_' <<<"$undef")
[ "$n_asan" -gt 0 ] && [ "$n_ubsan" -gt 0 ] \
  || fail "${so##*/} is not instrumented (__asan_report_*: $n_asan, __ubsan_handle_*: $n_ubsan)"
echo "22-sanitize-ext: ${so#$root/} calls __asan_report_* ($n_asan) and __ubsan_handle_* ($n_ubsan)"

# Leak detection is off: CPython does not free its own heap at exit, so
# every run would end in thousands of leak reports from the interpreter.
# PYTHONMALLOC=malloc hands Python objects to ASan's allocator instead of
# pymalloc's arenas, so overflows and use-after-free of objects are seen.
# ASan's log_path: its reports from every process, test subprocesses whose
# stderr a test reads included, go to files whose existence fails the step.
# GCC's libubsan cannot do the same beside libasan (its call setting the
# report path binds to libasan's exported one), so UBSan reports go to
# stderr: pytest runs with --capture=sys to let them through to its output,
# which is searched for them.  Both halt with abort(): in the pytest process
# that ends the run, pytest's faulthandler naming the test.
rm -rf "$logs" "$work" && mkdir -p "$logs" "$work"
# timeout runs outside the preload (libasan in a program that is not
# instrumented can deadlock it): a test that hangs under ASan ends the step.
sanitized() {  # COMMAND...: run under the sanitizer environment, 30 min at most
  timeout -k 30 1800 env LD_PRELOAD="$libasan" PYTHONMALLOC=malloc \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:log_path=$root/$logs/asan" \
    UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1" \
    "$@"
}
reports='ERROR: AddressSanitizer|runtime error:|SUMMARY: [A-Za-z]+Sanitizer'

# The probes: each must stop the process and leave its report.
printf '%s\n' '#include <stdlib.h>' \
  'int probe_overflow(int i) { char *volatile p = malloc(8); int c = p[i]; free(p); return c; }' \
  'int probe_add(int a, int b) { return a + b; }' >"$work/probe.c"
cc -shared -fPIC -g -O0 -fsanitize=address,undefined -o "$work/probe.so" "$work/probe.c" \
  || fail "cannot build the probe library"
run_probe() {  # EXPECTED-REPORT FUNCTION ARGS...
  local expected=$1 rc=0; shift
  (cd "$work" && sanitized "$root/$venv/bin/python" -c \
     'import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); print(getattr(lib, sys.argv[2])(*map(int, sys.argv[3:])))' \
     "$root/$work/probe.so" "$@") >"$work/out.log" 2>&1 || rc=$?
  if [ $rc -eq 0 ] || ! grep -qs "$expected" "$work/out.log" "$logs"/*; then
    cat "$work/out.log" "$logs"/* 2>/dev/null
    fail "the probe $* ran on without a '$expected' report (exit $rc): the sanitizers are not active"
  fi
  echo "22-sanitize-ext: probe $* stopped (exit $rc): $(grep -hs -m1 "$expected" "$work/out.log" "$logs"/*)"
  rm -f "$logs"/*
}
run_probe "heap-buffer-overflow" probe_overflow 8
run_probe "signed integer overflow" probe_add 2147483647 1

# The extension the tests import is the instrumented one.
imported=$(cd "$work" && sanitized "$root/$venv/bin/python" -c 'import bgloop._bgloop as m; print(m.__file__)') \
  || fail "import of the instrumented extension failed"
[ "$imported" -ef "$so" ] || fail "tests would import $imported, not $so"

# Left out (everything else in tests/python runs: 2-3 min here, 2 cores):
# - test_conformance_more.py's test_tasks (913 tests of asyncio's Task
#   classes; the loop's part in them, call_soon/call_later, is what
#   test_handles and test_scheduling cover) and test_subprocess (148 tests
#   starting child processes, all of them pure Python asyncio code);
# - test_architecture_doc.py, test_kubernetes_doc.py: documentation checked
#   against the source text, no extension code runs.
echo "---- tests/python under ASan+UBSan (CPython $(python3 -c 'import platform; print(platform.python_version())'))"
(cd "$work" && sanitized "$root/$venv/bin/python" -m pytest -q -rs -p no:cacheprovider --capture=sys \
   "$root/tests/python" \
   --ignore="$root/tests/python/test_architecture_doc.py" \
   --ignore="$root/tests/python/test_kubernetes_doc.py" \
   -k 'not test_tasks__ and not test_subprocess__') 2>&1 | tee "$work/pytest.log"
rc=${PIPESTATUS[0]}
files=("$logs"/*)
[ -e "${files[0]}" ] || files=()
for f in "${files[@]}"; do echo "==== ${f#$root/}"; cat "$f"; done
n=$(grep -cE "$reports" "$work/pytest.log")
if [ ${#files[@]} -gt 0 ] || [ "$n" -gt 0 ]; then
  fail "sanitizer reports: ${#files[@]} ASan log file(s), $n report line(s) in the pytest output (pytest exit $rc)"
fi
# Exit code 5 = no tests collected: a broken step, not a pass.
[ "$rc" -eq 0 ] || fail "pytest failed (exit $rc)"
echo "22-sanitize-ext: no sanitizer report"
