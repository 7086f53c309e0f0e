#!/usr/bin/env bash
# Windows x86-64 under wine: libbgloop, its Criterion suites and the examples
# cross-built with Debian's mingw-w64 (scripts/cross/windows-x64.ini) against
# Criterion for Windows (scripts/win-criterion, cached), then run under
# wine64 in a wine prefix of the tests' own (tests/windows/wine):
#   1. the C suites through `meson test` (the cross file's exe wrapper)
#   2. tests/windows: the echo server answers a client over loopback and
#      stops on Ctrl+C with exit status 0; a console Ctrl+C stops
#      two_services gracefully with exit status 0 (ctrl_event.exe sends it)
# Both parts run even if the other failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${BGLOOP_WINDOWS_BUILD:-build/windows}
failed=()

for tool in x86_64-w64-mingw32-gcc /usr/lib/wine/wine64 cmake; do
  command -v "$tool" >/dev/null || { echo "27-windows: $tool missing (scripts/setup installs it)"; exit 1; }
done
criterion=$(scripts/win-criterion | tail -n1) && [ -d "$criterion" ] \
  || { echo "27-windows: no Criterion for Windows (scripts/win-criterion)"; exit 1; }
echo "criterion: $criterion"
# One prefix for the tests and Meson's exe wrapper, set up by tests/windows/wine.
export WINEPREFIX=${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/bgloop/wine}
tests/windows/wine cmd /c exit 0 || { echo "27-windows: wine does not start"; exit 1; }

build() {
  local pc=$criterion/lib/pkgconfig
  mkdir -p "$(dirname "$out")"
  if [ ! -f "$out/build.ninja" ]; then
    meson setup "$out" --cross-file scripts/cross/windows-x64.ini -Dpkg_config_path="$pc" \
      -Dtests=true -Dexamples=true -Dbench=false -Dpython=disabled >"$out.setup.log" 2>&1 \
      || { cat "$out.setup.log"; return 1; }
  else  # a rebuilt Criterion has a new prefix
    meson configure "$out" -Dpkg_config_path="$pc" || return 1
  fi
  nice meson compile -C "$out" >"$out.compile.log" 2>&1 || { tail -60 "$out.compile.log"; return 1; }
}

c_suites() {
  local rc=0
  # A suite takes seconds under wine: a hang ends after 150 s, not 600.
  nice meson test -C "$out" --print-errorlogs --num-processes 2 --timeout-multiplier 0.25 || rc=$?
  # Tests skipped on Windows say why in their TAP line.
  grep -h '^ok .*# SKIP' "$out/meson-logs/testlog.txt" | sed 's/^ok - /skipped: /' | sort -u
  return $rc
}

examples() {
  BGLOOP_WINDOWS_BUILD=$(realpath "$out") python3 -m pytest -q -rs -p no:cacheprovider tests/windows
}

start=$SECONDS
echo "---- 27-windows: build"
build || { echo "27-windows: the Windows build failed"; exit 1; }
echo "---- 27-windows: build: ok ($((SECONDS - start)) s)"
for part in c_suites examples; do
  start=$SECONDS
  echo "---- 27-windows: $part"
  if $part; then echo "---- 27-windows: $part: ok ($((SECONDS - start)) s)"
  else echo "---- 27-windows: $part: FAILED ($((SECONDS - start)) s)"; failed+=("$part"); fi
done
[ ${#failed[@]} -eq 0 ] || { echo "27-windows: failed: ${failed[*]}"; exit 1; }
