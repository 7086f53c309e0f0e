#!/usr/bin/env bash
# CPython 3.14: Debian unstable's build (python3.14 and its test suite, from
# Debian's packages), extracted into a sysroot (scripts/sysroot sid-amd64)
# and run through the sysroot's own ld.so, so it needs nothing of the host's
# libc.  The manylinux_2_28_x86_64 cp310-abi3 wheel from scripts/wheels is
# installed into a venv on it and tests/python runs there: CPython 3.14's
# own asyncio suites against bgloop.Loop, and bgloop's tests.  A
# DeprecationWarning raised on behalf of bgloop's own modules fails the run:
# what 3.14 deprecates (event-loop policies, asyncio.iscoroutinefunction, ...)
# is removed in a later CPython.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=build/python314
mkdir -p "$out"

wheel=$(scripts/wheels --reuse linux-x86_64 | grep -E 'manylinux_2_28_x86_64\.whl$') \
  || { echo "26-python314: no manylinux_2_28_x86_64 wheel from scripts/wheels"; exit 1; }
echo "26-python314: wheel ${wheel##*/}"
# A copy: dist/ is rewritten by every scripts/wheels run.
rm -f "$out"/*.whl && cp "$wheel" "$out/" && wheel=$out/${wheel##*/} || exit 1
py=$(scripts/sysroot venv sid-amd64 "$out/venv") || { echo "26-python314: no sysroot"; exit 1; }
"$py" -c 'import sys; assert sys.version_info[:2] == (3, 14), sys.version; print("26-python314: CPython", sys.version)' \
  || exit 1
site=$out/venv/lib/python3.14/site-packages
python3 -m pip install --disable-pip-version-check -q --target "$site" --upgrade \
  --platform manylinux_2_28_x86_64 --python-version 3.14 --implementation cp \
  --only-binary=:all: "$wheel" -r tests/python/requirements.txt 2>&1 \
  | grep -v -e "^WARNING: Location" -e "WARNING: Running pip as the 'root' user" -e "WARNING: Target directory"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "26-python314: pip install failed"; exit 1; }
# From outside the source tree, so `import bgloop` is the installed wheel.
cd "$out" && BGLOOP_EXPECT_BACKEND=epoll "$py" -m pytest -q -rs -p no:cacheprovider \
  -o 'filterwarnings=error::DeprecationWarning:bgloop' "$root/tests/python"
