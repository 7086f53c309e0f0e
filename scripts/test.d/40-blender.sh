#!/usr/bin/env bash
# Blender integration: the demo add-on and bgloop.blender in a real
# Blender 3.4 (Debian) - headless (-b), GUI under Xvfb - and in bpy 4.5 from
# PyPI (installed into tests/blender/_out/bpy-venv on first use; skipped with
# a reason if that fails).  Builds the abi3 wheel and both add-on zips first.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v blender >/dev/null || { echo "40-blender: blender missing (scripts/setup)"; exit 1; }
PY=${PYTHON:-python3}
exec "$PY" -m pytest -q -rs -p no:cacheprovider tests/blender "$@"
