"""Blender-as-a-module (bpy from PyPI) equivalent of

    blender -b --addons $BGLOOP_TEST_ADDONS --python SCRIPT... (bg_services.py, keep_alive.py)
"""

import os
import runpy
import sys

import bpy  # noqa: F401  (first: it puts Blender's script modules on sys.path)

import addon_utils  # noqa: E402

for name in filter(None, os.environ.get("BGLOOP_TEST_ADDONS", "").split(",")):
    addon_utils.enable(name, default_set=True, handle_error=None)
    if name not in sys.modules:
        raise SystemExit(f"{name} did not enable")
code = 0
try:
    for script in sys.argv[1:]:
        runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
print(f"scripts done, exit code {code}", flush=True)
# bpy 4.5 as a module sometimes hangs in its own C++ exit handlers:
# GlobalState::~GlobalState() waits on the condition variable of its
# "delayed_close" thread (seen with gdb, after Python has finished).  The
# services have stopped by now (serve() returned), so skip the C teardown.
os._exit(code)
