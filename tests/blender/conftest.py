"""Fixtures for the Blender tests (see blenderlib.py for the helpers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

import blenderlib as bl

BPY_SPEC = "bpy>=4.5,<4.6"
BPY_INSTALL_TIMEOUT = 300


def pytest_configure(config):
    if bl.BLENDER is None:
        raise pytest.UsageError("blender is not installed (scripts/setup installs it)")


@pytest.fixture(scope="session")
def artifacts():
    """Wheel, site dir with bgloop installed, both add-on zips."""
    t0 = time.monotonic()
    art = bl.prepare()
    print(f"\nartifacts ready in {time.monotonic() - t0:.1f}s: {art['wheel'].name}")
    return art


@pytest.fixture
def blender_home(tmp_path, artifacts):
    """A fresh user setup with the demo add-on (legacy form) installed."""
    scripts = tmp_path / "scripts"
    bl.install_addon(artifacts["legacy"], scripts)
    return tmp_path


def _python311() -> str | None:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    for cand in ("python3.11", os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python")):
        path = shutil.which(cand) or (cand if os.path.exists(cand) else None)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def bpy_python():
    """A Python 3.11 venv with bpy 4.5 from PyPI (Blender as a module).
    Skips, saying why, when it cannot be installed in a few minutes."""
    venv = bl.OUT / "bpy-venv"
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import bpy; print(bpy.app.version_string)"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    base = _python311()
    if base is None:
        pytest.skip("no Python 3.11 to install bpy 4.5 (it is built for 3.11 only)")
    shutil.rmtree(venv, ignore_errors=True)
    t0 = time.monotonic()
    try:
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        BPY_SPEC], check=True, timeout=BPY_INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip install {BPY_SPEC} took over {BPY_INSTALL_TIMEOUT}s")
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"pip install {BPY_SPEC} failed ({exc}); PyPI unreachable or no wheel")
    res = subprocess.run(probe, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"bpy from PyPI installed but does not import: {res.stderr[-500:]}")
    print(f"\nbpy {res.stdout.strip()} installed from PyPI in {time.monotonic() - t0:.0f}s")
    return py
