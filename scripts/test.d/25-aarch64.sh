#!/usr/bin/env bash
# arm64 Linux, emulated: Debian 12's arm64 userland extracted from its
# packages (scripts/sysroot bookworm-arm64) and run under qemu-user.  This
# machine has no binfmt_misc, so every arm64 program is started as
# `qemu-aarch64 -L SYSROOT PROGRAM`; the venv's python re-enters qemu itself,
# so the suite's subprocesses (sys.executable) are arm64 too.
#   1. the manylinux_2_28_aarch64 wheel (scripts/wheels) on Debian's arm64
#      CPython 3.11: tests/python, the epoll backend expected
#   2. libbgloop's C examples cross-built for aarch64 (Zig's C compiler,
#      scripts/cross/aarch64-linux-gnu.ini): hello_timer, and two_services
#      and echo_server through their native tests (BGLOOP_RUN_PREFIX)
# Both parts run even if the other failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=build/aarch64
mkdir -p "$out"
failed=()

sysroot=$(scripts/sysroot bookworm-arm64) || { echo "25-aarch64: no sysroot"; exit 1; }

python_suite() {
  local wheel py site
  wheel=$(scripts/wheels --reuse linux-aarch64 | grep -E 'manylinux_2_28_aarch64\.whl$') \
    || { echo "no manylinux_2_28_aarch64 wheel from scripts/wheels"; return 1; }
  echo "wheel: ${wheel##*/}"
  # A copy: dist/ is rewritten by every scripts/wheels run.
  rm -f "$out"/*.whl && cp "$wheel" "$out/" && wheel=$out/${wheel##*/} || return 1
  py=$(scripts/sysroot venv bookworm-arm64 "$out/venv") || return 1
  site=$out/venv/lib/python3.11/site-packages
  # The host's pip installs for the arm64 interpreter: binary packages as
  # arm64 wheels, nothing is built.
  python3 -m pip install --disable-pip-version-check -q --target "$site" --upgrade \
    --platform manylinux_2_28_aarch64 --python-version 3.11 --implementation cp \
    --only-binary=:all: "$wheel" -r tests/python/requirements.txt 2>&1 \
    | grep -v -e "^WARNING: Location" -e "WARNING: Running pip as the 'root' user" -e "WARNING: Target directory"
  [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
  # From outside the source tree, so `import bgloop` is the installed wheel.
  (cd "$out" && BGLOOP_EXPECT_BACKEND=epoll "$py" -m pytest -q -rs -p no:cacheprovider \
     "$root/tests/python")
}

examples() {
  local dir=$out/examples ex
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --cross-file scripts/cross/aarch64-linux-gnu.ini \
      -Dtests=false -Dpython=disabled -Dbench=false -Dexamples=true >"$dir.setup.log" 2>&1 \
      || { cat "$dir.setup.log"; return 1; }
  fi
  meson compile -C "$dir" -j 2 >"$dir.compile.log" 2>&1 || { cat "$dir.compile.log"; return 1; }
  ex=$dir/examples
  local rc=0 got
  got=$(timeout 60 qemu-aarch64 -L "$sysroot" "$ex/hello_timer") || { echo "hello_timer: exit status $?"; rc=1; }
  if [ "$got" = $'tick 3\ntick 2\ntick 1' ]; then echo "ok - hello_timer: three ticks, exit status 0"
  else echo "not ok - hello_timer printed: $got"; rc=1; fi
  export BGLOOP_RUN_PREFIX="qemu-aarch64 -L $sysroot"
  python3 tests/lifecycle/test_two_services.py "$ex/two_services" || rc=1
  python3 tests/echo/test_echo_server.py "$ex/echo_server" || rc=1
  return $rc
}

for part in python_suite examples; do
  start=$SECONDS
  echo "---- 25-aarch64: $part"
  if $part; then echo "---- 25-aarch64: $part: ok ($((SECONDS - start)) s)"
  else echo "---- 25-aarch64: $part: FAILED ($((SECONDS - start)) s)"; failed+=("$part"); fi
done
[ ${#failed[@]} -eq 0 ] || { echo "25-aarch64: failed: ${failed[*]}"; exit 1; }
