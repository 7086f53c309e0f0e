"""Hostile behaviour at run time: hooks and callbacks that raise what they
should not, error texts C cannot take as they are, stops from other threads.
Every run must still end, report its end and leave the loop clean."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import bgloop
import pytest
from bgloop import services as _services

from _services_util import HANG_GUARD, clean, drive, state  # noqa: F401


# ---- error texts ---------------------------------------------------------------

@pytest.mark.usefixtures("clean")
def test_a_failure_text_with_a_lone_surrogate_still_ends_the_run():
    # E.g. a message quoting a file name decoded with surrogateescape.  The
    # report used to raise UnicodeEncodeError and the run stayed "running".
    @bgloop.service("bad-text", owner="t")
    async def bad_text(ctx):
        ctx.ready()
        raise RuntimeError("cannot open caf\udce9.txt\0")

    bgloop.start_services()
    drive(lambda: state("bad-text") == "failed")
    assert "caf\\udce9.txt" in bgloop.status()["bad-text"]["error"]


class _Unprintable(Exception):
    def __str__(self):
        raise ValueError("no text for you")


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize("text", ["caf\udce9", "a\0b", None])
def test_a_failing_run_ends_and_restarts_whatever_its_exception_text(text):
    # None: an exception whose str() raises.  The run used to stay "running"
    # for good (its end never reached the manager) and never restarted.
    runs = []

    @bgloop.service("odd", owner="t", restart="on-failure", restart_delay=0.01,
                    start_limit_burst=0)
    async def odd(ctx):
        runs.append(ctx)
        ctx.ready()
        if len(runs) < 3:
            raise _Unprintable() if text is None else RuntimeError(text)
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: len(runs) == 3 and state("odd") == "running")
    info = bgloop.status()["odd"]
    assert info["restarts"] == 2
    bgloop.stop_services()
    assert state("odd") == "stopped"


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize("label", ["caf\udce9", "a\0b"])
def test_a_resource_with_an_odd_name_is_pushed_and_closed(label):
    closed = []

    def resource():
        closed.append(True)

    resource.__qualname__ = label

    @bgloop.service("odd-label", owner="t")
    async def odd_label(ctx):
        ctx.resources.push(resource)
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("odd-label") == "running")
    bgloop.stop_services()
    assert state("odd-label") == "stopped"
    assert closed == [True]


@pytest.mark.usefixtures("clean")
def test_a_resource_whose_name_cannot_be_read_is_still_closed():
    class Hostile:
        closed = False

        def __getattr__(self, attr):
            if attr == "__qualname__":
                raise RuntimeError("no name")
            raise AttributeError(attr)

        def close(self):
            Hostile.closed = True

    @bgloop.service("no-name", owner="t")
    async def no_name(ctx):
        ctx.resources.push(Hostile())
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("no-name") == "running")
    bgloop.stop_services()
    assert state("no-name") == "stopped"
    assert Hostile.closed


@pytest.mark.usefixtures("clean")
def test_a_close_reporting_odd_errors_still_ends_every_close():
    mgr = _services.manager()
    answers = []

    class Unprintable:
        def __str__(self):
            raise LookupError("no text")

    class Odd:
        def __init__(self, error):
            self.error = error

        def close(self):
            pass

    def closer(obj, done):
        if not isinstance(obj, Odd):
            return mgr._close(obj, done)
        try:
            answers.append(done(obj.error))
        except LookupError:
            answers.append("raised")
        answers.append(done())  # a second report is refused, not counted

    mgr.c.set_hooks(start=_services._Host.start, stop=_services._Host.stop,
                    cancel=_services._Host.cancel, close=closer, on_state=mgr._on_state)
    try:
        @bgloop.service("odd", owner="t")
        async def odd(ctx):
            ctx.resources.push(Odd(Unprintable()))
            ctx.resources.push(Odd("caf\udce9"))
            ctx.ready()
            await ctx.stopping.wait()

        bgloop.start_services()
        drive(lambda: state("odd") == "running")
        bgloop.stop_services()
    finally:
        mgr.c.set_hooks(start=_services._Host.start, stop=_services._Host.stop,
                        cancel=_services._Host.cancel, close=mgr._close,
                        on_state=mgr._on_state)
    assert answers == [True, False, "raised", False]
    report = mgr.report("odd")
    assert (report["failed"], report["timed_out"]) == (2, 0), report
    assert "caf\\udce9" in report["errors"]


# ---- KeyboardInterrupt from a hook or a done callback -------------------------

async def _idle(ctx):
    ctx.ready()
    await ctx.stopping.wait()


@pytest.fixture
def private():
    """A Manager on its own loop, stopped and closed afterwards."""
    loop = bgloop.Loop()
    mgr = _services.Manager(loop)
    yield mgr
    mgr.set_keepalive(False)
    mgr.stop(timeout=0)
    mgr.forget()
    loop.close()


def _kick_until(mgr, cond):
    for _ in range(int(HANG_GUARD / 0.01)):
        if cond():
            return
        mgr.loop.kick(0.01)
    raise AssertionError(mgr.status())


@pytest.mark.parametrize("where", ["on_state", "start", "stop_done"])
def test_keyboard_interrupt_in_a_hook_reaches_the_kick(private, where):
    # It was reported as "unraisable" and swallowed: Ctrl-C did nothing.
    mgr = private
    h = _services._Host

    def on_state(name, old, new):
        if where == "on_state" and new == "running":
            raise KeyboardInterrupt("from on_state")

    def start(host):
        if where == "start":
            raise KeyboardInterrupt("from start")
        h.start(host)

    mgr.c.set_hooks(start=start, stop=h.stop, cancel=h.cancel, close=mgr._close,
                    on_state=on_state)
    mgr.register("k", _idle, owner="o")
    mgr.start()
    with pytest.raises(KeyboardInterrupt, match="from"):
        if where == "stop_done":
            _kick_until(mgr, lambda: mgr.c.info("k")["state"] == "running")
            mgr.request_stop(done=lambda: (_ for _ in ()).throw(KeyboardInterrupt("from done")))
        _kick_until(mgr, lambda: False)
    # The manager goes on: the service still ends cleanly.
    mgr.c.set_hooks(start=h.start, stop=h.stop, cancel=h.cancel, close=mgr._close)
    mgr.stop()
    assert mgr.c.info("k")["state"] in ("stopped", "failed")
    assert mgr.c.nothing_left()


def test_keyboard_interrupt_in_a_hook_outside_a_kick_waits_for_the_next_one():
    from bgloop import _bgloop

    loop = bgloop.Loop()
    svcs = _bgloop.Services(loop._core)
    armed = []

    def on_state(name, old, new):
        if armed:
            armed.clear()
            raise KeyboardInterrupt("outside a kick")

    nop = lambda *args: None  # noqa: E731
    svcs.set_hooks(start=nop, stop=nop, cancel=nop, close=nop, on_state=on_state)
    try:
        svcs.add("a", "o", None)
        svcs.start(None)
        loop.kick(0)
        svcs.ready("a")
        armed.append(True)
        svcs.exited("a", False, None)  # plain code: the state hook runs here
        # Not mistaken for a stop of the manager's keep-alive...
        assert loop._core.take_stop() is None
        # ...and not lost either.
        with pytest.raises(KeyboardInterrupt, match="outside a kick"):
            for _ in range(10):
                loop.kick(0)
        svcs.remove_owner(None)
    finally:
        del svcs
        gc.collect()
        loop.close()


def test_keyboard_interrupt_in_a_close_reaches_the_kick(private):
    mgr = private
    closed = []

    class Interrupting:
        def close(self):
            raise KeyboardInterrupt("from close")

    async def svc(ctx):
        ctx.resources.push(lambda: closed.append("first pushed"))
        ctx.resources.push(Interrupting())
        ctx.ready()
        await ctx.stopping.wait()

    mgr.register("c", svc, owner="o")
    mgr.start()
    _kick_until(mgr, lambda: mgr.c.info("c")["state"] == "running")
    mgr.request_stop()
    with pytest.raises(KeyboardInterrupt, match="from close"):
        _kick_until(mgr, lambda: False)
    mgr.stop()  # the other resources still close
    assert closed == ["first pushed"]
    report = mgr.report("c")
    assert (report["closed"], report["failed"]) == (1, 1), report
    assert "KeyboardInterrupt" in report["errors"]


# ---- stop_services() from another thread -----------------------------------------

def _stop_in_thread(mgr):
    result = {}

    def worker():
        try:
            result["value"] = mgr.stop()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            result["error"] = exc

    t = threading.Thread(target=worker)
    t.start()
    return t, result


def test_stop_from_a_thread_between_two_kicks_of_the_driver(private):
    # serve() marks its thread as the driver; between two of its kicks the
    # loop is neither running nor busy.  The worker used to stop and kick it
    # itself, colliding with the driver's next kick ("already running").
    mgr = private
    seen = []

    async def svc(ctx):
        ctx.ready()
        await ctx.stopping.wait()
        seen.append(threading.get_ident())

    mgr.register("w", svc, owner="o")
    mgr.start()
    _kick_until(mgr, lambda: mgr.c.info("w")["state"] == "running")
    mgr.driver = threading.get_ident()
    try:
        t, result = _stop_in_thread(mgr)
        # Only this thread kicks: the stop must be handed over to it.
        _kick_until(mgr, lambda: not t.is_alive())
    finally:
        mgr.driver = None
    t.join(HANG_GUARD)
    assert result == {"value": None}
    assert seen == [threading.get_ident()]
    assert mgr.c.info("w")["state"] == "stopped"


def test_stop_handed_over_waits_for_the_thread_the_loop_belongs_to(private):
    # The loop belongs to this thread (it kicked it first): a worker never
    # drives it itself, even while nobody else does; the stop happens when
    # this thread runs the loop again.
    mgr = private
    mgr.register("w", _idle, owner="o")
    mgr.start()
    _kick_until(mgr, lambda: mgr.c.info("w")["state"] == "running")
    t, result = _stop_in_thread(mgr)
    t.join(0.3)
    assert t.is_alive()
    assert mgr.c.info("w")["state"] == "running"
    _kick_until(mgr, lambda: not t.is_alive())
    t.join(HANG_GUARD)
    assert result == {"value": None}
    assert mgr.c.info("w")["state"] == "stopped"


def test_serve_with_a_stop_from_a_worker_thread_returns_0(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent("""
        import asyncio, threading, bgloop

        running = threading.Event()

        @bgloop.service("busy", owner="o")
        async def busy(ctx):
            ctx.ready()
            running.set()
            while not ctx.stopping.is_set():
                await asyncio.sleep(0.0005)
            for _ in range(20):
                await asyncio.sleep(0.0005)

        def worker():
            running.wait()
            errors.append(bgloop.stop_services())

        errors = []
        t = threading.Thread(target=worker)
        t.start()
        code = bgloop.serve(signals=False)
        # stop_services() returns to the worker as serve() returns here.
        t.join()
        print("serve", code, errors)
    """))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=HANG_GUARD * 3)
    assert p.returncode == 0, p.stderr
    assert "serve 0 [None]" in p.stdout, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr


def test_a_second_serve_from_another_thread_is_refused(tmp_path):
    # It used to fail on its first kick, then stop every service and clear
    # the first serve()'s keep-alive: the first one never returned.
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent("""
        import threading, bgloop

        running = threading.Event()

        @bgloop.service("s", owner="o")
        async def s(ctx):
            ctx.ready()
            running.set()
            await ctx.stopping.wait()

        def second():
            running.wait()
            try:
                bgloop.serve(signals=False)
            except RuntimeError as exc:
                print("refused:", exc)
            print("still", bgloop.status()["s"]["state"])
            bgloop.stop_services()

        threading.Thread(target=second).start()
        print("serve", bgloop.serve(signals=False))
    """))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=HANG_GUARD * 3)
    assert p.returncode == 0, p.stderr
    assert "refused: bgloop.serve() is already running" in p.stdout, (p.stdout, p.stderr)
    assert "still running" in p.stdout and "serve 0" in p.stdout, (p.stdout, p.stderr)


def test_gc_of_managers_with_cycles_while_stopping():
    for i in range(10):
        loop = bgloop.Loop()
        mgr = _services.Manager(loop)

        async def svc(ctx, loop=loop, mgr=mgr):
            ctx.resources.push(lambda: (loop, mgr))
            ctx.ready()
            await ctx.stopping.wait()

        mgr.register("x", svc, owner="o")
        mgr.register("y", svc, owner="o", depends_on=("x",))
        mgr.start()
        _kick_until(mgr, lambda: mgr.c.info("y")["state"] == "running")
        mgr.request_stop(done=lambda loop=loop, mgr=mgr: (loop, mgr))
        if i % 2:
            mgr.stop()
            mgr.forget()
        del mgr, svc
        gc.collect()
        loop.close()
        del loop
        gc.collect()


def test_stop_timeout_0_against_a_service_that_swallows_cancellation(private):
    mgr = private
    release = asyncio.Event()

    async def deaf(ctx):
        ctx.ready()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                pass  # swallowed, every time

    mgr.register("deaf", deaf, owner="o", stop_timeout=0)
    mgr.start()
    _kick_until(mgr, lambda: mgr.c.info("deaf")["state"] == "running")
    mgr.stop(timeout=0)  # returns: the run is abandoned, not awaited forever
    info = mgr.c.info("deaf")
    assert info["state"] == "failed" and "abandoned" in info["error"], info
    assert mgr.c.nothing_left()
    task = mgr.tasks.c  # the abandoned task is still pending in asyncio
    release.set()
    _kick_until(mgr, lambda: not asyncio.all_tasks(mgr.loop))
    assert task.active() == 0


def test_ready_and_push_from_a_worker_thread_wake_the_loop(private):
    # ctx.ready() from a thread used to touch the C manager off the loop
    # without waking it: the dependent never started while the loop slept.
    mgr = private
    go, release = threading.Event(), threading.Event()
    closed = []

    async def a(ctx):
        def worker():
            go.wait()
            # Holding the GIL here while busy: the loop waits in the kernel.
            while not mgr.loop._core.busy:
                release.wait(0.001)
            ctx.resources.push(lambda: closed.append(True))
            ctx.ready()
            release.wait()

        threading.Thread(target=worker, daemon=True).start()
        await ctx.stopping.wait()

    async def b(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    mgr.register("a", a, owner="o")
    mgr.register("b", b, owner="o", depends_on=("a",))
    mgr.start()
    _kick_until(mgr, lambda: mgr.c.info("a")["state"] == "starting")
    go.set()
    try:
        # Each kick sleeps until something wakes it: a kick that used up
        # the whole guard was never woken by the worker.
        start = time.monotonic()
        while mgr.c.info("b")["state"] != "running":
            assert time.monotonic() - start < HANG_GUARD, mgr.status()
            mgr.loop.kick(HANG_GUARD)
        assert time.monotonic() - start < HANG_GUARD, "the worker's calls did not wake the loop"
        assert mgr.c.info("a")["resources"] == 1
    finally:
        release.set()
    mgr.stop()
    assert closed == [True]
