"""Fixtures for the bpy matrix: one venv per Blender series of
blenderlib.BPY_RELEASES (bpy from PyPI, cached), bgloop's wheel on top."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "blender"))
import blenderlib as bl  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def wheel() -> pathlib.Path:
    """bgloop's manylinux x86_64 wheel: BGLOOP_BPY_WHEEL, or scripts/wheels'."""
    if os.environ.get("BGLOOP_BPY_WHEEL"):
        path = pathlib.Path(os.environ["BGLOOP_BPY_WHEEL"]).resolve()
    else:
        res = subprocess.run([str(bl.REPO / "scripts" / "wheels"), "--reuse", "linux-x86_64"],
                             cwd=bl.REPO, stdout=subprocess.PIPE, text=True)
        if res.returncode != 0:
            pytest.fail(f"scripts/wheels linux-x86_64 failed (exit {res.returncode})", pytrace=False)
        path = bl.REPO / res.stdout.split()[-1]
    if not path.is_file():
        pytest.fail(f"no bgloop wheel at {path}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def site(wheel, tmp_path_factory) -> pathlib.Path:
    """A directory with the wheel installed, for PYTHONPATH (the bpy venvs
    stay bpy-only: they are shared and cached)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--target", str(target), str(wheel)], check=True)
    return target


@pytest.fixture(scope="session", params=list(bl.BPY_RELEASES), ids=lambda s: f"bpy-{s}")
def bpy(request):
    """(series, python of its bpy venv); fails, saying why, if that bpy
    cannot be installed."""
    series = request.param
    try:
        return series, bl.bpy_venv(series)
    except bl.BpyInstallError as exc:
        pytest.fail(f"bpy {series}: {exc}", pytrace=False)
