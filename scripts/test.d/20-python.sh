#!/usr/bin/env bash
# Python binding: the manylinux_2_28_x86_64 cp310-abi3 wheel of dist/
# (scripts/wheels, cross-built for glibc 2.28; reused if 18-wheels built it
# from this tree) installed into a fresh venv of every pyenv CPython
# 3.10-3.13, running tests/python (CPython's own asyncio conformance suites +
# bgloop's tests) and tests/examples (the demo service against hostile HTTP
# clients).  Then a second wheel on libbgloop's poll backend, built natively
# by pip, runs the backend-dependent tests on one Python.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=build/python
pyenv_root=$(pyenv root 2>/dev/null || echo /root/.pyenv)

find_py() {  # newest pyenv CPython 3.X
  ls -d "$pyenv_root"/versions/"$1".*/bin/python 2>/dev/null | sort -V | tail -n1
}

# The wheel must hold the bgloop package only and carry the cp310-abi3 tag,
# whichever CPython built it.
check_wheel() {  # WHEEL PLATFORM-TAG
  case "${1##*/}" in
    bgloop-*-cp310-abi3-"$2".whl) echo "20-python: wheel ${1##*/}" ;;
    *) echo "20-python: wrong wheel: ${1##*/} (want cp310-abi3-$2)"; return 1 ;;
  esac
  python3 - "$1" <<'PYEOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
extra = [n for n in names if not n.startswith(("bgloop/", "bgloop-"))]
if extra or "bgloop/_bgloop.abi3.so" not in names:
    sys.exit(f"20-python: the wheel must hold only the bgloop package: {extra or names}")
PYEOF
}

wheel=$(scripts/wheels --reuse linux-x86_64 | tail -n1)
check_wheel "$wheel" manylinux_2_28_x86_64

failed=()
for v in 3.10 3.11 3.12 3.13; do
  py=$(find_py "$v")
  if [ ! -x "$py" ]; then echo "20-python: CPython $v missing under $pyenv_root"; failed+=("$v"); continue; fi
  venv="$out/venv-$v"
  echo "---- CPython $v ($py)"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q "$wheel" -r tests/python/requirements.txt
  # Run from outside the source tree so `import bgloop` is the installed wheel.
  rc=0
  (cd "$out" && BGLOOP_EXPECT_BACKEND=epoll \
     "$root/$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$root/tests/python" \
       "$root/tests/examples") || rc=$?
  # Exit code 5 = no tests collected: a broken step, not a pass.
  if [ $rc -ne 0 ]; then echo "20-python: pytest on $v failed (exit $rc)"; failed+=("$v"); fi
done
# The poll backend: the tests whose code paths differ by backend (waiting,
# signals, budgets, serve()), on CPython 3.11.
py311=$(find_py 3.11)
if [ -x "$py311" ]; then
  echo "---- poll backend, CPython 3.11"
  rm -rf "$out/wheel-poll"
  "$py311" -m pip wheel --disable-pip-version-check -q --no-deps -w "$out/wheel-poll" \
    --config-settings=setup-args=-Dio_backend=poll .
  pwheels=("$out"/wheel-poll/bgloop-*.whl)
  check_wheel "${pwheels[0]}" linux_x86_64
  venv="$out/venv-poll"
  rm -rf "$venv"
  "$py311" -m venv "$venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q "${pwheels[0]}" -r tests/python/requirements.txt
  rc=0
  (cd "$out" && BGLOOP_EXPECT_BACKEND=poll "$root/$venv/bin/python" -m pytest -q -rs \
     -p no:cacheprovider "$root/tests/python/test_kick.py" "$root/tests/python/test_serve.py") || rc=$?
  if [ $rc -ne 0 ]; then echo "20-python: pytest on the poll backend failed (exit $rc)"; failed+=("poll"); fi
else
  echo "20-python: CPython 3.11 missing under $pyenv_root (poll backend run)"; failed+=("poll")
fi
[ ${#failed[@]} -eq 0 ] || { echo "20-python: failed on ${failed[*]}"; exit 1; }
