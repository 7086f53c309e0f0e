"""``blender --background`` (and bpy from PyPI): keep_alive.py / bgloop.serve().

Each test starts its own headless Blender with the demo add-on (legacy form,
bgloop from its vendor/ folder) enabled and the services of
scripts/bg_services.py, then talks to it over HTTP and signals it.
"""

from __future__ import annotations

import signal
import sys
import time

import pytest

import blenderlib as bl

sys.path.insert(0, str(bl.REPO / "tests" / "examples"))
import hostile_http as hh  # noqa: E402  (shared with the plain-Python demo's test)

SCRIPTS = bl.HERE / "scripts"
STOP_TIMEOUT = 3.0              # what the services declare
EXIT_SLACK = 20.0               # generous: shared, noisy 2-core machines
HEADER_TIMEOUT = 1.0            # BGLOOP_DEMO_HEADER_TIMEOUT for the hostile clients


def _start(runner, tmp, art, *, crash=False, name="bg", **extra_env):
    """Demo add-on + bg_services.py + keep_alive.py; with ``crash`` only a
    service that fails for good.  bgloop comes from the add-on's vendor/
    folder in Blender, from the installed wheel (PYTHONPATH) for bpy."""
    addons = "" if crash else "bgloop_demo"
    env = bl.blender_env(tmp, pythonpath=[art["site"]] if runner != "blender" or crash else None,
                         BGLOOP_TEST_CRASH="1" if crash else "0", BGLOOP_TEST_ADDONS=addons,
                         **extra_env)
    scripts = [SCRIPTS / "bg_services.py", bl.KEEP_ALIVE]
    if runner == "blender":
        proc = bl.start_background(tmp, args=["--addons", addons] if addons else [],
                                   python=scripts, env=env, name=name)
    else:
        proc = bl.Proc([str(runner), str(SCRIPTS / "bpy_module_main.py"), *map(str, scripts)],
                       env, tmp / f"{name}.log")
    return proc


@pytest.fixture(params=["blender", "bpy-pypi"])
def runner(request):
    if request.param == "blender":
        return "blender"
    return request.getfixturevalue("bpy_python")


def _serve(proc):
    port = int(proc.wait_for(r"bgloop_demo: listening on http://127\.0\.0\.1:(\d+)",
                             timeout=60).group(1))
    proc.wait_for(r"READY api", timeout=30)
    return port


@pytest.fixture
def served(runner, blender_home, artifacts):
    proc = _start(runner, blender_home, artifacts)
    try:
        yield proc, _serve(proc)
    finally:
        proc.stop()


@pytest.fixture
def served_impatient(blender_home, artifacts):
    """In `blender -b`, with a short header timeout for the slow client."""
    proc = _start("blender", blender_home, artifacts, name="hostile",
                  BGLOOP_DEMO_HEADER_TIMEOUT=HEADER_TIMEOUT)
    try:
        yield proc, _serve(proc)
    finally:
        proc.stop()


def _assert_clean_stop(proc, rc):
    out = proc.output()
    assert rc == 0, f"exit code {rc}\n{proc.tail()}"
    assert "Task was destroyed but it is pending" not in out, proc.tail()
    assert "Traceback" not in out, proc.tail()
    # Reverse dependency order: api (depends on db) stops before db, and
    # each service's resources close after it stopped.
    order = [line for line in out.splitlines() if line.startswith(("STOP ", "CLOSE "))]
    assert order.index("STOP api") < order.index("STOP db"), order
    assert order.index("STOP api") < order.index("CLOSE api-resource"), order
    assert order.index("STOP db") < order.index("CLOSE db-resource"), order


def test_service_answers_and_changes_scene(served):
    proc, port = served
    status, scene = bl.request(port, "GET", "/scene")
    assert status == 200
    assert scene["background"] is True
    names_before = {o["name"] for o in scene["objects"]}

    status, made = bl.request(port, "POST", "/objects", token=bl.TOKEN,
                              body={"kind": "cube", "name": "FromHTTP", "location": [1, 2, 3]})
    assert status == 201, made
    assert made["thread"] == "MainThread"
    status, made2 = bl.request(port, "POST", "/objects", token=bl.TOKEN,
                               body={"kind": "ico", "name": "FromWorker", "via": "thread"})
    assert status == 201, made2
    assert made2["thread"] == "MainThread"      # run_on_main brought it back

    status, scene = bl.request(port, "GET", "/scene")
    objects = {o["name"]: o for o in scene["objects"]}
    assert scene["object_count"] == len(names_before) + 2
    assert set(objects) - names_before == {"FromHTTP", "FromWorker"}
    assert objects["FromHTTP"]["type"] == "MESH"
    assert objects["FromHTTP"]["location"] == [1.0, 2.0, 3.0]

    status, st = bl.request(port, "GET", "/status")
    assert status == 200
    services = st["services"]
    assert services["bgloop_demo.http"]["state"] == "running"
    assert services["bgloop_demo.http"]["owner"] == "bgloop_demo"
    assert services["test.api"]["state"] == "running"


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_gracefully(served, signo):
    proc, port = served
    assert bl.request(port, "GET", "/health")[0] == 200
    # An idle keep-alive client must not hold the stop up.
    idle = bl.socket.create_connection(("127.0.0.1", port))
    try:
        t0 = time.monotonic()
        proc.signal(signo)
        rc = proc.wait(STOP_TIMEOUT + EXIT_SLACK)
        elapsed = time.monotonic() - t0
    finally:
        idle.close()
    _assert_clean_stop(proc, rc)
    assert bl.port_is_free(port)
    print(f"{signo.name}: exit 0 after {elapsed:.2f}s")


def test_crashing_service_exits_nonzero(runner, blender_home, artifacts):
    proc = _start(runner, blender_home, artifacts, crash=True, name="crash")
    try:
        rc = proc.wait(60)
        out = proc.output()
        assert rc != 0, f"a failed service must give a non-zero exit\n{proc.tail()}"
        assert "deliberate crash of test.crash" in out
        assert "Task was destroyed but it is pending" not in out
    finally:
        proc.stop()


def test_idle_cpu_near_zero(served):
    proc, port = served
    assert bl.request(port, "GET", "/health")[0] == 200
    time.sleep(0.5)                     # let start-up work settle
    before = bl.cpu_seconds(proc.pid)
    time.sleep(3.0)
    used = bl.cpu_seconds(proc.pid) - before
    print(f"idle CPU over 3 s: {used * 1000:.0f} ms")
    # A polling loop (even 100 Hz) burns far more; zero wakeups -> ~0 ms.
    assert used < 0.15, f"{used:.3f}s CPU while idle for 3s"


AUTH = b"Authorization: Bearer " + bl.TOKEN.encode() + b"\r\n"
# The demo's own answers; hostile_http covers what the HTTP layer refuses.
BAD_REQUESTS = [
    (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"DELETE /scene HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"POST /objects HTTP/1.1\r\nHost: x\r\n\r\n", 411),
    (b"POST /objects HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 401),
    (b"POST /objects HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 401),
    (b"POST /objects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-xx\r\n"
     b"Content-Length: 2\r\n\r\n{}", 401),
    (b"POST /objects HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: 5\r\n\r\n{nope", 400),
    (b"POST /objects HTTP/1.1\r\nHost: x\r\n" + AUTH +
     b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", 415),
    (b"POST /objects HTTP/1.1\r\nHost: x\r\n" + AUTH +
     b"Content-Length: 26\r\n\r\n{\"kind\": \"teapot-of-doom\"}", 422),
    (b"POST /objects HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Transfer-Encoding: chunked\r\n\r\n"
     b"1a\r\n{\"kind\": \"teapot-of-doom\"}\r\n0\r\n\r\n", 422),
]


def test_hostile_http_gets_4xx_and_service_survives(served_impatient):
    """The same hostile clients as the plain-Python demo's test, in
    `blender -b`: every one gets its status, others are still served, and
    Blender's output has no traceback."""
    proc, port = served_impatient
    for payload, expected in BAD_REQUESTS:
        answer = hh.exchange(port, payload)
        assert hh.status_of(answer) == expected, (payload[:60], answer[:200])
    hh.check_malformed(port, "/scene")
    hh.check_early_close(port, "/scene")
    hh.check_pipelined(port, "/scene")
    hh.check_slow_headers(port, HEADER_TIMEOUT, "/scene")
    status, scene = bl.request(port, "GET", "/scene", timeout=5)
    assert status == 200 and scene["scene"]
    proc.signal(signal.SIGTERM)
    rc = proc.wait(STOP_TIMEOUT + EXIT_SLACK)
    hh.check_log_clean(proc.output())
    _assert_clean_stop(proc, rc)


@pytest.mark.parametrize("runner", ["blender"], indirect=True)
def test_addon_enabled_in_user_preferences_is_served(runner, blender_home, artifacts):
    """Add-ons from the saved preferences and script services are served alike."""
    env = bl.blender_env(blender_home)
    bl.enable_in_saved_preferences(blender_home, env, "bgloop_demo")
    assert (blender_home / "config" / "userpref.blend").exists()
    # No --factory-startup and no --addons: the preferences enable it.
    argv = [bl.BLENDER, "--background", "--python", str(SCRIPTS / "bg_services.py"),
            "--python", str(bl.KEEP_ALIVE)]
    proc = bl.Proc(argv, env, blender_home / "prefs.log")
    try:
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)", 60).group(1))
        proc.wait_for(r"READY api", 30)
        assert bl.request(port, "GET", "/scene")[0] == 200
        proc.signal(signal.SIGTERM)
        _assert_clean_stop(proc, proc.wait(STOP_TIMEOUT + EXIT_SLACK))
    finally:
        proc.stop()


def test_demo_script_serves_until_sigterm(tmp_path, artifacts):
    """examples/blender/demo.sh: the README's headless-Blender demo command."""
    env = bl.blender_env(tmp_path, BGLOOP_BLENDER_WHEEL=artifacts["wheel"], TMPDIR=tmp_path)
    proc = bl.Proc([str(bl.REPO / "examples" / "blender" / "demo.sh")], env,
                   tmp_path / "demo.log")
    try:
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)", 120).group(1))
        assert bl.request(port, "GET", "/scene")[0] == 200
        status, made = bl.request(port, "POST", "/objects", token=bl.TOKEN,
                                  body={"kind": "plane", "name": "DemoPlane"})
        assert status == 201, made
        proc.signal(signal.SIGTERM)
        assert proc.wait(STOP_TIMEOUT + EXIT_SLACK) == 0, proc.tail()
        assert bl.port_is_free(port)
        assert not list(tmp_path.glob("bgloop-blender-demo.*")), "temp user dir left behind"
    finally:
        proc.stop()


def test_shared_and_vendored_addons_all_served(blender_home, artifacts):
    """-b with three add-ons: the demo, one importing the shared bgloop and
    one with its own vendored copy.  serve() (from keep_alive.py) serves
    them all - the vendored copy handed over to the first bgloop."""
    scripts = blender_home / "scripts"
    bl.make_echo_addon("bgloop_second", scripts)
    bl.make_echo_addon("vend_a", scripts, vendor_from=artifacts["site"])
    env = bl.blender_env(blender_home)
    proc = bl.start_background(blender_home, args=["--addons", "bgloop_demo,bgloop_second,vend_a"],
                               python=[bl.KEEP_ALIVE], env=env, name="shared")
    try:
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)", 60).group(1))
        echo_ports = [int(proc.wait_for(rf"{name}: echo on (\d+)", 60).group(1))
                      for name in ("bgloop_second", "vend_a")]
        for echo_port in echo_ports:
            with bl.socket.create_connection(("127.0.0.1", echo_port), timeout=10) as s:
                s.sendall(b"hello\n")
                assert s.recv(100) == b"hello\n"
        owners = {s["owner"] for s in bl.request(port, "GET", "/status")[1]["services"].values()}
        assert owners == {"bgloop_demo", "bgloop_second", "vend_a"}
        proc.signal(signal.SIGTERM)
        assert proc.wait(STOP_TIMEOUT + EXIT_SLACK) == 0, proc.tail()
        out = proc.output()
        assert "Traceback" not in out and "Task was destroyed" not in out, proc.tail()
        assert all(bl.port_is_free(p) for p in [port, *echo_ports])
    finally:
        proc.stop()


def test_systemd_unit_command_line(tmp_path, artifacts):
    """Run examples/blender/bgloop-blender.service's ExecStart + Environment
    as systemd would (with /srv/blender moved to a temp dir); `systemctl stop`
    sends SIGTERM, so that must exit 0."""
    unit = (bl.REPO / "examples" / "blender" / "bgloop-blender.service").read_text()
    unit = unit.replace("\\\n", " ").replace("/srv/blender", str(tmp_path / "srv"))
    lines = [line.strip() for line in unit.splitlines()]
    env = bl.blender_env(tmp_path)
    for line in lines:
        if line.startswith("Environment="):
            key, _, value = line[len("Environment="):].partition("=")
            env[key] = value
    env["BGLOOP_DEMO_PORT"] = "0"                   # not 8765: tests run in parallel
    argv = next(line for line in lines if line.startswith("ExecStart=")).split("=", 1)[1].split()
    srv = tmp_path / "srv"
    bl.install_addon(artifacts["legacy"], srv / "scripts")
    bl.shutil.copytree(artifacts["site"], srv / "site")
    bl.shutil.copy(bl.KEEP_ALIVE, srv / "keep_alive.py")
    make_scene = bl.start_background(tmp_path, name="scene", env=env, args=[
        "--python-expr", f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(srv / 'scene.blend')!r})"])
    try:
        assert make_scene.wait(60) == 0, make_scene.tail()
    finally:
        make_scene.stop()
    assert argv[0] == "/usr/bin/blender"
    proc = bl.Proc([bl.BLENDER, *argv[1:]], env, tmp_path / "unit.log", cwd=srv)
    try:
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)", 60).group(1))
        status, scene = bl.request(port, "GET", "/scene")
        assert status == 200 and scene["file"] == str(srv / "scene.blend")
        proc.signal(signal.SIGTERM)
        assert proc.wait(STOP_TIMEOUT + EXIT_SLACK) == 0, proc.tail()
    finally:
        proc.stop()


def test_inline_python_expr_keep_alive(blender_home):
    """The one-liner from the docs: --python-expr "import bgloop, sys; sys.exit(bgloop.serve())"."""
    proc = bl.start_background(
        blender_home, env=bl.blender_env(blender_home), name="inline",
        args=["--addons", "bgloop_demo",
              "--python-expr", "import bgloop, sys; sys.exit(bgloop.serve())"])
    try:
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)", 60).group(1))
        assert bl.request(port, "GET", "/health") == (200, {"ok": True})
        proc.signal(signal.SIGINT)
        assert proc.wait(STOP_TIMEOUT + EXIT_SLACK) == 0, proc.tail()
    finally:
        proc.stop()


# ---- bounded stops: Blender quitting, an add-on disabled ----------------------

STUBBORN_ADDON = '''
bl_info = {"name": "bgloop stubborn test add-on", "blender": (3, 4, 0), "category": "System"}

import asyncio, os
import bgloop


async def svc(ctx):
    r, w = os.pipe()
    os.write(w, b"x")                   # stays readable
    asyncio.get_running_loop().add_reader(r, lambda: None)
    ctx.ready()
    while True:
        try:
            await asyncio.sleep(3600)   # ignores ctx.stopping
        except asyncio.CancelledError:
            pass                        # and its cancellation


def register():
    bgloop.ensure_loop()
    bgloop.service(__package__ + ".svc", owner=__package__, stop_timeout=0.5)(svc)
    bgloop.start_services(owner=__package__)


def unregister():
    bgloop.stop_services(owner=__package__)
'''


def _stubborn(blender_home, artifacts, mode):
    env = bl.blender_env(blender_home, pythonpath=[artifacts["site"]], BGLOOP_TEST_STOP=mode)
    if mode == "disable":
        addon = blender_home / "scripts" / "addons" / "stubborn_addon"
        addon.mkdir(parents=True)
        (addon / "__init__.py").write_text(STUBBORN_ADDON)
    return bl.start_background(blender_home, python=[SCRIPTS / "bg_stubborn.py"], env=env,
                               name=f"stubborn-{mode}")


def test_quit_stops_services_within_their_bound(blender_home, artifacts):
    proc = _stubborn(blender_home, artifacts, "quit")
    try:
        allowed = float(proc.wait_for(r"BOUND ([0-9.]+)", 60).group(1))
        proc.wait_for("SCRIPT END", 30)
        t0 = time.monotonic()
        rc = proc.wait(allowed + EXIT_SLACK)
        took = time.monotonic() - t0
        out = proc.output()
        assert rc == 0, proc.tail()
        # The exit handler stopped it, gave up on it and said so.
        assert "abandoned service 'stubborn'" in out, proc.tail()
        assert "Traceback" not in out, proc.tail()
        print(f"quit: exit after {took:.2f}s (bound {allowed:.2f}s)")
    finally:
        proc.stop()


def test_addon_disable_stops_within_the_bound(blender_home, artifacts):
    proc = _stubborn(blender_home, artifacts, "disable")
    try:
        allowed = float(proc.wait_for(r"BOUND ([0-9.]+)", 60).group(1))
        took = float(proc.wait_for(r"DISABLED ([0-9.]+)", allowed + EXIT_SLACK).group(1))
        assert took <= allowed, (took, allowed)
        assert proc.wait_for(r"STATE (\w+)", 10).group(1) == "failed"
        assert proc.wait(EXIT_SLACK) == 0, proc.tail()
        assert "abandoned service 'stubborn_addon.svc'" in proc.output(), proc.tail()
    finally:
        proc.stop()
