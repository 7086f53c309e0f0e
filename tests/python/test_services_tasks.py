"""bgloop services: tasks belong to the service (and owner) that created them."""

from __future__ import annotations

import asyncio

import bgloop
import pytest

from _services_util import clean, drive, run, settle, state  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean")


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
