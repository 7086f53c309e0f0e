"""GUI Blender start-up with the demo add-on enabled in the saved preferences."""

from __future__ import annotations

import pytest

import blenderlib as bl

pytestmark = pytest.mark.skipif(bl.XVFB_RUN is None, reason="xvfb-run missing (apt: xvfb)")

DEMO = r"bgloop_demo: listening on http://127\.0\.0\.1:(\d+)"


def test_gui_addon_from_preferences_starts_with_blender(tmp_path, artifacts):
    """The everyday path: enabled in the saved preferences, Blender starts,
    the add-on registers during start-up and its service answers."""
    bl.install_addon(artifacts["legacy"], tmp_path / "scripts")
    env = bl.blender_env(tmp_path)
    bl.enable_in_saved_preferences(tmp_path, env, "bgloop_demo")
    proc = bl.start_gui(tmp_path, env=env, factory=False)
    try:
        port = int(proc.wait_for(DEMO, timeout=120).group(1))
        h = bl.Harness(int(proc.wait_for(r"HARNESS control port (\d+)", 60).group(1)))
        assert bl.request(port, "GET", "/scene")[1]["background"] is False
        assert h(eval="__import__('bgloop').blender.info()['driver_installed']")
        h(exec="bpy.ops.wm.quit_blender()")
        assert proc.wait(60) == 0, proc.tail()
        assert "Traceback" not in proc.output(), proc.tail()
    finally:
        proc.stop()
