"""Blender-as-a-module (bpy from PyPI) equivalent of

    blender -b --addons $BGLOOP_TEST_ADDONS --python SCRIPT... (bg_services.py, keep_alive.py)
"""

import os
import sys

import bpy  # noqa: F401  (first: it puts Blender's script modules on sys.path)

import addon_utils  # noqa: E402
from bpy_runner import run_scripts_and_exit  # noqa: E402

for name in filter(None, os.environ.get("BGLOOP_TEST_ADDONS", "").split(",")):
    addon_utils.enable(name, default_set=True, handle_error=None)
    if name not in sys.modules:
        raise SystemExit(f"{name} did not enable")
run_scripts_and_exit(sys.argv[1:])
