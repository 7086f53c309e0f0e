"""Shared tail of the bpy-as-a-module runners (bpy_module_main.py,
bpy_extension_main.py): run scripts like ``blender --python``, then exit."""

import os
import runpy


def run_scripts_and_exit(scripts) -> None:
    """Run each script as ``__main__``; exit with the first SystemExit's code
    (a script's ``sys.exit(bgloop.serve())``), 0 otherwise."""
    code = 0
    try:
        for script in scripts:
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    print(f"scripts done, exit code {code}", flush=True)
    # bpy 4.5 as a module sometimes hangs in its own C++ exit handlers, and
    # always once an extension was installed in the process:
    # GlobalState::~GlobalState() waits on the condition variable of its
    # "delayed_close" thread (seen with gdb; happens without any bgloop code
    # running).  Python is finished here, so leave without C static
    # destructors.
    os._exit(code)
