"""bgloop services: ordering, readiness, restarts, stop, status, bad input.

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


class Closable:
    def __init__(self, log, name, fail=False):
        self.log, self.name, self.fail = log, name, fail

    def close(self):
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} refuses")


class AsyncClosable:
    def __init__(self, log, name):
        self.log, self.name = log, name

    async def aclose(self):
        await asyncio.sleep(0)
        self.log.append(self.name)


class WaitClosable:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def close(self):
        self.log.append(f"{self.name}.close")

    async def wait_closed(self):
        await asyncio.sleep(0)
        self.log.append(f"{self.name}.wait_closed")


def test_resources_close_lifo_past_a_failing_close():
    log = []

    @bgloop.service("res", owner="t")
    async def res(ctx):
        ctx.resources.push(Closable(log, "first"))
        ctx.resources.push(AsyncClosable(log, "async"))
        ctx.resources.push(Closable(log, "broken", fail=True))
        ctx.resources.push(WaitClosable(log, "server"))
        ctx.resources.push(lambda: log.append("callable"))

        async def acall():
            log.append("async callable")
        ctx.resources.push(acall)
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("res") == "running")
    assert bgloop.status()["res"]["resources"] == 6
    bgloop.stop_services()
    assert log == ["async callable", "callable", "server.close", "server.wait_closed",
                   "broken", "async", "first"]
    st = bgloop.status()["res"]
    assert st["resources"] == 0
    report = bgloop.services._mgr.report("res")
    assert report["failed"] == 1 and report["closed"] == 5
    assert "broken refuses" in report["errors"]


def test_resources_close_when_service_fails_on_its_own():
    log = []

    @bgloop.service("crash", owner="t")
    async def crash(ctx):
        ctx.resources.push(Closable(log, "a"))
        ctx.resources.push(Closable(log, "b"))
        ctx.ready()
        raise KeyError("gone")

    bgloop.start_services()
    drive(lambda: state("crash") == "failed")
    assert log == ["b", "a"]
    assert bgloop.status()["crash"]["error"] == "KeyError: 'gone'"


def test_push_rejects_what_cannot_be_closed():
    errors = []

    @bgloop.service("pusher", owner="t")
    async def pusher(ctx):
        for bad in (None, 42, object()):
            try:
                ctx.resources.push(bad)
            except TypeError as exc:
                errors.append(str(exc))
        ctx.ready()

    bgloop.start_services()
    drive(lambda: state("pusher") == "exited")
    assert len(errors) == 3 and "int" in errors[1] and "object" in errors[2]


def test_push_after_the_service_ended_closes_at_once():
    log, kept = [], []

    @bgloop.service("ended", owner="t")
    async def ended(ctx):
        kept.append(ctx)
        ctx.ready()

    bgloop.start_services()
    drive(lambda: state("ended") == "exited")
    with pytest.raises(RuntimeError, match="has ended"):
        kept[0].resources.push(Closable(log, "late"))
    assert log == ["late"]


def _port_is_free(port: int) -> bool:
    """Can a new server listen there (with SO_REUSEADDR, as asyncio's
    servers do, so connections in TIME_WAIT do not count)?"""
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_server_and_writers_closed_and_port_free_right_after_stop():
    info = {}

    async def handle(reader, writer):
        try:
            writer.write(await reader.readline())
            await writer.drain()
            await reader.read()  # keep the connection open until cancelled
        except asyncio.CancelledError:
            # Python 3.11/3.12's start_server reports a cancelled handler as
            # an unhandled error (fixed in 3.13): end quietly instead.
            pass
        finally:
            writer.close()

    @bgloop.service("srv", owner="t", stop_timeout=2)
    async def srv(ctx):
        server = ctx.resources.push(await asyncio.start_server(handle, "127.0.0.1", 0))
        info["port"] = server.sockets[0].getsockname()[1]
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("srv") == "running")

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", info["port"])
        writer.write(b"ping\n")
        line = await reader.readline()
        return reader, writer, line

    reader, writer, line = run(client())
    assert line == b"ping\n"
    assert not _port_is_free(info["port"])
    bgloop.stop_services()
    assert state("srv") == "stopped"
    assert _port_is_free(info["port"])
    # The connection handler was cancelled with its service: the client sees EOF.
    assert run(reader.read()) == b""
    writer.close()


def test_tasks_inherit_owner_and_only_that_owner_is_cancelled():
    got = {}

    async def forever(tag):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            got.setdefault("cancelled", []).append(tag)
            raise

    def spawn_from_callback(tag):
        got[tag] = asyncio.get_running_loop().create_task(forever(tag))

    @bgloop.service("x1", owner="ownerX")
    async def x1(ctx):
        async def child():
            # A grandchild, through a task and a plain callback.
            got["x-grand"] = asyncio.ensure_future(forever("x-grand"))
            ctx.loop.call_soon(spawn_from_callback, "x-callback")
            await forever("x-child")
        got["x-child"] = asyncio.ensure_future(child())
        ctx.ready()
        await ctx.stopping.wait()

    @bgloop.service("y1", owner="ownerY")
    async def y1(ctx):
        got["y-child"] = asyncio.ensure_future(forever("y-child"))
        ctx.ready()
        await ctx.stopping.wait()

    # A task of nobody's, created outside any service.
    loop = bgloop.ensure_loop()
    outside = loop.create_task(forever("outside"))

    bgloop.start_services()
    drive(lambda: state("x1") == "running" and state("y1") == "running"
          and "x-callback" in got)
    assert bgloop.tasks.current_owner() is None
    assert {t for t in bgloop.tasks.owned_tasks("ownerX")} >= {got["x-child"], got["x-grand"],
                                                               got["x-callback"]}

    bgloop.stop_services("ownerX")
    assert sorted(got["cancelled"]) == ["x-callback", "x-child", "x-grand"]
    assert state("x1") == "stopped"
    assert state("y1") == "running" and not got["y-child"].done()
    assert not outside.done()
    outside.cancel()
    drive(outside.done)


def test_tasks_left_behind_are_cancelled_when_the_service_ends():
    child = {}

    @bgloop.service("leaver", owner="t")
    async def leaver(ctx):
        child["t"] = asyncio.ensure_future(asyncio.sleep(3600))
        ctx.ready()
        # returns without waiting for its child

    bgloop.start_services()
    drive(lambda: state("leaver") == "exited")
    assert child["t"].cancelled()


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
                "resources", "tasks"):
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
        bgloop.service("")(fn)
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
        # From inside a running kick the blocking form returns a Task ...
        task = bgloop.stop_services("t")
        assert isinstance(task, asyncio.Task)
        # ... and awaiting a stop of one's own owner returns at once (a
        # service cannot wait for its own end); then stopping is set.
        await bgloop.stop_services_async("t")
        await ctx.stopping.wait()
        order.append("stopper stopped")

    bgloop.start_services()
    drive(lambda: len(order) == 2)
    drive(lambda: state("stopper") == "stopped" and state("inner") == "stopped")
    assert sorted(order) == ["inner stopped", "stopper stopped"]


def test_kick_reports_work_while_services_run():
    @bgloop.service("k", owner="t")
    async def k(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    loop = bgloop.ensure_loop()
    bgloop.start_services()
    drive(lambda: state("k") == "running")
    assert loop.kick(0) is False
    assert bgloop.services._anything_left(loop)
    bgloop.stop_services()
    assert not bgloop.services._anything_left(loop)
    assert loop.kick(0) is True


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
    host = bgloop.services._hosts["zombie"]
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
        task = bgloop.stop_services()   # inside the loop: returns a Task
        await ctxs[0].stopping.wait()
        proceed.set()
        await task

    run(stop_then_release())
    assert after == [True]
    assert state("never_ready") == "stopped"


def test_stream_writers_pushed_are_closed():
    peer = {}

    async def accept(reader, writer):
        peer["eof"] = await reader.read()  # until the service's writer closes
        writer.close()

    async def make_server():
        return await asyncio.start_server(accept, "127.0.0.1", 0)

    server = run(make_server())
    port = server.sockets[0].getsockname()[1]

    @bgloop.service("client", owner="t")
    async def client(ctx):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        ctx.resources.push(writer)
        writer.write(b"hello")
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("client") == "running")
    bgloop.stop_services()
    drive(lambda: "eof" in peer)
    assert peer["eof"] == b"hello"
    server.close()
    run(server.wait_closed())


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


def test_a_close_that_hangs_is_abandoned_and_the_rest_still_closed():
    log = []
    release = asyncio.Event()

    class Hangs:
        async def aclose(self):
            log.append("hangs: started")
            await release.wait()
            log.append("hangs: finished late")

    @bgloop.service("hang", owner="t", stop_timeout=0.05)  # closes get max(0.05, 1) s
    async def hang(ctx):
        ctx.resources.push(Closable(log, "below"))
        ctx.resources.push(Hangs())
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("hang") == "running")
    bgloop.stop_services()
    assert state("hang") == "stopped"
    assert log == ["hangs: started", "below"]
    report = bgloop.services._mgr.report("hang")
    assert report["timed_out"] == 1 and report["closed"] == 1
    release.set()
    drive(lambda: len(log) == 3)


def test_task_registry_binding():
    from bgloop import _bgloop

    reg = _bgloop.Tasks()
    loop = bgloop.ensure_loop()

    async def forever():
        await asyncio.Event().wait()

    a1, a2, b1 = (loop.create_task(forever()) for _ in range(3))
    reg.add("A", "svc1", a1)
    reg.add("A", "svc2", a2)
    reg.add("B", "svc3", b1)
    assert reg.active() == 3 and reg.active("A") == 2 and reg.active("nobody") == 0
    assert reg.tasks("A") == [a1, a2] and reg.tasks(None, "svc3") == [b1]
    assert reg.tasks("A", "svc2") == [a2]
    assert reg.cancel("A") == 2
    drive(lambda: a1.done() and a2.done())
    settle()  # done callbacks finish the entries
    assert a1.cancelled() and not b1.done()
    assert reg.active() == 1 and reg.tasks() == [b1]
    for bad in ((1, "n", b1), ("o", None, b1)):
        with pytest.raises(TypeError):
            reg.add(*bad)
    with pytest.raises(TypeError):
        reg.tasks(5)
    b1.cancel()
    drive(b1.done)
    settle()
    assert reg.active() == 0


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
    assert not bgloop.services._anything_left(loop)
    assert bgloop.services.failed_for_good() == ["base_broken"]
