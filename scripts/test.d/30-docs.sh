#!/usr/bin/env bash
# Documentation: every code block in README.md and docs/*.md runs (see
# tests/docs/test_snippets.py for how blocks are classified).  Builds what the
# snippets need, independently of the other steps:
#   build/docs/wheel    the bgloop wheel, built here with CPython 3.11
#   build/docs-venv     a 3.11 venv with that wheel + the build requirements
#                       (scripts/demo and build.py build from source in it)
#   build/docs/c        libbgloop for the C snippets (no Criterion needed)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=build/docs
pyenv_root=$(pyenv root 2>/dev/null || echo /root/.pyenv)
py=$(ls -d "$pyenv_root"/versions/3.11.*/bin/python 2>/dev/null | sort -V | tail -n1)
[ -x "$py" ] || py=$(command -v python3.11 || true)
[ -x "$py" ] || { echo "30-docs: no CPython 3.11"; exit 1; }
mkdir -p "$out"

rm -rf "$out/wheel"
"$py" -m pip wheel --disable-pip-version-check -q --no-deps -w "$out/wheel" .
wheels=("$out"/wheel/bgloop-*.whl)
[ ${#wheels[@]} -eq 1 ] || { echo "30-docs: expected one wheel, got ${wheels[*]}"; exit 1; }
echo "30-docs: wheel ${wheels[0]##*/}"
# README's Python section says a build by any CPython is tagged cp310-abi3.
case "${wheels[0]##*/}" in
  bgloop-*-cp310-abi3-*.whl) ;;
  *) echo "30-docs: README says a 3.11 build is tagged cp310-abi3, got ${wheels[0]##*/}"; exit 1 ;;
esac

venv=build/docs-venv
rm -rf "$venv"
"$py" -m venv "$venv"
# scripts/requirements.txt: what scripts/setup would install (scripts/demo runs
# it against this venv through PYTHON).
"$venv/bin/python" -m pip install --disable-pip-version-check -q "${wheels[0]}" \
  -r scripts/requirements.txt 2>&1 | grep -v '^WARNING: Location' || true

if [ -f "$out/c/build.ninja" ]; then
  meson setup --reconfigure "$out/c" -Dtests=false -Dpython=disabled >"$out/c.setup.log" 2>&1
else
  meson setup "$out/c" -Dtests=false -Dpython=disabled >"$out/c.setup.log" 2>&1
fi || { cat "$out/c.setup.log"; exit 1; }
meson compile -C "$out/c" -j 2 >"$out/c.compile.log" 2>&1 || { cat "$out/c.compile.log"; exit 1; }

# Run from outside the source tree so `import bgloop` is the installed wheel.
rc=0
(cd "$out" && BGLOOP_DOCS_PYTHON="$root/$venv/bin/python" BGLOOP_DOCS_CBUILD="$root/$out/c" \
   BGLOOP_DOCS_WHEEL="$root/${wheels[0]}" \
   "$root/$venv/bin/python" -m pytest -q -rs --tb=short -p no:cacheprovider "$root/tests/docs") || rc=$?
# Exit code 5 = no tests collected: a broken step, not a pass.
[ $rc -eq 0 ] || { echo "30-docs: pytest failed (exit $rc)"; exit 1; }
