"""bpy 4.5 from PyPI: install the demo as a 4.2+ extension, then run SCRIPTs.

    python bpy_extension_main.py EXTENSION.zip SCRIPT...

Blender installs the bundled bgloop wheel itself; nothing is on PYTHONPATH.
"""

import os
import runpy
import sys

import bpy

zip_path, scripts = sys.argv[1], sys.argv[2:]
result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                  enable_on_install=True)
if result != {"FINISHED"} or "bl_ext.user_default.bgloop_demo" not in sys.modules:
    raise SystemExit(f"extension install failed: {result}")
import bgloop  # noqa: E402

print(f"bgloop from {bgloop.__file__}", flush=True)
code = 0
try:
    for script in scripts:
        runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
print(f"scripts done, exit code {code}", flush=True)
# bpy 4.5 as a module hangs in its own C++ exit handlers once an extension
# was installed in the process: GlobalState::~GlobalState() waits on the
# condition variable of its "delayed_close" thread (seen with gdb; happens
# without any bgloop code running).  Python is finished here, so leave
# without C static destructors.
os._exit(code)
