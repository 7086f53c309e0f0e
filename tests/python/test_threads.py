"""The threading rule: a loop belongs to the thread that first runs it.

Driving it (kick, run_once, run_until_complete, run_forever, serve) from
another thread raises a RuntimeError naming the owner, so callbacks -
service code, bpy calls in Blender - never run on a worker.  The public
service calls hand over instead: start_services() returns a
concurrent.futures.Future, stop_services() blocks until the stop is done;
both wake the loop at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import bgloop
import pytest
from bgloop import services as _services

from _services_util import HANG_GUARD


def in_thread(fn, *args):
    """Run fn(*args) on a new thread; (thread, result dict)."""
    result = {}

    def worker():
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - looked at by the test
            result["error"] = exc

    t = threading.Thread(target=worker, name="worker")
    t.start()
    return t, result


@pytest.fixture
def loop():
    lp = bgloop.Loop()
    lp.kick(0)  # this thread runs it first: it owns it
    yield lp
    lp.close()


@pytest.fixture
def private(loop):
    """A Manager on a loop of its own, owned by this thread."""
    mgr = _services.Manager(loop)
    yield mgr
    mgr.set_keepalive(False)
    mgr.stop(timeout=0)
    mgr.forget()


def kick_until(loop, cond, guard=HANG_GUARD):
    end = time.monotonic() + guard
    while not cond():
        assert time.monotonic() < end, "condition never became true"
        loop.kick(0.05)


def test_loop_belongs_to_the_first_thread_that_runs_it(loop):
    assert loop._core.thread == threading.get_ident()
    ran_on = []
    loop.call_soon(lambda: ran_on.append(threading.get_ident()))
    for drive in (lambda: loop.kick(0),
                  lambda: loop.run_until_complete(asyncio.sleep(0)),
                  lambda: loop._run_once()):
        t, result = in_thread(drive)
        t.join(HANG_GUARD)
        exc = result.get("error")
        assert isinstance(exc, RuntimeError), result
        assert "belongs to thread 'MainThread'" in str(exc), exc
        assert str(threading.get_ident()) in str(exc)
    assert ran_on == []            # nothing ran on the worker
    loop.kick(0)
    assert ran_on == [threading.get_ident()]
    assert not loop.is_running()


def test_a_new_loop_belongs_to_the_thread_that_runs_it():
    lp = bgloop.Loop()
    try:
        t, result = in_thread(lambda: lp.run_until_complete(asyncio.sleep(0, "ok")))
        t.join(HANG_GUARD)
        assert result == {"value": "ok"}
        with pytest.raises(RuntimeError, match="belongs to thread 'worker'"):
            lp.kick(0)
    finally:
        lp.close()


def test_shared_kick_from_a_worker_raises():
    bgloop.kick(0)                 # the shared loop belongs to this (main) thread
    t, result = in_thread(bgloop.kick)
    t.join(HANG_GUARD)
    assert isinstance(result.get("error"), RuntimeError), result
    assert "belongs to thread" in str(result["error"])


def test_threadsafe_calls_still_run_on_the_owner(loop):
    ran_on = []
    t, result = in_thread(loop.call_soon_threadsafe, lambda: ran_on.append(threading.get_ident()))
    t.join(HANG_GUARD)
    kick_until(loop, lambda: ran_on)
    assert ran_on == [threading.get_ident()]


def test_start_services_from_a_worker_wakes_the_loop_at_once(private):
    mgr = private
    mgr.register("w", _idle, owner="o")
    t, result = in_thread(mgr.start)
    t.join(HANG_GUARD)
    future = result["value"]
    assert isinstance(future, concurrent.futures.Future)
    # The hand-over wakes a kick that would otherwise wait for 30 s.
    t0 = time.monotonic()
    while mgr.c.info("w")["state"] == "stopped":
        mgr.loop.kick(HANG_GUARD)
        assert time.monotonic() - t0 < HANG_GUARD / 2, "the start did not wake the loop"
    assert future.result(0) is None
    kick_until(mgr.loop, lambda: mgr.c.info("w")["state"] == "running")


def test_start_services_from_a_worker_reports_errors_through_the_future(private):
    mgr = private
    mgr.register("w", _idle, owner="o", depends_on=("missing",))
    t, result = in_thread(mgr.start)
    t.join(HANG_GUARD)
    future = result["value"]
    kick_until(mgr.loop, future.done)
    with pytest.raises(bgloop.ServiceError, match="missing"):
        future.result(0)


async def _idle(ctx):
    ctx.ready()
    await ctx.stopping.wait()


def test_stop_services_from_a_worker_runs_the_stop_on_the_loops_thread(private):
    mgr = private
    seen = []

    async def svc(ctx):
        ctx.ready()
        await ctx.stopping.wait()
        seen.append(threading.get_ident())

    mgr.register("w", svc, owner="o")
    mgr.start()
    kick_until(mgr.loop, lambda: mgr.c.info("w")["state"] == "running")
    t, result = in_thread(mgr.stop)
    kick_until(mgr.loop, lambda: not t.is_alive())
    assert result == {"value": None}
    assert seen == [threading.get_ident()]
    assert mgr.c.info("w")["state"] == "stopped"


def test_stop_services_from_a_worker_gives_up_when_the_loop_is_not_run(private):
    mgr = private

    async def svc(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    mgr.register("w", svc, owner="o", stop_timeout=0.0)
    mgr.start()
    kick_until(mgr.loop, lambda: mgr.c.info("w")["state"] == "running")
    t, result = in_thread(lambda: mgr.stop(timeout=0))
    t.join(mgr.c.stop_bound(None, 0) + _services.STOP_MARGIN + HANG_GUARD)
    assert not t.is_alive()
    exc = result.get("error")
    assert isinstance(exc, TimeoutError), result
    assert "did not run it" in str(exc)
    # Handed over all the same: the stop happens once the owner runs it
    # (long past its deadline of 0 s, so as a timed-out stop).
    assert mgr.c.info("w")["state"] == "running"
    kick_until(mgr.loop, lambda: mgr.c.info("w")["state"] == "failed")
    assert "stop timed out" in mgr.c.info("w")["error"]


def test_stop_services_from_a_worker_while_serve_runs(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent("""
        import sys, threading
        import bgloop

        main = threading.get_ident()
        where = {}
        workers = []

        @bgloop.service("svc")
        async def svc(ctx):
            ctx.ready()
            workers.append(threading.Thread(target=worker))
            workers[-1].start()
            await ctx.stopping.wait()
            where["stop"] = threading.get_ident() == main

        def worker():
            bgloop.start_services().result(5)   # handed over, taken at once
            bgloop.stop_services()
            print("worker done", bgloop.status()["svc"]["state"], flush=True)

        code = bgloop.serve()
        for t in workers:       # both lines are printed, in this order
            t.join()
        print("stop ran on the main thread:", where.get("stop"), flush=True)
        sys.exit(code)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=HANG_GUARD * 2)
    assert proc.returncode == 0, proc.stderr
    assert "worker done stopped" in proc.stdout, (proc.stdout, proc.stderr)
    assert "stop ran on the main thread: True" in proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
