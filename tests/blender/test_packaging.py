"""The two add-on packages build.py makes: a 4.2+ extension and a legacy zip."""

from __future__ import annotations

import re
import signal
import subprocess
import tomllib
import zipfile

import blenderlib as bl


def test_extension_zip_layout(artifacts):
    with zipfile.ZipFile(artifacts["extension"]) as z:
        names = set(z.namelist())
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
    assert manifest["id"] == "bgloop_demo" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] >= "4.2.0"
    bgloop_wheel, h11_wheel = manifest["wheels"]
    assert bgloop_wheel == f"./wheels/{artifacts['wheel'].name}"
    assert re.fullmatch(r"\./wheels/h11-[0-9.]+-py3-none-any\.whl", h11_wheel), h11_wheel
    assert {bgloop_wheel[2:], h11_wheel[2:]} <= names
    # One wheel for every Blender from 3.6 LTS (Python 3.10) on.
    assert "-cp310-abi3-" in artifacts["wheel"].name
    with zipfile.ZipFile(artifacts["wheel"]) as w:
        meta = next(w.read(n).decode() for n in w.namelist() if n.endswith(".dist-info/WHEEL"))
    assert "Tag: cp310-abi3-" in meta
    assert {"__init__.py", "httpd.py", "api.py", "service.py", "ui.py", "settings.py"} <= names
    assert "network" in manifest["permissions"]
    # Rules Blender 4.2+ enforces (see test_extension_passes_blenders_validator).
    for text in [manifest["tagline"], *manifest["permissions"].values()]:
        assert len(text) <= 64 and (text[-1].isalnum() or text[-1] in ")]}"), text


def test_legacy_zip_layout(artifacts):
    with zipfile.ZipFile(artifacts["legacy"]) as z:
        names = set(z.namelist())
        init = z.read("bgloop_demo/__init__.py").decode()
    assert "bl_info" in init
    assert "bgloop_demo/vendor/bgloop/__init__.py" in names
    assert any(re.match(r"bgloop_demo/vendor/bgloop/_bgloop\..*abi3.*\.so$", n) for n in names)
    # h11, the add-on's HTTP parser, travels with its license.
    assert {"bgloop_demo/vendor/h11/__init__.py", "bgloop_demo/vendor/h11/LICENSE.txt"} <= names
    assert not [n for n in names if ".dist-info" in n]


def test_extension_passes_blenders_validator(bpy_python, artifacts):
    """bpy 4.5's own `extension validate` (the check Blender runs when it
    installs or publishes an extension) accepts the zip."""
    cli = next(bpy_python.parent.parent.glob(
        "lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    res = subprocess.run([str(bpy_python), str(cli), "validate", str(artifacts["extension"])],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_extension_installs_and_serves_in_bpy_45(bpy_python, tmp_path, artifacts):
    """Blender 4.5 (bpy from PyPI) installs the extension with its wheel and
    the service answers; SIGTERM stops it cleanly."""
    env = bl.blender_env(tmp_path, BLENDER_USER_RESOURCES=tmp_path / "resources")
    proc = bl.Proc([str(bpy_python), str(bl.HERE / "scripts" / "bpy_extension_main.py"),
                    str(artifacts["extension"]), str(bl.KEEP_ALIVE)], env, tmp_path / "ext.log")
    try:
        origin = proc.wait_for(r"bgloop from (\S+)", 120).group(1)
        assert str(tmp_path / "resources") in origin      # the wheel Blender installed
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)", 60).group(1))
        status, scene = bl.request(port, "GET", "/scene")
        assert status == 200 and scene["blender"].startswith("4.5")
        status, st = bl.request(port, "GET", "/status")
        assert st["services"]["bgloop_demo.http"]["owner"] == "bl_ext.user_default.bgloop_demo"
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.tail()
        assert "scripts done, exit code 0" in proc.output()
        assert "Traceback" not in proc.output(), proc.tail()
    finally:
        proc.stop()
