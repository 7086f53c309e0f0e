"""The add-on packages build.py makes: one Blender 4.2+ extension per
platform (Blender's own `build --split-platforms`) and a legacy zip."""

from __future__ import annotations

import importlib.util
import io
import re
import signal
import subprocess
import tomllib
import zipfile

import pytest

import blenderlib as bl

PLATFORMS = ["linux-x64", "linux-arm64", "macos-arm64", "macos-x64", "windows-x64"]


def _blender_ext(cli):
    """Blender's packager as a module: its own wheel -> platform mapping."""
    spec = importlib.util.spec_from_file_location("blender_ext", cli)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wheel_tags(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as w:
        meta = next(w.read(n).decode() for n in w.namelist() if n.endswith(".dist-info/WHEEL"))
    return re.findall(r"(?m)^Tag: (\S+)$", meta)


def test_one_extension_zip_per_platform(artifacts):
    """Exactly one zip per platform, named as Blender names split builds."""
    made = sorted(p.name for p in bl.OUT.glob("bgloop_demo-*.zip") if "legacy" not in p.name)
    assert made == sorted(p.name for p in artifacts["extensions"].values())
    assert artifacts["platforms"] == PLATFORMS


@pytest.mark.parametrize("platform", PLATFORMS)
def test_extension_zip_holds_its_platforms_wheel(platform, artifacts):
    ext = _blender_ext(artifacts["cli"])
    with zipfile.ZipFile(artifacts["extensions"][platform]) as z:
        names = set(z.namelist())
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        wheels = {n: z.read(n) for n in names if n.startswith("wheels/")}
    assert manifest["id"] == "bgloop_demo" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] >= "4.2.0"
    assert manifest["platforms"] == artifacts["platforms"]
    generated = manifest["build"]["generated"]
    assert generated["platforms"] == [platform]
    assert {w[2:] for w in generated["wheels"]} == set(wheels)
    bgloop_wheels = [n for n in wheels if n.startswith("wheels/bgloop-")]
    assert bgloop_wheels == [f"wheels/{artifacts['wheels'][platform].name}"]
    # Blender's own reading of the wheel's platform tags, and one abi3 wheel
    # for every Python from 3.10 on.
    for tag in _wheel_tags(wheels[bgloop_wheels[0]]):
        py, abi, plat = tag.split("-")
        assert (py, abi) == ("cp310", "abi3"), tag
        assert ext.blender_platforms_from_wheel_platform(plat) == [platform], tag
    others = set(wheels) - set(bgloop_wheels)
    assert len(others) == 1 and re.fullmatch(r"wheels/h11-[0-9.]+-py3-none-any\.whl",
                                             others.pop())
    assert {"__init__.py", "api.py", "service.py", "ui.py", "settings.py"} <= names
    assert "network" in manifest["permissions"]
    # Rules Blender 4.2+ enforces (also test_extensions_pass_blenders_validator).
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


@pytest.mark.parametrize("platform", PLATFORMS)
def test_extensions_pass_blenders_validator(platform, bpy_python, artifacts):
    """bpy 4.5's own `extension validate` (the check Blender runs when it
    installs or publishes an extension) accepts each zip."""
    res = subprocess.run([str(bpy_python), str(bl.bpy_cli(bpy_python)), "validate",
                          str(artifacts["extensions"][platform])],
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


def test_listening_beyond_loopback_needs_online_access(bpy_python, blender_home, artifacts):
    """bpy as a module has Blender's online access off: the demo refuses to
    listen on 0.0.0.0 and says why, instead of opening the port."""
    env = bl.blender_env(blender_home, pythonpath=[artifacts["site"]],
                         BGLOOP_TEST_ADDONS="bgloop_demo", BGLOOP_DEMO_HOST="0.0.0.0")
    res = subprocess.run([str(bpy_python), str(bl.HERE / "scripts" / "bpy_module_main.py"),
                          str(bl.KEEP_ALIVE)], env=env, capture_output=True, text=True,
                         timeout=120)
    out = res.stdout + res.stderr
    assert "listening on 0.0.0.0 (beyond loopback) needs Blender's online access" in out, out
    assert "bgloop_demo: listening on" not in out, out
    assert res.returncode == 1, out
