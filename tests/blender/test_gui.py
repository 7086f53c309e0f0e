"""A real GUI Blender under Xvfb, remote-controlled by harness/gui_harness.py.

One Blender serves the whole module (start-up with software GL is the
slow part); the tests run in file order and each leaves the add-ons as it
found them.  Generous bounds only: these machines are shared and noisy.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time

import pytest

import blenderlib as bl

pytestmark = pytest.mark.skipif(bl.XVFB_RUN is None, reason="xvfb-run missing (apt: xvfb)")

# Snapshot of what the loop and the process hold, taken inside Blender.
COUNTS = """
def counts():
    import asyncio, os, sys, bgloop
    loop = bgloop.ensure_loop()
    stats = dict(bgloop.stats())
    timers = stats.get("timers", len(getattr(loop, "_scheduled", ())))
    return {"fds": len(os.listdir("/proc/self/fd")),
            "tasks": len([t for t in asyncio.all_tasks(loop) if not t.done()]),
            "timers": timers,
            "threads": __import__("threading").active_count(),
            "services": sorted(bgloop.status())}
"""


@pytest.fixture(scope="module")
def gui(tmp_path_factory, artifacts):
    tmp = tmp_path_factory.mktemp("gui")
    scripts = tmp / "scripts"
    bl.install_addon(artifacts["legacy"], scripts)
    bl.make_echo_addon("bgloop_second", scripts)
    bl.make_echo_addon("vend_a", scripts, vendor_from=artifacts["site"])
    bl.make_echo_addon("vend_b", scripts, vendor_from=artifacts["site"])
    bl.make_echo_addon("vend_future", scripts, vendor_from=artifacts["site"], protocol=99)
    bl.make_echo_addon("vend_past", scripts, vendor_from=artifacts["site"], protocol=1)
    # No BGLOOP_DEMO_TOKEN: the add-on must generate one into its preferences.
    # A fixed port: every restart and enable cycle must get it back at once.
    proc = bl.start_gui(tmp, env=bl.blender_env(tmp, BGLOOP_DEMO_TOKEN="",
                                                BGLOOP_DEMO_PORT=bl.free_port()))
    try:
        port = int(proc.wait_for(r"HARNESS control port (\d+)", timeout=120).group(1))
        h = bl.Harness(port)
        h(exec="import addon_utils, sys, os, time\n" + COUNTS)
        yield proc, h, tmp
        try:
            h(exec="bpy.ops.wm.quit_blender()", timeout=10)
            proc.wait(30)
        except Exception:
            pass
        # The only tracebacks allowed: those the driver logs for the kicks
        # test_gui_driver_survives_exceptions... makes fail on purpose.
        out = proc.output()
        assert out.count("Traceback") == out.count("bgloop driver tick failed"), proc.tail()
    finally:
        proc.stop()


def _next_port(proc, pattern, seen):
    """Wait for the (seen+1)-th line matching ``pattern``; its port."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.findall(pattern, proc.output())
        if len(found) > seen:
            return int(found[-1])
        time.sleep(0.05)
    raise AssertionError(f"no new {pattern!r} line\n{proc.tail()}")


def _enable(proc, h, module, pattern, seen=0):
    """Enable an add-on and wait for its service's next 'listening' line."""
    h(exec=f"addon_utils.enable({module!r}, default_set=True, handle_error=None)")
    return _next_port(proc, pattern, seen)


def _listen_count(proc, pattern):
    return len(re.findall(pattern, proc.output()))


DEMO = r"bgloop_demo: listening on http://127\.0\.0\.1:(\d+)"


@pytest.fixture(scope="module")
def demo(gui):
    proc, h, tmp = gui
    port = _enable(proc, h, "bgloop_demo", DEMO)
    return port


def test_gui_service_answers_while_ui_runs(gui, demo):
    proc, h, _ = gui
    info = h(eval="__import__('bgloop').blender.info()")
    assert info["driver_installed"] and not info["background"], info
    status, scene = bl.request(demo, "GET", "/scene")
    assert status == 200 and scene["background"] is False
    token = h(eval="bpy.context.preferences.addons['bgloop_demo'].preferences.token")
    assert len(token) >= 20, token
    assert bl.request(demo, "POST", "/objects", token=bl.TOKEN, body={})[0] == 401
    for via in ("loop", "thread"):
        status, made = bl.request(demo, "POST", "/objects", token=token,
                                  body={"kind": "cube", "name": f"gui_{via}", "via": via})
        assert status == 201 and made["thread"] == "MainThread", made
    assert h(eval="sorted(o.name for o in bpy.data.objects if o.name.startswith('gui_'))") == \
        ["gui_loop", "gui_thread"]


def test_gui_ui_timer_keeps_ticking_under_load(gui, demo):
    """Clients keep the service busy; Blender's own timer must keep ticking.

    Counted in window-manager passes, not wall time: the machine may be
    loaded.  The UI heartbeat (20 ms) and the driver (5 ms) both get at most
    one call per pass, so an unstarved UI ticks about as often as the driver."""
    proc, h, _ = gui
    before = h(eval="(heartbeat['ticks'], __import__('bgloop').blender.info()['ticks'])")
    h(exec="heartbeat['max_gap'] = 0.0; sys.modules['_bgloop_process'].longest_tick = 0.0")
    target, deadline = 60, time.monotonic() + 90
    done, errors = [0], []

    def client():
        while done[0] < target and time.monotonic() < deadline:
            try:
                status, _ = bl.request(demo, "GET", "/status", timeout=30)
                assert status == 200
                done[0] += 1
            except Exception as exc:       # collected, asserted below
                errors.append(repr(exc))
                return

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    after = h(eval="(heartbeat['ticks'], __import__('bgloop').blender.info()['ticks'], "
                   "heartbeat['max_gap'], __import__('bgloop').blender.info()['longest_tick'])")
    ui_ticks, driver_ticks = after[0] - before[0], after[1] - before[1]
    print(f"under load: {done[0]} requests, UI timer ticks {ui_ticks}, driver ticks "
          f"{driver_ticks}, longest UI timer gap {after[2] * 1000:.0f} ms, longest driver "
          f"tick {after[3] * 1000:.1f} ms")
    assert not errors, errors[:3]
    assert done[0] >= target
    assert driver_ticks >= 3
    assert ui_ticks >= 3 and ui_ticks * 4 >= driver_ticks, (ui_ticks, driver_ticks)


def test_gui_driver_survives_exceptions_and_is_configurable(gui, demo):
    """A failing kick is logged and counted; the driver stays registered and
    carries on once the cause is gone.  Budget/interval are checked."""
    proc, h, _ = gui
    h(exec="""
import bgloop.blender as bb
reg = sys.modules['_bgloop_process']
saved_budget = reg.budget
errors_before = bb.info()['errors']
reg.budget = -1.0          # kick() rejects it: every tick now raises ValueError
""")
    try:
        h.wait_until("bb.info()['errors'] >= errors_before + 3")
        assert h(eval="bb.info()['driver_installed']"), "an exception removed the driver"
        assert "ValueError" in h(eval="bb.info()['last_error']")
    finally:
        h(exec="reg.budget = saved_budget")
    ticks = h(eval="bb.info()['ticks']")
    h.wait_until(f"bb.info()['ticks'] > {ticks} + 3")
    assert bl.request(demo, "GET", "/health")[0] == 200

    for bad, exc in (("'2ms'", "TypeError"), ("-0.5", "ValueError"), ("True", "TypeError")):
        h(exec=f"""
try:
    bb.configure(budget={bad})
    outcome = 'accepted'
except Exception as e:
    outcome = type(e).__name__
""")
        assert h(eval="outcome") == exc, bad
    h(exec="bb.configure(budget=0.004, interval=0.01)")
    assert h(eval="(bb.info()['budget'], bb.info()['interval'])") == [0.004, 0.01]
    h(exec="bb.configure(budget=saved_budget, interval=bb.DEFAULT_INTERVAL)")
    assert h(eval="bb.info()['budget']") == bb_default_budget()


def bb_default_budget():
    return 0.002        # bgloop.config's default: BGLOOP_KICK_BUDGET is unset here


def test_gui_panel_draws(gui, demo):
    proc, h, tmp = gui
    h(exec="""
ui_mod = sys.modules['bgloop_demo.ui']
win = bpy.context.window_manager.windows[0]
view3d = [a for a in win.screen.areas if a.type == 'VIEW_3D'][0]
view3d.spaces[0].show_region_ui = True
view3d.tag_redraw()
sidebar = [r for r in view3d.regions if r.type == 'UI'][0]
draws_before = ui_mod.draw_count
""")
    time.sleep(0.5)
    # The sidebar opens on its first tab; click down the tab strip on its
    # right edge until our tab is active and the panel draws.
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
    time.sleep(0.5)
    shot = tmp / "panel.png"
    h(exec=f"""
with bpy.context.temp_override(window=win, area=view3d):
    shot_result = bpy.ops.screen.screenshot(filepath={str(shot)!r})
img = bpy.data.images.load({str(shot)!r})
w, hgt = img.size
px = img.pixels[:]
def variance(x0, y0, x1, y1):
    vals = [px[(y * w + x) * 4] for y in range(y0, y1, 4) for x in range(x0, x1, 4)]
    m = sum(vals) / len(vals)
    return sum((v - m) ** 2 for v in vals) / len(vals)
whole_var = variance(0, 0, w, hgt)
panel_var = variance(sidebar.x, sidebar.y, sidebar.x + sidebar.width, sidebar.y + sidebar.height)
bpy.data.images.remove(img)
""")
    result, whole, panel = h(eval="(sorted(shot_result), whole_var, panel_var)")
    out = bl.OUT / "gui-panel.png"
    shutil.copy(shot, out)
    print(f"screenshot {out}: variance whole {whole:.4f}, sidebar {panel:.4f}")
    assert result == ["FINISHED"]
    assert whole > 1e-3 and panel > 1e-4, (whole, panel)


def test_gui_panel_stop_start_buttons(gui, demo):
    """The panel's Stop/Start operators act on one owner's services."""
    proc, h, _ = gui
    seen = _listen_count(proc, DEMO)
    assert h(eval="sorted(bpy.ops.bgloop_demo.stop_services(owner='bgloop_demo'))") == ["FINISHED"]
    assert h(eval="__import__('bgloop').status()['bgloop_demo.http']['state']") in ("stopped", "exited")
    assert bl.port_is_free(demo)
    assert h(eval="sorted(bpy.ops.bgloop_demo.start_services(owner='bgloop_demo'))") == ["FINISHED"]
    port = _next_port(proc, DEMO, seen)
    assert bl.request(port, "GET", "/health")[0] == 200
    h.wait_until("__import__('bgloop').status()['bgloop_demo.http']['state'] == 'running'")
    assert port == demo                 # the same port, free again at once


def test_gui_driver_survives_file_load(gui, demo):
    proc, h, _ = gui
    loads = bl.request(demo, "GET", "/scene")[1]["loads"]
    h(exec="bpy.ops.wm.read_homefile(use_empty=True)")
    status, scene = bl.request(demo, "GET", "/scene")
    assert status == 200
    assert scene["loads"] == loads + 1           # the service saw load_post
    assert scene["objects"] == []                # and reads the new file
    assert h(eval="__import__('bgloop').blender.info()['driver_installed']")


def test_gui_disable_leaves_nothing(gui, demo):
    proc, h, _ = gui
    h(exec="addon_utils.disable('bgloop_demo', default_set=True, handle_error=None)")
    c = h(eval="counts()")
    assert c["services"] == [] and c["tasks"] == 0, c
    assert bl.port_is_free(demo)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", demo), timeout=2).close()
    # The shared driver stays (other add-ons may need it), idle.
    assert h(eval="__import__('bgloop').blender.info()['driver_installed']")


def test_gui_enable_disable_20_cycles_leak_nothing(gui):
    proc, h, _ = gui
    samples = []
    for cycle in range(20):
        seen = _listen_count(proc, DEMO)
        port = _enable(proc, h, "bgloop_demo", DEMO, seen=seen)
        if cycle == 0:
            first_port = port
        assert port == first_port           # freed at once, bound again
        assert bl.request(port, "GET", "/health")[0] == 200
        h(exec="addon_utils.disable('bgloop_demo', default_set=True, handle_error=None)")
        samples.append(h(eval="counts()"))
        assert bl.port_is_free(port)
    first, last = samples[0], samples[-1]
    print("cycle 1:", first, "cycle 20:", last)
    assert all(s["tasks"] == 0 and s["services"] == [] for s in samples), samples
    assert last["fds"] <= first["fds"] + 2, (first, last)
    assert last["timers"] <= first["timers"], (first, last)
    assert last["threads"] <= first["threads"], (first, last)


def test_gui_reload_scripts_keeps_one_loop(gui):
    """'Reload Scripts' 20 times: add-ons re-register, the loop stays the same
    and nothing accumulates (compared at rest, with the add-on disabled:
    a running service's own task/timer count varies from moment to moment)."""
    proc, h, _ = gui
    _enable(proc, h, "bgloop_demo", DEMO, seen=_listen_count(proc, DEMO))
    h(exec="addon_utils.disable('bgloop_demo', default_set=True, handle_error=None)")
    baseline = h(eval="counts()")
    port = _enable(proc, h, "bgloop_demo", DEMO, seen=_listen_count(proc, DEMO))
    loop_id = h(eval="id(__import__('bgloop').ensure_loop())")
    for _ in range(20):
        seen = _listen_count(proc, DEMO)
        h(exec="bpy.ops.script.reload()")      # re-registers enabled add-ons
        port = _next_port(proc, DEMO, seen)
        assert bl.request(port, "GET", "/health")[0] == 200
        assert h(eval="counts()")["services"] == ["bgloop_demo.http"]
    assert h(eval="id(__import__('bgloop').ensure_loop())") == loop_id
    h(exec="addon_utils.disable('bgloop_demo', default_set=True, handle_error=None)")
    after = h(eval="counts()")
    print("before reloads:", baseline, "after 20 reloads:", after)
    assert after["tasks"] == 0 and after["services"] == [], after
    assert after["fds"] <= baseline["fds"] + 2, (baseline, after)
    assert after["timers"] <= baseline["timers"], (baseline, after)
    assert after["threads"] <= baseline["threads"], (baseline, after)


def _echo(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"ping\n")
        return s.recv(100)


ECHO = r"{}: echo on (\d+)"


def test_gui_several_addons_share_one_loop(gui):
    proc, h, _ = gui
    demo_port = _enable(proc, h, "bgloop_demo", DEMO, seen=_listen_count(proc, DEMO))
    second = ECHO.format("bgloop_second")
    echo_port = _enable(proc, h, "bgloop_second", second, seen=_listen_count(proc, second))
    assert _echo(echo_port) == b"ping\n"
    owners = h(eval="sorted({s['owner'] for s in __import__('bgloop').status().values()})")
    assert owners == ["bgloop_demo", "bgloop_second"]
    # Disabling one stops only its own.
    h(exec="addon_utils.disable('bgloop_second', default_set=True, handle_error=None)")
    assert bl.port_is_free(echo_port)
    assert bl.request(demo_port, "GET", "/health")[0] == 200
    h(exec="addon_utils.disable('bgloop_demo', default_set=True, handle_error=None)")
    assert h(eval="counts()")["tasks"] == 0


def test_gui_vendored_copies_share_loop_and_driver(gui):
    """Two add-ons with private copies of bgloop (plus the top-level one)."""
    proc, h, _ = gui
    ports = {}
    for name in ("vend_a", "vend_b"):
        pat = ECHO.format(name)
        ports[name] = _enable(proc, h, name, pat, seen=_listen_count(proc, pat))
    for port in ports.values():
        assert _echo(port) == b"ping\n"
    h(exec="""
names = ['vend_a._vendor.bgloop', 'vend_b._vendor.bgloop', 'bgloop']
packages = [sys.modules[n] for n in names]
addon_views = [sys.modules['vend_a'].bgloop, sys.modules['vend_b'].bgloop]
# Each copy's own blender module was imported (it ran the hand-over) ...
own = [sys.modules[n + '.blender'] for n in names if n + '.blender' in sys.modules]
drivers = [bpy.app.timers.is_registered(m._driver) for m in own]
owners = sorted({s['owner'] for s in sys.modules['bgloop'].status().values()})
# ... and reaches the one registry, an instance of one copy's class only.
regs = [m._registry() for m in own]
reg = regs[0]
registry = {
    'one': all(r is reg for r in regs) and reg is sys.modules['_bgloop_process'],
    'classes': len({id(m.Registry) for m in own}),
    'foreign': sum(type(reg) is not m.Registry for m in own),
    'protocol': reg.protocol,
    'loop': reg.loop is sys.modules['bgloop'].ensure_loop(),
    'driver': bpy.app.timers.is_registered(reg.driver) and reg.driver in [m._driver for m in own],
    'ticks': reg.ticks,
}
""")
    same, n_own, drivers, owners = h(eval="(all(p is packages[2] for p in packages + addon_views), "
                                          "len(own), drivers, owners)")
    assert same, "a vendored copy did not hand over to the first bgloop"
    assert n_own == 3
    assert drivers.count(True) == 1, f"expected exactly one driver, got {drivers}"
    assert owners == ["vend_a", "vend_b"]
    registry = h(eval="registry")
    assert registry["one"] and registry["loop"] and registry["driver"], registry
    assert (registry["classes"], registry["foreign"], registry["protocol"]) == (3, 2, 2), registry
    h.wait_until(f"reg.ticks > {registry['ticks']}")    # the copies' one driver keeps ticking
    for name in ("vend_a", "vend_b"):
        h(exec=f"addon_utils.disable({name!r}, default_set=True, handle_error=None)")
        assert bl.port_is_free(ports[name])
    assert h(eval="counts()")["tasks"] == 0


@pytest.mark.parametrize("addon, protocol", [("vend_future", 99), ("vend_past", 1)])
def test_gui_incompatible_copy_refuses_loudly(gui, addon, protocol):
    proc, h, _ = gui
    h(exec=f"""
errors = []
addon_utils.enable({addon!r}, default_set=True, handle_error=errors.append)
""")
    errors = h(eval="[f'{type(e).__name__}: {e}' for e in errors]")
    assert len(errors) == 1, errors
    msg = errors[0]
    assert msg.startswith("ClashError") and f"speaks registry protocol {protocol}," in msg, msg
    assert "with protocol 2;" in msg, msg
    assert addon in msg, msg                    # names the copy that clashed ...
    assert h(eval="__import__('bgloop').blender.info()['origin']") in msg, msg  # ... and the first
    assert h(eval="__import__('bgloop').blender.info()['driver_installed']")
    assert h(eval=f"{addon!r} not in {{s['owner'] for s in __import__('bgloop').status().values()}}")


def test_gui_quit_with_services_running(gui):
    """Last: quitting Blender with services up (and the executor thread the
    'via: thread' requests started) stops them and exits cleanly."""
    proc, h, _ = gui
    port = _enable(proc, h, "bgloop_demo", DEMO, seen=_listen_count(proc, DEMO))
    second = ECHO.format("bgloop_second")
    _enable(proc, h, "bgloop_second", second, seen=_listen_count(proc, second))
    assert bl.request(port, "GET", "/health")[0] == 200
    h(exec="bpy.ops.wm.quit_blender()")
    assert proc.wait(60) == 0, proc.tail()
    out = proc.output()
    assert "Task was destroyed but it is pending" not in out
    assert bl.port_is_free(port)

