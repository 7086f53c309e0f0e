"""bpy 4.5 from PyPI: install the demo as a 4.2+ extension, then run SCRIPTs.

    python bpy_extension_main.py EXTENSION.zip SCRIPT...

Blender installs the bundled bgloop wheel itself; nothing is on PYTHONPATH.
"""

import sys

import bpy

zip_path, scripts = sys.argv[1], sys.argv[2:]
result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                  enable_on_install=True)
if result != {"FINISHED"} or "bl_ext.user_default.bgloop_demo" not in sys.modules:
    raise SystemExit(f"extension install failed: {result}")
import bgloop  # noqa: E402
from bpy_runner import run_scripts_and_exit  # noqa: E402

print(f"bgloop from {bgloop.__file__}", flush=True)
run_scripts_and_exit(scripts)
