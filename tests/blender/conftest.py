"""Fixtures for the Blender tests (see blenderlib.py for the helpers)."""

from __future__ import annotations

import time

import pytest

import blenderlib as bl


def pytest_configure(config):
    if bl.BLENDER is None:
        raise pytest.UsageError("blender is not installed (scripts/setup installs it)")


@pytest.fixture(scope="session")
def artifacts():
    """Wheels, site dir with bgloop installed, the add-on zips (blenderlib.prepare)."""
    t0 = time.monotonic()
    try:
        art = bl.prepare()
    except bl.BpyInstallError as exc:
        pytest.fail(str(exc), pytrace=False)
    print(f"\nartifacts ready in {time.monotonic() - t0:.1f}s: {art['wheel'].name}")
    return art


@pytest.fixture
def blender_home(tmp_path, artifacts):
    """A fresh user setup with the demo add-on (legacy form) installed."""
    scripts = tmp_path / "scripts"
    bl.install_addon(artifacts["legacy"], scripts)
    return tmp_path


@pytest.fixture(scope="session")
def bpy_python():
    """The python of a venv with bpy 4.5 from PyPI (Blender as a module),
    shared with tests/bpy through blenderlib's download and venv cache.
    Fails, saying why, when it cannot be installed."""
    try:
        return bl.bpy_venv("4.5")
    except bl.BpyInstallError as exc:
        pytest.fail(str(exc), pytrace=False)
