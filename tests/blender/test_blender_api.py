"""bgloop.blender and run_on_main inside a real headless Blender / bpy."""

from __future__ import annotations

import subprocess

import pytest

import blenderlib as bl

WHERE = ["blender-3.4", "bpy-4.5"]


def _run_checks(where, script, marker, tmp_path, artifacts, request):
    """Run tests/blender/scripts/SCRIPT with bgloop from the wheel; it must
    exit 0 and print MARKER."""
    env = bl.blender_env(tmp_path, pythonpath=[artifacts["site"]])
    path = bl.HERE / "scripts" / script
    if where == "blender-3.4":
        argv = [bl.BLENDER, "--background", "--factory-startup", "--python-exit-code", "3",
                "--python", str(path)]
    else:
        # Through the runner that avoids bpy 4.5's exit hang (see there).
        argv = [str(request.getfixturevalue("bpy_python")),
                str(bl.HERE / "scripts" / "bpy_module_main.py"), str(path)]
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and marker in out, out[-4000:]


@pytest.mark.parametrize("where", WHERE)
def test_blender_api_checks(where, tmp_path, artifacts, request):
    _run_checks(where, "api_checks.py", "API CHECKS OK", tmp_path, artifacts, request)


@pytest.mark.parametrize("where", WHERE)
def test_registry_of_older_protocol_refused(where, tmp_path, artifacts, request):
    """A protocol-1 registry (an older copy enabled first) makes importing
    this bgloop fail with ClashError naming both copies."""
    _run_checks(where, "registry_clash.py", "REGISTRY CLASH CHECKS OK", tmp_path, artifacts,
                request)
