#!/usr/bin/env bash
# Blender integration: the demo add-on and bgloop.blender in a real
# Blender 3.4 (Debian) - headless (-b), GUI under Xvfb - and in bpy 4.5 from
# PyPI (cached under ~/.cache/bgloop/bpy with 45-bpy's; a failed install
# fails the tests).  Builds the wheels (scripts/wheels --reuse) and the add-on
# zips first: one extension per platform by Blender's packager, the legacy one.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v blender >/dev/null || { echo "40-blender: blender missing (scripts/setup)"; exit 1; }
PY=${PYTHON:-python3}
exec "$PY" -m pytest -q -rs -p no:cacheprovider tests/blender "$@"
