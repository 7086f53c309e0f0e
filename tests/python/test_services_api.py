"""bgloop services: status, registration, bad input and the errors that
name the problem."""

from __future__ import annotations

import asyncio

import bgloop
import pytest

from _services_util import clean, drive, run, settle, state  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean")


def test_status_contents():
    @bgloop.service("st", owner="own", depends_on=(), restart="on-failure", stop_timeout=1.5)
    async def st(ctx):
        assert ctx.name == "st" and ctx.owner == "own"
        assert ctx.loop is bgloop.ensure_loop()
        assert bgloop.tasks.current_owner() == "own"
        ctx.ready()
        await ctx.stopping.wait()

    s = bgloop.status()["st"]
    assert s["state"] == "stopped" and s["owner"] == "own" and s["restarts"] == 0
    assert s["error"] is None
    bgloop.start_services()
    drive(lambda: state("st") == "running")
    s = bgloop.status()["st"]
    for key in ("state", "owner", "restarts", "error", "since", "wanted", "restart_pending",
                "stop_timed_out", "waiting_for", "depends_on", "restart", "stop_timeout",
                "resources", "tasks", "failed_for_good", "tasks_abandoned"):
        assert key in s, key
    assert s["restart"] == "on-failure" and s["stop_timeout"] == 1.5 and s["tasks"] == 1


def test_default_owner_is_the_defining_package():
    @bgloop.service("owned_by_module")
    async def fn(ctx):
        pass

    assert bgloop.status()["owned_by_module"]["owner"] == __name__.split(".")[0]


def test_bad_input_raises_naming_the_problem():
    async def fn(ctx):
        pass

    with pytest.raises(ValueError, match="'sometimes'"):
        bgloop.service("r", restart="sometimes")(fn)
    with pytest.raises(TypeError, match="async def"):
        bgloop.service("sync")(lambda ctx: None)
    with pytest.raises(TypeError, match="depends_on"):
        bgloop.service("s", depends_on="other")(fn)
    with pytest.raises(ValueError, match="stop_timeout"):
        bgloop.service("s", stop_timeout=-1)(fn)
    with pytest.raises(TypeError, match="stop_timeout"):
        bgloop.service("s", stop_timeout="5")(fn)
    with pytest.raises(TypeError, match="owner"):
        bgloop.service("s", owner=3)(fn)
    with pytest.raises(TypeError, match="name"):
        bgloop.service(5)(fn)
    # The service manager's own rules: ServiceError with its text.
    with pytest.raises(bgloop.ServiceError, match="name"):
        bgloop.service("")(fn)
    with pytest.raises(bgloop.ServiceError, match="restart_delay"):
        bgloop.service("slow", restart_delay=2, restart_max_delay=1)(fn)
    with pytest.raises(ValueError, match="start_limit_burst"):
        bgloop.service("s", start_limit_burst=-1)(fn)
    with pytest.raises(TypeError, match="start_limit_burst"):
        bgloop.service("s", start_limit_burst=2.5)(fn)
    with pytest.raises(bgloop.ServiceError, match="itself"):
        bgloop.service("self", depends_on=("self",))(fn)
    with pytest.raises(TypeError, match="owner"):
        bgloop.start_services(owner=5)

    async def other(ctx):
        pass

    bgloop.service("dup", owner="t")(fn)
    with pytest.raises(bgloop.ServiceError, match="'dup'"):
        bgloop.service("dup", owner="t")(other)
    with pytest.raises(bgloop.ServiceError, match="'dup'"):
        bgloop.service("dup", owner="someone else")(fn)
    assert "r" not in bgloop.status() and "sync" not in bgloop.status()


def test_unknown_dependency_and_cycle_name_the_services():
    async def fn(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.service("needy", owner="t", depends_on=("ghost",))(fn)
    with pytest.raises(bgloop.ServiceError, match="ghost"):
        bgloop.start_services()
    bgloop.forget_services()

    bgloop.service("c1", owner="t", depends_on=("c2",))(fn)
    bgloop.service("c2", owner="t", depends_on=("c3",))(fn)
    bgloop.service("c3", owner="t", depends_on=("c1",))(fn)
    with pytest.raises(bgloop.ServiceError) as err:
        bgloop.start_services()
    assert all(n in str(err.value) for n in ("c1", "c2", "c3"))
    settle()
    assert all(s["state"] == "stopped" for s in bgloop.status().values())


def test_forget_refuses_running_services():
    @bgloop.service("busy", owner="t")
    async def busy(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("busy") == "running")
    with pytest.raises(RuntimeError, match="busy"):
        bgloop.forget_services()
    bgloop.stop_services()
    assert bgloop.forget_services() == ["busy"]
    # ... and may then be registered again (an add-on reload).
    bgloop.service("busy", owner="t")(busy)


def test_start_from_another_running_loop_is_refused():
    @bgloop.service("elsewhere", owner="t")
    async def elsewhere(ctx):
        ctx.ready()

    async def main():
        with pytest.raises(RuntimeError, match="ensure_loop"):
            bgloop.start_services()
        with pytest.raises(RuntimeError, match="another event loop"):
            bgloop.stop_services()

    asyncio.run(main())
    assert state("elsewhere") == "stopped"


def test_reregistering_the_same_definition_replaces_it():
    # What a module reload does: the same def, executed again.
    source = """
import asyncio, bgloop
@bgloop.service("reloaded", owner="t", stop_timeout={timeout})
async def reloaded(ctx):
    ctx.ready()
    await ctx.stopping.wait()
"""
    import types

    def load(timeout):
        module = types.ModuleType("fake_addon")
        exec(compile(source.format(timeout=timeout), "fake_addon.py", "exec"), module.__dict__)
        return module

    load(1.0)
    load(2.0)
    assert bgloop.status()["reloaded"]["stop_timeout"] == 2.0
    bgloop.start_services()
    drive(lambda: state("reloaded") == "running")
    with pytest.raises(bgloop.ServiceError, match="active"):
        load(3.0)
    bgloop.stop_services()
    load(3.0)
    assert bgloop.status()["reloaded"]["stop_timeout"] == 3.0
    bgloop.start_services()
    drive(lambda: state("reloaded") == "running")


def test_starting_an_owner_without_services_warns(caplog):
    with caplog.at_level("WARNING", logger="bgloop"):
        bgloop.start_services("nobody-registered-this")
    assert "no service is registered" in caplog.text


def test_forget_is_all_or_nothing():
    async def idle(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.service("kept_a", owner="both")(idle)
    bgloop.service("kept_b", owner="both")(idle)
    bgloop.start_services("both")
    drive(lambda: state("kept_a") == "running")
    bgloop.services.manager().c.stop_one("kept_b")
    drive(lambda: state("kept_b") == "stopped")
    with pytest.raises(RuntimeError, match="kept_a"):
        bgloop.forget_services("both")
    assert set(bgloop.status()) >= {"kept_a", "kept_b"}
    bgloop.stop_services("both")
    assert bgloop.forget_services("both") == ["kept_a", "kept_b"]


def test_stop_timeout_0_cancels_at_once():
    seen = []

    @bgloop.service("instant", owner="t", stop_timeout=0)
    async def instant(ctx):
        ctx.ready()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append(ctx.stopping.is_set())
            raise

    bgloop.start_services()
    drive(lambda: state("instant") == "running")
    bgloop.stop_services()
    assert seen == [True]
    assert bgloop.status()["instant"]["stop_timeout"] == 0


def test_failed_for_good_in_status():
    @bgloop.service("broken", owner="t")
    async def broken(ctx):
        raise RuntimeError("no disk")

    bgloop.start_services()
    drive(lambda: state("broken") == "failed")
    st = bgloop.status()["broken"]
    assert st["failed_for_good"] and st["error"] == "RuntimeError: no disk"
    assert bgloop.services.failed_for_good() == ["broken"]
    assert bgloop.services.manager().exit_code() == 1


def test_a_manager_of_its_own_loop():
    # State lives in Manager objects: one on another loop is independent of
    # the shared loop's.
    loop = bgloop.new_event_loop()
    events = []

    async def solo(ctx):
        events.append("up")
        ctx.ready()
        await ctx.stopping.wait()
        events.append("down")

    try:
        mgr = bgloop.services.Manager(loop)
        mgr.register("solo", solo, owner="own")
        assert "solo" not in bgloop.status()

        async def main():
            mgr.start()
            while mgr.status()["solo"]["state"] != "running":
                await asyncio.sleep(0.001)
            await mgr.stop_async()

        loop.run_until_complete(asyncio.wait_for(main(), 20))
        assert events == ["up", "down"] and mgr.status()["solo"]["state"] == "stopped"
        assert mgr.forget() == ["solo"]
    finally:
        loop.close()
