"""bgloop services: dependency order, readiness, restarts, per-owner start.

The shared loop is driven kick by kick, as Blender's timer does; no test
asserts on elapsed time (restart delays are only checked as lower bounds,
which a loaded machine cannot break)."""

from __future__ import annotations

import asyncio

import bgloop
import pytest

from _services_util import clean, drive, run, settle, state  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean")


def test_dependency_order_and_reverse_stop_order():
    events = []

    def make(name, deps=()):
        @bgloop.service(name, depends_on=deps, owner="t")
        async def svc(ctx):
            events.append(f"start {name}")
            ctx.ready()
            await ctx.stopping.wait()
            events.append(f"stop {name}")

    # Diamond registered out of order: top needs left and right, both need base.
    make("top", ("left", "right"))
    make("left", ("base",))
    make("right", ("base",))
    make("base")
    bgloop.start_services()
    drive(lambda: all(s["state"] == "running" for s in bgloop.status().values()))
    starts = [e.split()[1] for e in events]
    assert starts[0] == "base" and starts[-1] == "top"
    assert set(starts[1:3]) == {"left", "right"}

    events.clear()
    bgloop.stop_services()
    stops = [e.split()[1] for e in events]
    assert stops[0] == "top" and stops[-1] == "base", stops
    assert all(s["state"] == "stopped" for s in bgloop.status().values())


def test_readiness_gates_dependents():
    go = asyncio.Event()
    started = []

    @bgloop.service("slow", owner="t")
    async def slow(ctx):
        started.append("slow")
        await go.wait()
        ctx.ready()
        await ctx.stopping.wait()

    @bgloop.service("after", owner="t", depends_on=("slow",))
    async def after(ctx):
        started.append("after")
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("slow") == "starting")
    settle(10)
    assert started == ["slow"]
    st = bgloop.status()["after"]
    assert st["state"] == "stopped" and st["wanted"] and st["waiting_for"] == "slow"

    go.set()
    drive(lambda: state("after") == "running")
    assert started == ["slow", "after"]


def test_failing_dependency_stops_dependents_and_they_come_back():
    runs = {"dep": 0, "user": 0}

    @bgloop.service("dep", owner="t", restart="on-failure", restart_delay=0.01)
    async def dep(ctx):
        runs["dep"] += 1
        ctx.ready()
        if runs["dep"] == 1:
            await asyncio.sleep(0.01)
            raise RuntimeError("dep crashed")
        await ctx.stopping.wait()

    @bgloop.service("user", owner="t", depends_on=("dep",))
    async def user(ctx):
        runs["user"] += 1
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: runs["dep"] == 2 and state("user") == "running" and runs["user"] == 2)
    assert bgloop.status()["dep"]["restarts"] == 1
    assert "dep crashed" in bgloop.status()["dep"]["error"]


def test_restart_on_failure_with_backoff_then_success():
    starts = []
    loop = bgloop.ensure_loop()

    @bgloop.service("flaky", owner="t", restart="on-failure",
                    restart_delay=0.02, restart_max_delay=0.08)
    async def flaky(ctx):
        starts.append(loop.time())
        if len(starts) <= 4:
            raise ValueError(f"attempt {len(starts)}")
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("flaky") == "running")
    st = bgloop.status()["flaky"]
    assert st["restarts"] == 4
    assert st["error"] == "ValueError: attempt 4"
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # Each delay doubles up to the cap; a timer never fires early.
    for gap, delay in zip(gaps, (0.02, 0.04, 0.08, 0.08)):
        assert gap >= delay * 0.95, (gaps, delay)


def test_restart_policies_no_and_always():
    runs = {"once": 0, "again": 0}

    @bgloop.service("once", owner="t", restart="no")
    async def once(ctx):
        runs["once"] += 1
        ctx.ready()

    @bgloop.service("again", owner="t", restart="always", restart_delay=0.001,
                    restart_max_delay=0.001, start_limit_burst=0)
    async def again(ctx):
        runs["again"] += 1
        ctx.ready()
        if runs["again"] >= 3:
            await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: runs["again"] >= 3 and state("again") == "running")
    assert state("once") == "exited" and runs["once"] == 1
    assert bgloop.status()["once"]["error"] is None
    assert bgloop.status()["again"]["restarts"] == 2


def test_start_limit_leaves_service_failed():
    runs = []

    @bgloop.service("doomed", owner="t", restart="always", restart_delay=0.001,
                    restart_max_delay=0.002, start_limit_burst=3, start_limit_interval=600)
    async def doomed(ctx):
        runs.append(1)
        raise OSError("cannot bind")

    bgloop.start_services()
    drive(lambda: state("doomed") == "failed" and not bgloop.status()["doomed"]["wanted"])
    st = bgloop.status()["doomed"]
    assert len(runs) == 3
    assert "start limit" in st["error"]
    assert not st["restart_pending"]
    assert bgloop.services.failed_for_good() == ["doomed"]


def test_per_owner_stop_and_start():
    @bgloop.service("a1", owner="A")
    async def a1(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    @bgloop.service("b1", owner="B")
    async def b1(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services("A")
    drive(lambda: state("a1") == "running")
    settle()
    assert state("b1") == "stopped"
    bgloop.start_services("B")
    drive(lambda: state("b1") == "running")
    bgloop.stop_services("B")
    assert state("b1") == "stopped" and state("a1") == "running"
    # Repeated start/stop is harmless.
    bgloop.stop_services("B")
    bgloop.start_services("A")
    settle()
    assert state("a1") == "running"


def test_kick_reports_work_while_services_run():
    @bgloop.service("k", owner="t")
    async def k(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    loop = bgloop.ensure_loop()
    bgloop.start_services()
    drive(lambda: state("k") == "running")
    assert loop.kick(0) is False
    assert bgloop.services.manager().busy(loop)
    bgloop.stop_services()
    assert not bgloop.services.manager().busy(loop)
    assert loop.kick(0) is True


def test_nothing_left_when_a_dependency_failed_for_good():
    @bgloop.service("base_broken", owner="t")
    async def base_broken(ctx):
        raise RuntimeError("no disk")

    @bgloop.service("on_top", owner="t", depends_on=("base_broken",))
    async def on_top(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    loop = bgloop.ensure_loop()
    bgloop.start_services()
    drive(lambda: state("base_broken") == "failed")
    settle()
    st = bgloop.status()["on_top"]
    assert st["state"] == "stopped"
    # Nothing can bring it up: a keep-alive may end, and say it failed.
    assert not bgloop.services.manager().busy(loop)
    assert bgloop.services.failed_for_good() == ["base_broken"]
