#!/usr/bin/env bash
# Python benchmarks smoke run: every bench/python script once at a tiny size,
# on the manylinux x86_64 wheel (CPython 3.11) with uvloop beside it.  It
# checks that each benchmark still runs every loop to the end and prints its
# table; the figures are too small and noisy to quote (README, "Python
# benchmarks", says how to run them for real).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=build/pybench-venv
pyenv_root=$(pyenv root 2>/dev/null || echo /root/.pyenv)
py=$(ls -d "$pyenv_root"/versions/3.11.*/bin/python 2>/dev/null | sort -V | tail -n1)
[ -x "$py" ] || { echo "21-pybench: CPython 3.11 missing under $pyenv_root"; exit 1; }
wheel=$(scripts/wheels --reuse linux-x86_64 | tail -n1)
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q "$wheel" uvloop
cd "$venv"  # import bgloop from the wheel, not from the source tree
bench() {
  echo "---- $*"
  "$root/$venv/bin/python" "$root/bench/python/$@"
}
bench bench_http.py --rounds 1 --duration 1
bench bench_echo.py --rounds 1 --duration 0.5 --sizes 64,16384
bench bench_calls.py --n 2000 --repeat 1
bench bench_idle.py --seconds 0.3
bench bench_memory.py --connections 200 --rounds 1
bench bench_instr.py --requests 100 --warmup 20 --loops asyncio,bgloop
