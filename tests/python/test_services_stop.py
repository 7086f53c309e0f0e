"""bgloop services: stopping - stop timeouts, deadlines, cancellation, stops
requested from inside the loop."""

from __future__ import annotations

import asyncio

import bgloop
import pytest

from _services_util import clean, drive, run, settle, state  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean")


def test_stop_timeout_then_cancel():
    seen = []

    @bgloop.service("stubborn", owner="t", stop_timeout=0.05)
    async def stubborn(ctx):
        ctx.ready()
        try:
            await asyncio.Event().wait()  # ignores ctx.stopping
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    bgloop.start_services()
    drive(lambda: state("stubborn") == "running")
    bgloop.stop_services()
    st = bgloop.status()["stubborn"]
    assert seen == ["cancelled"]
    assert st["state"] == "failed" and st["stop_timed_out"]
    assert "timed out" in st["error"] or "timeout" in st["error"]


def test_stop_services_timeout_overrides_stop_timeout():
    seen = []

    @bgloop.service("patient", owner="t", stop_timeout=3600)
    async def patient(ctx):
        ctx.ready()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    bgloop.start_services()
    drive(lambda: state("patient") == "running")
    bgloop.stop_services(timeout=0.01)
    assert seen == ["cancelled"]
    assert state("patient") in ("stopped", "failed")


def test_stop_from_inside_the_loop():
    order = []

    @bgloop.service("inner", owner="t")
    async def inner(ctx):
        ctx.ready()
        await ctx.stopping.wait()
        order.append("inner stopped")

    @bgloop.service("stopper", owner="t")
    async def stopper(ctx):
        ctx.ready()
        await asyncio.sleep(0)
        # From inside a running kick the blocking form returns a Future ...
        task = bgloop.stop_services("t")
        assert isinstance(task, asyncio.Future)
        # ... and awaiting a stop of one's own owner returns at once (a
        # service cannot wait for its own end); then stopping is set.
        await bgloop.stop_services_async("t")
        await ctx.stopping.wait()
        order.append("stopper stopped")

    bgloop.start_services()
    drive(lambda: len(order) == 2)
    drive(lambda: state("stopper") == "stopped" and state("inner") == "stopped")
    assert sorted(order) == ["inner stopped", "stopper stopped"]


def test_stop_never_hangs_on_a_service_that_refuses_to_die():
    release = asyncio.Event()

    @bgloop.service("zombie", owner="t", stop_timeout=0.02)
    async def zombie(ctx):
        ctx.ready()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # refuses to be cancelled

    bgloop.start_services()
    drive(lambda: state("zombie") == "running")
    bgloop.stop_services()
    st = bgloop.status()["zombie"]
    assert st["state"] == "failed" and "abandoned" in st["error"]
    release.set()
    host = bgloop.services.manager().host("zombie")
    drive(host.task.done)


def test_stop_while_still_starting_and_late_ready_is_ignored():
    proceed = asyncio.Event()
    after = []

    ctxs = []

    @bgloop.service("never_ready", owner="t")
    async def never_ready(ctx):
        ctxs.append(ctx)
        await proceed.wait()
        ctx.ready()          # too late: a stop was requested meanwhile
        ctx.ready()          # and twice is harmless
        after.append(ctx.stopping.is_set())

    bgloop.start_services()
    drive(lambda: state("never_ready") == "starting")
    task = None

    async def stop_then_release():
        nonlocal task
        task = bgloop.stop_services()   # inside the loop: returns a Future
        await ctxs[0].stopping.wait()
        proceed.set()
        await task

    run(stop_then_release())
    assert after == [True]
    assert state("never_ready") == "stopped"


def test_stop_future_from_inside_the_loop_is_done_once_everything_is_down():
    @bgloop.service("waited", owner="t")
    async def waited(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("waited") == "running")

    async def stop_and_wait():
        fut = bgloop.stop_services("t")
        await fut
        return state("waited"), bgloop.services.manager().c.active("t")

    assert run(stop_and_wait()) == ("stopped", 0)


def test_stop_services_async_on_another_loop_is_refused():
    @bgloop.service("elsewhere_async", owner="t")
    async def elsewhere_async(ctx):
        ctx.ready()

    async def main():
        with pytest.raises(RuntimeError, match="ensure_loop"):
            await bgloop.stop_services_async()

    asyncio.run(main())


# ---- a stop from plain code is bounded, whatever the services do -------------------

def test_stop_reports_what_it_abandoned(caplog):
    release = asyncio.Event()

    @bgloop.service("zombie2", owner="t", stop_timeout=0.02)
    async def zombie(ctx):
        ctx.ready()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # refuses to be cancelled

    bgloop.start_services()
    drive(lambda: state("zombie2") == "running")
    mgr = bgloop.services.manager()
    bound = mgr.c.stop_bound("t")
    assert bound > 0.04          # at least its stop timeout and cancel grace
    with caplog.at_level("WARNING", logger="bgloop"):
        bgloop.stop_services(owner="t")
    assert bgloop.status()["zombie2"]["abandoned"] is True
    assert mgr.c.abandoned("t") >= 1
    assert "abandoned service 'zombie2'" in caplog.text
    release.set()
    drive(mgr.host("zombie2").task.done)


def _in_child(body: str) -> "subprocess.CompletedProcess":
    # A stop that never returns cannot be interrupted in-process.
    import subprocess
    import sys
    import textwrap

    return subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True,
                          text=True, timeout=60)


def test_stop_returns_although_a_descriptor_stays_readable():
    # A reader that never drains its pipe: every kick finds it ready.  The
    # stop used to kick without a budget and never came back.
    proc = _in_child("""
        import asyncio, os, bgloop
        r, w = os.pipe()
        os.write(w, b"x")

        @bgloop.service("reader", owner="t", stop_timeout=0.2)
        async def reader(ctx):
            asyncio.get_running_loop().add_reader(r, lambda: None)
            ctx.ready()
            await ctx.stopping.wait()

        bgloop.start_services("t")
        while bgloop.status()["reader"]["state"] != "running":
            bgloop.kick(0.05, 0.01)
        bgloop.stop_services("t")
        print("stopped", bgloop.status()["reader"]["state"], flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "stopped stopped" in proc.stdout, (proc.stdout, proc.stderr)


def test_stop_returns_within_its_bound_when_a_callback_blocks_and_nothing_cooperates():
    # A service that ignores its stop and its cancellation, keeps a pipe
    # readable and blocks the loop for a while at each wakeup: the stop is
    # still over within the manager's bound plus the margin.
    proc = _in_child("""
        import asyncio, os, time, bgloop
        from bgloop import services
        r, w = os.pipe()
        os.write(w, b"x")

        @bgloop.service("worst", owner="t", stop_timeout=0.3)
        async def worst(ctx):
            loop = asyncio.get_running_loop()
            loop.add_reader(r, lambda: time.sleep(0.05))
            ctx.ready()
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    pass

        bgloop.start_services("t")
        while bgloop.status()["worst"]["state"] != "running":
            bgloop.kick(0.05, 0.01)
        mgr = services.manager()
        allowed = mgr.c.stop_bound("t") + services.STOP_MARGIN
        t0 = time.monotonic()
        bgloop.stop_services("t")
        took = time.monotonic() - t0
        print("within bound", took <= allowed, round(took, 2), round(allowed, 2), flush=True)
        print("state", bgloop.status()["worst"]["state"], flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "within bound True" in proc.stdout, (proc.stdout, proc.stderr)
    assert "state failed" in proc.stdout
    assert "abandoned service 'worst'" in proc.stderr, proc.stderr


def test_an_abandoned_task_is_not_work_left():
    # A host that kicks until nothing is left (the README's timer recipe)
    # must not be kept going forever by a task that swallows cancellation.
    release = asyncio.Event()

    @bgloop.service("zombie3", owner="t", stop_timeout=0.02)
    async def zombie(ctx):
        ctx.ready()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    bgloop.start_services()
    drive(lambda: state("zombie3") == "running")
    bgloop.stop_services(owner="t")
    mgr = bgloop.services.manager()
    task = mgr.host("zombie3").task
    assert not task.done()                 # still out there, abandoned
    loop = bgloop.ensure_loop()
    loop.call_soon(int)
    assert bgloop.kick(0) is True
    # A task of nobody's is still work left.
    other = loop.create_task(asyncio.sleep(3600))
    loop.call_soon(int)
    assert bgloop.kick(0) is False
    other.cancel()
    release.set()
    drive(task.done)
    drive(other.done)
