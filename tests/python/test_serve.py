"""bgloop.serve() and ``python -m bgloop serve``, each in a subprocess.

The child prints a line when it is ready; the test then signals it or talks
to it and checks the exit status and that stderr has no asyncio complaint
("Task was destroyed but it is pending", "Exception in callback", ...).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUARD = 30.0  # against hangs only; the children answer in milliseconds

BAD_STDERR = ("Task was destroyed but it is pending", "Exception in callback",
              "Traceback", "was never awaited", "Unhandled exception")


def spawn(args, *, cwd=None, env=None):
    full_env = dict(os.environ)
    full_env.pop("BGLOOP_LOG_LEVEL", None)
    full_env.update(env or {})
    return subprocess.Popen(args, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def spawn_script(tmp_path, body, **kw):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body))
    return spawn([sys.executable, str(script)], **kw)


def read_line(proc, contains: str) -> str:
    """The first stdout line containing `contains` (fails on EOF/hang)."""
    end = time.monotonic() + GUARD
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            if contains in line:
                return line
    proc.kill()
    out, err = proc.communicate()
    raise AssertionError(f"child never printed {contains!r}; stdout={out!r} stderr={err!r}")


def finish(proc, *, expect_traceback=False) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"child did not exit; stderr={err!r}")
    for bad in BAD_STDERR:
        if bad == "Traceback" and expect_traceback:
            continue
        assert bad not in err, err
    return proc.returncode, out, err


KEEPALIVE = """
    import asyncio, signal, sys
    import bgloop

    @bgloop.service("db", owner="child")
    async def db(ctx):
        ctx.ready()
        await ctx.stopping.wait()
        print("db stopped", flush=True)

    @bgloop.service("worker", owner="child", depends_on=("db",))
    async def worker(ctx):
        # A child task, left running: serve() must cancel it cleanly.
        asyncio.ensure_future(asyncio.sleep(3600))
        ctx.ready()
        print("ready", flush=True)
        await ctx.stopping.wait()
        print("worker stopped", flush=True)

    def custom(signo, frame):
        pass
    signal.signal(signal.SIGTERM, custom)
    code = bgloop.serve()
    # Handlers are back as they were.
    assert signal.getsignal(signal.SIGTERM) is custom, signal.getsignal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print("states", sorted(s["state"] for s in bgloop.status().values()), flush=True)
    sys.exit(code)
"""


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_gracefully_on_signal_and_returns_0(tmp_path, signo):
    proc = spawn_script(tmp_path, KEEPALIVE)
    read_line(proc, "ready")
    proc.send_signal(signo)
    code, out, err = finish(proc)
    assert code == 0, err
    # Dependents stop first.
    assert out.index("worker stopped") < out.index("db stopped")
    assert "states ['stopped', 'stopped']" in out


def test_serve_returns_nonzero_when_a_service_fails_for_good(tmp_path):
    proc = spawn_script(tmp_path, """
        import sys
        import bgloop

        @bgloop.service("bad", restart="on-failure", restart_delay=0.001,
                        restart_max_delay=0.001, start_limit_burst=2)
        async def bad(ctx):
            raise RuntimeError("no database")

        @bgloop.service("fine")
        async def fine(ctx):
            ctx.ready()

        code = bgloop.serve()
        st = bgloop.status()
        print(st["bad"]["state"], st["bad"]["error"], st["fine"]["state"], flush=True)
        sys.exit(code)
    """)
    # The failing service's traceback is logged, as it should be.
    code, out, err = finish(proc, expect_traceback=True)
    assert code == 1
    assert "RuntimeError: no database" in err
    assert out.startswith("failed") and "start limit" in out and out.strip().endswith("exited")


def test_serve_returns_0_when_every_service_ends_on_its_own(tmp_path):
    proc = spawn_script(tmp_path, """
        import asyncio, sys
        import bgloop

        @bgloop.service("job")
        async def job(ctx):
            await asyncio.sleep(0.01)
            ctx.ready()

        @bgloop.service("after", depends_on=("job",))
        async def after(ctx):
            ctx.ready()

        sys.exit(bgloop.serve(signals=False))
    """)
    code, out, err = finish(proc)
    assert code == 0, err


def test_serve_refuses_to_run_inside_the_loop(tmp_path):
    proc = spawn_script(tmp_path, """
        import bgloop

        async def main():
            try:
                bgloop.serve()
            except RuntimeError as exc:
                print("refused:", exc, flush=True)

        bgloop.ensure_loop().run_until_complete(main())
    """)
    code, out, err = finish(proc)
    assert code == 0 and "refused:" in out and "inside the running loop" in out


def test_python_m_bgloop_serve_module_attr(tmp_path):
    (tmp_path / "mysvc.py").write_text(textwrap.dedent("""
        import bgloop

        def setup():
            @bgloop.service("echo", owner="mysvc")
            async def echo(ctx):
                ctx.ready()
                print("echo up", flush=True)
                await ctx.stopping.wait()
    """))
    proc = spawn([sys.executable, "-m", "bgloop", "serve", "mysvc:setup"], cwd=tmp_path)
    read_line(proc, "echo up")
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 0, err


def test_python_m_bgloop_serve_bad_targets(tmp_path):
    (tmp_path / "empty_mod.py").write_text("x = 1\n")
    (tmp_path / "broken_import.py").write_text("import no_such_dependency_xyz\n")
    proc = spawn([sys.executable, "-m", "bgloop", "serve", "broken_import"], cwd=tmp_path)
    code, out, err = finish(proc, expect_traceback=True)
    # A missing dependency of the module is the module's bug: shown in full.
    assert code == 1 and "No module named 'no_such_dependency_xyz'" in err, err
    for target, message in (("no_such_module_xyz", "no module named 'no_such_module_xyz'"),
                            ("missing/file.py", "no such file 'missing/file.py'"),
                            ("empty_mod:nothing", "has no attribute 'nothing'"),
                            ("empty_mod:x", "not callable"),
                            ("empty_mod", "registered no service")):
        proc = spawn([sys.executable, "-m", "bgloop", "serve", target], cwd=tmp_path)
        code, out, err = finish(proc)
        assert code == 2 and message in err, (target, err)


def test_bad_environment_value_is_a_clear_error(tmp_path):
    (tmp_path / "one.py").write_text(textwrap.dedent("""
        import bgloop

        @bgloop.service("one")
        async def one(ctx):
            pass
    """))
    proc = spawn([sys.executable, "-m", "bgloop", "serve", "one"], cwd=tmp_path,
                 env={"BGLOOP_STOP_TIMEOUT": "soon"})
    code, out, err = finish(proc)
    assert code == 2 and "BGLOOP_STOP_TIMEOUT='soon'" in err, err

    proc = spawn([sys.executable, "-m", "bgloop", "env"], env={"BGLOOP_LOG_LEVEL": "loud"})
    code, out, err = finish(proc)
    assert code == 2 and "BGLOOP_LOG_LEVEL='loud'" in out


def _demo_address(proc) -> str:
    line = read_line(proc, "serving on")
    return line.split("serving on ")[1].split()[0]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=GUARD) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("how", ["script", "module", "file"])
def test_demo_service_answers_on_loopback_and_stops_on_sigterm(how):
    if how == "script":
        args = [sys.executable, str(REPO / "examples" / "python" / "demo_service.py")]
    elif how == "module":
        args = [sys.executable, "-m", "bgloop", "serve", "examples.python.demo_service"]
    else:
        args = [sys.executable, "-m", "bgloop", "serve", "examples/python/demo_service.py"]
    proc = spawn(args, cwd=REPO, env={"BGLOOP_DEMO_PORT": "0"})
    try:
        base = _demo_address(proc)
        assert base.startswith("http://127.0.0.1:")
        root = _get_json(base)
        assert root["service"] == "bgloop demo" and root["requests"] >= 1
        status = _get_json(base + "status")
        assert {n: s["state"] for n, s in status.items()} == \
            {"store": "running", "ticker": "running", "http": "running"}
        assert _get_json(base + "hello?name=blender") == {"hello": "blender"}
    finally:
        proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 0, err


def test_serve_restores_a_handler_python_never_knew(tmp_path):
    # Like Blender's SIGINT handler: set in C, invisible to signal.getsignal().
    proc = spawn_script(tmp_path, """
        import ctypes, os, signal, sys
        import bgloop

        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
        libc.signal(signal.SIGTERM, 1)   # SIG_IGN, behind Python's back

        @bgloop.service("quick")
        async def quick(ctx):
            ctx.ready()
            await ctx.stopping.wait()

        bgloop.ensure_loop().call_later(0.01, os.kill, os.getpid(), signal.SIGTERM)
        code = bgloop.serve()          # the SIGTERM above stops it: code 0
        os.kill(os.getpid(), signal.SIGTERM)   # ignored again, as before serve()
        print("survived", code, flush=True)
    """)
    code, out, err = finish(proc)
    assert code == 0 and "survived 0" in out, (code, out, err)


def test_serve_sleeps_in_the_kernel_while_idle(tmp_path):
    # While nothing happens, serve() must not wake up at all: between the
    # service going idle and a thread-safe call 0.3 s later, the loop may
    # wait exactly once (woken by that call), whatever the machine's load.
    proc = spawn_script(tmp_path, """
        import asyncio, sys, threading, time
        import bgloop

        seen = {}

        @bgloop.service("idle")
        async def idle(ctx):
            ctx.ready()
            loop = asyncio.get_running_loop()

            def probe():
                seen["after"] = bgloop.stats()
                bgloop.stop_services()

            def later():
                time.sleep(0.3)
                loop.call_soon_threadsafe(probe)

            # Let the start-up settle, then measure from the last busy moment.
            await asyncio.sleep(0)
            loop.call_soon(lambda: seen.setdefault("before", bgloop.stats()))
            threading.Thread(target=later).start()
            await ctx.stopping.wait()

        code = bgloop.serve(signals=False)
        b, a = seen["before"], seen["after"]
        print("waits", a["waits"] - b["waits"], "kicks", a["kicks"] - b["kicks"], flush=True)
        sys.exit(code)
    """)
    code, out, err = finish(proc)
    assert code == 0, err
    waits = int(out.split()[1])
    kicks = int(out.split()[3])
    assert waits <= 1 and kicks <= 2, out


def test_serve_without_signal_handlers_stops_services_on_keyboardinterrupt(tmp_path):
    proc = spawn_script(tmp_path, """
        import asyncio, sys
        import bgloop

        @bgloop.service("svc")
        async def svc(ctx):
            ctx.ready()
            print("ready", flush=True)
            await ctx.stopping.wait()
            print("svc stopped", flush=True)

        try:
            bgloop.serve(signals=False)
        except KeyboardInterrupt:
            print("interrupted", bgloop.status()["svc"]["state"], flush=True)
    """)
    read_line(proc, "ready")
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 0, err
    # KeyboardInterrupt lands wherever Python code runs: usually in the
    # loop's wait (the service is then stopped gracefully), sometimes in the
    # service itself (it then ends as failed).  Either way nothing is left
    # running when serve() lets the exception out.
    assert "interrupted stopped" in out and "svc stopped" in out \
        or "interrupted failed" in out and "KeyboardInterrupt" in err, (out, err)


def test_serve_puts_back_a_wakeup_fd_the_host_had(tmp_path):
    proc = spawn_script(tmp_path, """
        import os, signal, socket, sys
        import bgloop

        a, b = socket.socketpair()
        a.setblocking(False)
        signal.set_wakeup_fd(a.fileno())

        @bgloop.service("brief")
        async def brief(ctx):
            ctx.ready()

        code = bgloop.serve()
        print("wakeup", signal.set_wakeup_fd(-1) == a.fileno(), code, flush=True)
    """)
    code, out, err = finish(proc)
    assert code == 0 and "wakeup True 0" in out, (out, err)


def test_stop_services_from_another_thread_while_serving(tmp_path):
    proc = spawn_script(tmp_path, """
        import sys, threading
        import bgloop

        @bgloop.service("svc")
        async def svc(ctx):
            ctx.ready()
            threading.Thread(target=stopper).start()
            await ctx.stopping.wait()
            print("svc stopped", flush=True)

        def stopper():
            bgloop.stop_services()     # blocks until the serving thread stopped it
            print("stopper done", bgloop.status()["svc"]["state"], flush=True)

        sys.exit(bgloop.serve())
    """)
    code, out, err = finish(proc)
    assert code == 0, err
    assert "svc stopped" in out and "stopper done stopped" in out, out


def _blocked_in_the_kernel(pid: int) -> bool:
    """Is the process's main thread asleep in a system call (its loop's
    epoll/poll wait)?"""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/task/{pid}/wchan") as f:
            wchan = f.read().strip()
    except OSError:
        return False
    # wchan may be hidden ("0") without privileges: the state then decides.
    return fields[0] == "S" and (wchan in ("", "0") or "poll" in wchan)


def test_serve_blocked_in_the_kernel_stops_services_on_keyboardinterrupt(tmp_path):
    # signals=False: Python's own SIGINT handler raises KeyboardInterrupt in
    # the kick that waits in the kernel.  serve() must stop the services -
    # their stop code runs - and let the exception out, on either backend.
    proc = spawn_script(tmp_path, """
        import sys
        import bgloop

        @bgloop.service("svc")
        async def svc(ctx):
            ctx.ready()
            print("ready", bgloop._bgloop.backend(), flush=True)
            await ctx.stopping.wait()
            print("svc stopped", flush=True)

        try:
            bgloop.serve(signals=False)
        except KeyboardInterrupt:
            print("interrupted", bgloop.status()["svc"]["state"], flush=True)
            sys.exit(0)
        sys.exit(3)
    """)
    line = read_line(proc, "ready")
    expected = os.environ.get("BGLOOP_EXPECT_BACKEND")
    if expected:
        assert line.split()[1] == expected, line
    end = time.monotonic() + GUARD
    while not _blocked_in_the_kernel(proc.pid):
        assert time.monotonic() < end, "the child never blocked in the kernel"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 0, (out, err)
    assert "svc stopped" in out and "interrupted stopped" in out, (out, err)
    assert "KeyboardInterrupt" not in err, err


STUBBORN = """
    import asyncio, os, sys, time
    import bgloop

    r, w = os.pipe()
    os.write(w, b"x")             # stays readable: every kick finds it ready

    @bgloop.service("stubborn", owner="child", stop_timeout=STOP_TIMEOUT)
    async def stubborn(ctx):
        asyncio.get_running_loop().add_reader(r, lambda: None)
        ctx.ready()
        print("ready", flush=True)
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass               # refuses to die

    t0 = time.monotonic()
    code = bgloop.serve()
    print("serve returned", code, flush=True)
    sys.exit(code)
"""


def test_serve_exits_1_after_abandoning_a_task_that_refuses_to_die(tmp_path):
    proc = spawn_script(tmp_path, STUBBORN.replace("STOP_TIMEOUT", "0.3"))
    read_line(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 1, (out, err)
    assert "serve returned 1" in out
    assert "abandoned service 'stubborn'" in err, err


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_cuts_the_stop_short(tmp_path, signo):
    # A stop timeout far beyond the test's guard: only the second signal can
    # end this stop in time.
    proc = spawn_script(tmp_path, STUBBORN.replace("STOP_TIMEOUT", "600"))
    read_line(proc, "ready")
    proc.send_signal(signo)
    time.sleep(0.3)
    assert proc.poll() is None       # still stopping, as it should
    proc.send_signal(signo)
    code, out, err = finish(proc)
    assert code == 128 + signo, (out, err)
    assert "cut short" in err and "stubborn" in err, err
