"""bgloop.blender and run_on_main inside a real headless Blender / bpy."""

from __future__ import annotations

import subprocess

import pytest

import blenderlib as bl

SCRIPT = bl.HERE / "scripts" / "api_checks.py"


@pytest.mark.parametrize("where", ["blender-3.4", "bpy-4.5"])
def test_blender_api_checks(where, tmp_path, artifacts, request):
    env = bl.blender_env(tmp_path, pythonpath=[artifacts["site"]])
    if where == "blender-3.4":
        argv = [bl.BLENDER, "--background", "--factory-startup", "--python-exit-code", "3",
                "--python", str(SCRIPT)]
    else:
        # Through the runner that avoids bpy 4.5's exit hang (see there).
        argv = [str(request.getfixturevalue("bpy_python")),
                str(bl.HERE / "scripts" / "bpy_module_main.py"), str(SCRIPT)]
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "API CHECKS OK" in out, out[-4000:]
