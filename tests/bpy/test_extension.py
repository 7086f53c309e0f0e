"""The demo add-on as an extension in every bpy of the matrix: that bpy's
own packager builds the linux-x64 zip (build.py --blender-ext), Blender
installs it with its wheel, the service answers, SIGTERM exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys

import blenderlib as bl


def test_extension_builds_installs_and_serves(bpy, wheel, tmp_path):
    series, python = bpy
    version = bl.BPY_RELEASES[series][1]
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(bl.BUILD_PY), "--out", str(out), "--wheel", str(wheel),
                    "--blender-ext", str(bl.bpy_cli(python))], check=True)
    prefix = f"bgloop_demo-{bl.load_build_py().addon_version()}"
    zips = sorted(p.name for p in out.glob("bgloop_demo-*.zip"))
    assert zips == [f"{prefix}-legacy.zip", f"{prefix}-linux_x64.zip"], zips

    env = bl.blender_env(tmp_path, BLENDER_USER_RESOURCES=tmp_path / "resources")
    proc = bl.Proc([str(python), str(bl.HERE / "scripts" / "bpy_extension_main.py"),
                    str(out / f"{prefix}-linux_x64.zip"), str(bl.KEEP_ALIVE)],
                   env, tmp_path / "ext.log")
    try:
        origin = proc.wait_for(r"bgloop from (\S+)", 120).group(1)
        assert str(tmp_path / "resources") in origin      # the wheel Blender installed
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)", 60).group(1))
        status, scene = bl.request(port, "GET", "/scene")
        assert status == 200 and scene["blender"].startswith(version), scene
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.tail()
        assert "Traceback" not in proc.output(), proc.tail()
    finally:
        proc.stop()
