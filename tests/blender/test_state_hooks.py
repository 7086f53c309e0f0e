"""State hooks in a real Blender 3.4: bgloop.on_state_change() fires for
start and stop transitions in ``--background`` (also through an add-on's
vendored copy of bgloop, for the services of both) and in the GUI under Xvfb,
where the demo add-on's sidebar panel (subscribed with its owner) draws
again after each change, with no input events and no polling."""

from __future__ import annotations

import json
import time

import pytest

import blenderlib as bl

SCRIPT = """
import addon_utils, json, sys
import bgloop

seen, vendored_seen = [], []
bgloop.on_state_change(lambda name, old, new, error: seen.append([name, old, new]))
# An add-on with its own vendored copy of bgloop: its services and ours
# share one manager, so a hook subscribed through either sees both.
addon_utils.enable("vend_hooks", default_set=False, handle_error=None)
vendored = sys.modules["vend_hooks"].bgloop
vendored.on_state_change(lambda name, old, new, error: vendored_seen.append([name, old, new]))

@bgloop.service("hooks.bg", owner="hooks")
async def svc(ctx):
    ctx.ready()
    await ctx.stopping.wait()

loop = bgloop.ensure_loop()
bgloop.start_services("hooks")
while bgloop.status()["hooks.bg"]["state"] != "running":
    loop.kick(timeout=0.05)
bgloop.stop_services("hooks")
addon_utils.disable("vend_hooks", default_set=False, handle_error=None)
print("HOOKS " + json.dumps(seen), flush=True)
print("VENDORED " + json.dumps(vendored_seen), flush=True)
"""

TRANSITIONS = [["hooks.bg", "stopped", "starting"], ["hooks.bg", "starting", "running"],
               ["hooks.bg", "running", "stopping"], ["hooks.bg", "stopping", "stopped"]]


def test_background_state_hooks(tmp_path, artifacts):
    script = tmp_path / "hooks.py"
    script.write_text(SCRIPT)
    bl.make_echo_addon("vend_hooks", tmp_path / "scripts", vendor_from=artifacts["site"])
    proc = bl.start_background(tmp_path, python=[script],
                               env=bl.blender_env(tmp_path, pythonpath=[artifacts["site"]]))
    try:
        assert proc.wait(120) == 0, proc.tail()
        seen = json.loads(proc.wait_for(r"HOOKS (.*)", timeout=5).group(1))
        vendored = json.loads(proc.wait_for(r"VENDORED (.*)", timeout=5).group(1))
        assert [t for t in seen if t[0] == "hooks.bg"] == TRANSITIONS
        assert [t for t in vendored if t[0] == "hooks.bg"] == TRANSITIONS
        echo = [t[1:] for t in seen if t[0] == "vend_hooks.echo"]
        assert ["starting", "running"] in echo and echo[-1] == ["stopping", "stopped"], seen
    finally:
        proc.stop()


def _quiet(h) -> int:
    """Wait until the panel stops redrawing (nothing changes, nothing
    redraws it); its draw count then."""
    n = h(eval="ui_mod.draw_count")
    for _ in range(30):
        time.sleep(1.0)
        m = h(eval="ui_mod.draw_count")
        if m == n:
            return n
        n = m
    raise AssertionError("the bgloop panel keeps redrawing with nothing changing")


@pytest.mark.skipif(bl.XVFB_RUN is None, reason="xvfb-run missing (apt: xvfb)")
def test_gui_state_hooks_redraw_the_panel(tmp_path, artifacts):
    bl.install_addon(artifacts["legacy"], tmp_path / "scripts")
    proc = bl.start_gui(tmp_path, env=bl.blender_env(tmp_path))
    try:
        port = int(proc.wait_for(r"HARNESS control port (\d+)", timeout=120).group(1))
        h = bl.Harness(port)
        h(exec="""
import addon_utils, sys
addon_utils.enable('bgloop_demo', default_set=True, handle_error=None)
import bgloop
ui_mod = sys.modules['bgloop_demo.ui']
seen = []
sub = bgloop.on_state_change(lambda name, old, new, error: seen.append([name, old, new]))

@bgloop.service("hooks.gui", owner="hooks_gui")
async def hooks_gui(ctx):
    ctx.ready()
    await ctx.stopping.wait()

win = bpy.context.window_manager.windows[0]
view3d = [a for a in win.screen.areas if a.type == 'VIEW_3D'][0]
view3d.spaces[0].show_region_ui = True
view3d.tag_redraw()
sidebar = [r for r in view3d.regions if r.type == 'UI'][0]
draws_before = ui_mod.draw_count
""")
        h.wait_until("bgloop.status().get('bgloop_demo.http', {}).get('state') == 'running'",
                     timeout=60)
        # The sidebar opens on its first tab: click down its tab strip until
        # the bgloop panel draws.
        for step in range(100):
            if h(eval="ui_mod.draw_count > draws_before"):
                break
            h(exec=f"""
x = sidebar.x + sidebar.width - 8
y = sidebar.y + sidebar.height - 10 - {step} * 8
for kind, value in (('MOUSEMOVE', 'NOTHING'), ('LEFTMOUSE', 'PRESS'), ('LEFTMOUSE', 'RELEASE')):
    win.event_simulate(kind, value, x=x, y=y)
""")
            time.sleep(0.1)
        assert h(eval="ui_mod.draw_count > draws_before"), "the bgloop panel never drew"

        for action, state in (("start", "running"), ("stop", "stopped")):
            quiet = _quiet(h)
            h(exec=f"bgloop.{action}_services('hooks_gui')")
            h.wait_until(f"bgloop.status()['hooks.gui']['state'] == {state!r}", timeout=30)
            h.wait_until(f"ui_mod.draw_count > {quiet}", timeout=30)
        assert h(eval="[s for s in seen if s[0] == 'hooks.gui']") == [
            ["hooks.gui", "stopped", "starting"], ["hooks.gui", "starting", "running"],
            ["hooks.gui", "running", "stopping"], ["hooks.gui", "stopping", "stopped"]]
        # Disabling the add-on forgets its services and drops its subscription.
        hooks = "len(bgloop.services.manager().state_hooks)"
        assert h(eval=hooks) == 2
        h(exec="addon_utils.disable('bgloop_demo', default_set=True, handle_error=None)")
        assert h(eval=hooks) == 1 and h(eval="sub.active") is True
        h(exec="sub(); bgloop.forget_services('hooks_gui')")
        h(exec="bpy.ops.wm.quit_blender()", timeout=10)
        proc.wait(30)
        assert "Traceback" not in proc.output(), proc.tail()
    finally:
        proc.stop()
