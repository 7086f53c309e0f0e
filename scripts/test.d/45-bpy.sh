#!/usr/bin/env bash
# bpy from PyPI (Blender as a Python module): bpy 4.2 LTS, 4.5 LTS and 5.0 on
# CPython 3.11 and 5.3 on CPython 3.13 (tests/blender/blenderlib.py pins them),
# each with bgloop's manylinux x86_64 wheel: a TCP service under serve()
# answers, SIGTERM exits 0 without a traceback, and Python callbacks left in
# bpy at exit (bpy 4.2 crashes, 4.5 hangs) are released.  Wheels and bpy-only
# venvs are cached under ~/.cache/bgloop/bpy (BGLOOP_BPY_CACHE): about 1.4 GB
# downloaded and 4 GB installed on the first run.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
wheel=$(scripts/wheels --reuse linux-x86_64 | tail -n1)
echo "45-bpy: wheel $wheel"
BGLOOP_BPY_WHEEL=$PWD/$wheel exec "$PY" -m pytest -q -rs -p no:cacheprovider tests/bpy "$@"
