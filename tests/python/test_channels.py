"""Channels: publish/subscribe and request/reply on the shared loop, owner
scoping, overflow policies, threads, and two copies of bgloop on one bus."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import shutil
import sys
import threading
import time
import weakref

import bgloop
import pytest
from _services_util import HANG_GUARD, clean, drive, run, settle  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean", "empty_bus")


@pytest.fixture
def empty_bus():
    yield
    bus = sys.modules["_bgloop_channels"]
    assert bus.subscribers == {} and bus.responders == {} and not bus.pending, vars(bus)


def _idle_service(name, owner):
    async def svc(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.service(name, owner=owner)(svc)


# ---- publish / subscribe ---------------------------------------------------------

def test_awaitable_subscriber_gets_messages_in_order():
    ch = bgloop.channel("t.order")
    sub = ch.subscribe()
    for i in range(5):
        assert ch.publish(i) == 1

    async def read():
        return [await sub.get() for _ in range(5)]

    assert run(read()) == [0, 1, 2, 3, 4]
    ch.close()


def test_async_for_ends_when_the_subscription_closes():
    ch = bgloop.channel("t.iter")
    sub = ch.subscribe()
    got = []

    async def read():
        async for msg in sub:
            got.append(msg)
            if msg == "b":
                sub.close()

    for msg in ("a", "b", "c"):
        ch.publish(msg)
    run(read())
    assert got == ["a", "b"]
    ch.close()


def test_every_subscriber_gets_every_message_and_the_same_object():
    ch = bgloop.channel("t.many")
    payload = {"frame": 1}
    seen = []
    ch.subscribe(seen.append)
    sub2 = bgloop.channel("t.many").subscribe()
    assert ch.publish(payload) == 2
    drive(lambda: seen)
    assert seen[0] is payload
    assert run(sub2.get()) is payload
    sub2.close()
    ch.close()


def test_callback_runs_on_the_loop_not_inside_publish():
    ch = bgloop.channel("t.cb")
    seen = []
    ch.subscribe(lambda msg: seen.append((msg, asyncio.get_running_loop())))
    ch.publish(1)
    assert seen == []
    drive(lambda: seen)
    assert seen == [(1, bgloop.ensure_loop())]
    ch.close()


def test_async_callback_runs_as_a_task():
    ch = bgloop.channel("t.acb")
    seen = []

    async def cb(msg):
        await asyncio.sleep(0)
        seen.append(msg)

    ch.subscribe(cb)
    ch.publish("x")
    drive(lambda: seen)
    assert seen == ["x"]
    ch.close()


def test_raising_callback_is_logged_and_others_still_get_it(caplog):
    ch = bgloop.channel("t.raise")
    seen = []

    def broken(msg):
        raise ValueError("broken subscriber")

    ch.subscribe(broken)
    ch.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="bgloop.channels"):
        ch.publish(1)
        ch.publish(2)
        drive(lambda: len(seen) == 2)
    assert seen == [1, 2]
    assert "broken subscriber" in caplog.text
    ch.close()


@pytest.mark.parametrize("overflow, expected, dropped", [
    ("drop_oldest", [2, 3, 4], 2),
    ("drop_newest", [0, 1, 2], 2),
])
def test_a_full_queue_drops_by_its_policy(overflow, expected, dropped):
    ch = bgloop.channel("t.full")
    sub = ch.subscribe(maxsize=3, overflow=overflow)
    for i in range(5):
        ch.publish(i)
    assert sub.dropped == dropped

    async def read():
        return [await sub.get() for _ in range(3)]

    assert run(read()) == expected
    assert len(sub) == 0
    ch.close()


def test_overflow_error_ends_the_subscription_after_its_queue():
    ch = bgloop.channel("t.error")
    sub = ch.subscribe(maxsize=2, overflow="error")
    for i in range(3):
        ch.publish(i)           # the publisher is not failed
    assert sub.closed
    assert ch.publish(3) == 0   # no longer subscribed

    async def read():
        got = []
        with pytest.raises(bgloop.ChannelOverflow, match="t.error"):
            async for msg in sub:
                got.append(msg)
        return got

    assert run(read()) == [0, 1]
    ch.close()


def test_publishes_from_many_threads_arrive_once_in_each_threads_order():
    ch = bgloop.channel("t.threads")
    threads, per = 8, 300
    seen = []
    loop_thread = []
    sub = ch.subscribe(lambda m: (seen.append(m), loop_thread.append(threading.get_ident())),
                       maxsize=threads * per)
    start = threading.Barrier(threads)

    def worker(t):
        start.wait()
        for i in range(per):
            ch.publish((t, i))

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    drive(lambda: len(seen) == threads * per and not any(w.is_alive() for w in workers))
    for w in workers:
        w.join()
    settle()
    assert len(seen) == threads * per and sub.dropped == 0
    for t in range(threads):
        assert [i for (tt, i) in seen if tt == t] == list(range(per))
    assert set(loop_thread) == {threading.get_ident()}
    ch.close()


# ---- request / reply -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sync", "async"])
def test_request_gets_the_responders_reply(kind):
    ch = bgloop.channel("t.rr")
    if kind == "sync":
        ch.respond(lambda msg: msg * 2)
    else:
        async def handler(msg):
            await asyncio.sleep(0)
            return msg * 3
        ch.respond(handler)
    asker = bgloop.channel("t.rr")
    assert run(asker.request(7, timeout=HANG_GUARD)) == (14 if kind == "sync" else 21)
    ch.close()


def test_request_without_responder_fails_at_once():
    ch = bgloop.channel("t.nobody")

    async def ask():
        with pytest.raises(bgloop.NoResponder, match="t.nobody"):
            await ch.request("hello")

    run(ask())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_raising_responder_raises_in_the_requester_not_the_loop(kind):
    loop = bgloop.ensure_loop()
    handled = []
    loop.set_exception_handler(lambda loop, context: handled.append(context))
    ch = bgloop.channel("t.bad")

    def sync_handler(msg):
        raise KeyError("no such scene")

    async def async_handler(msg):
        raise KeyError("no such scene")

    ch.respond(sync_handler if kind == "sync" else async_handler)

    async def ask():
        with pytest.raises(KeyError, match="no such scene"):
            await ch.request("Scene", timeout=HANG_GUARD)

    try:
        run(ask())
        settle()
    finally:
        loop.set_exception_handler(None)
    assert handled == []
    ch.close()


def test_request_times_out_and_the_handler_is_cancelled():
    ch = bgloop.channel("t.slow")
    cancelled = []

    async def slow(msg):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(msg)
            raise

    ch.respond(slow)

    async def ask():
        with pytest.raises(TimeoutError, match="t.slow"):
            await ch.request("late", timeout=0.05)

    run(ask())
    drive(lambda: cancelled)
    assert cancelled == ["late"]
    ch.close()


def test_closing_the_responder_fails_its_requests_and_frees_the_channel():
    ch = bgloop.channel("t.gone")
    started = []

    async def slow(msg):
        started.append(msg)
        await asyncio.sleep(3600)

    responder = ch.respond(slow)

    async def ask():
        with pytest.raises(bgloop.NoResponder, match="went away"):
            await ch.request(1, timeout=HANG_GUARD)

    task = bgloop.ensure_loop().create_task(ask())
    drive(lambda: started)
    responder.close()
    drive(task.done)
    task.result()
    ch.respond(lambda msg: "again").close()
    ch.close()


# ---- owners ----------------------------------------------------------------------

def test_stopping_an_owner_ends_what_it_holds_on_channels():
    _idle_service("chan-svc", owner="chan_a")
    bgloop.start_services("chan_a")
    drive(lambda: bgloop.status()["chan-svc"]["state"] == "running")
    a = bgloop.channel("t.owner", owner="chan_a")
    other = bgloop.channel("t.owner", owner="chan_b")
    a_sub = a.subscribe()
    b_sub = other.subscribe()
    a.respond(lambda msg: "from a")
    never = bgloop.channel("t.owner.silent")

    async def silent(msg):
        await asyncio.sleep(3600)

    never.respond(silent)
    pending = bgloop.ensure_loop().create_task(
        bgloop.channel("t.owner.silent", owner="chan_a").request("?"))
    settle()
    assert not pending.done()

    bgloop.stop_services("chan_a")
    drive(pending.done)
    assert pending.cancelled()
    assert a_sub.closed and not b_sub.closed
    assert a.publish("after") == 1          # the handle stays usable

    async def check():
        assert await b_sub.get() == "after"
        with pytest.raises(bgloop.NoResponder):
            await other.request("?")

    run(check())
    a.close()
    other.close()
    never.close()


def test_forgetting_an_owner_ends_its_subscriptions():
    ch = bgloop.channel("t.forget", owner="chan_f")
    sub = ch.subscribe()

    async def read():
        return [msg async for msg in sub]

    task = bgloop.ensure_loop().create_task(read())
    ch.publish(1)
    settle()
    bgloop.forget_services("chan_f")
    drive(task.done)
    assert task.result() == [1]
    ch.close()


def test_a_handle_lets_ended_subscriptions_go():
    ch = bgloop.channel("t.keep", owner="chan_k")
    ref = weakref.ref(ch.subscribe())
    bgloop.forget_services("chan_k")
    ch.subscribe().close()
    settle()                # their wake-ups hold them until the loop runs
    gc.collect()
    assert ref() is None
    ch.close()


# ---- misuse ----------------------------------------------------------------------

def test_a_closed_handle_refuses_and_others_go_on():
    ch = bgloop.channel("t.closed")
    other = bgloop.channel("t.closed")
    sub = other.subscribe()
    ch.close()
    for call in (lambda: ch.publish(1), lambda: ch.subscribe(), lambda: ch.respond(print)):
        with pytest.raises(bgloop.ChannelClosed, match="t.closed"):
            call()
    assert other.publish(2) == 1
    assert run(sub.get()) == 2
    other.close()

    async def read():
        with pytest.raises(bgloop.ChannelClosed):
            await sub.get()

    run(read())


@pytest.mark.parametrize("args, kwargs, error, words", [
    ((123,), {}, TypeError, "channel name must be a str"),
    ((None,), {}, TypeError, "channel name must be a str"),
    (("",), {}, ValueError, "channel name must be a non-empty"),
    (("x",), {"owner": 5}, TypeError, "owner must be a str or None"),
    (("x",), {"owner": ""}, ValueError, "owner must be a non-empty"),
])
def test_bad_channel_arguments_name_the_problem(args, kwargs, error, words):
    with pytest.raises(error, match=words):
        bgloop.channel(*args, **kwargs)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"callback": 3}, TypeError, "callback must be callable"),
    ({"maxsize": 0}, ValueError, "maxsize must be >= 1"),
    ({"maxsize": 2.5}, TypeError, "maxsize must be an int"),
    ({"overflow": "block"}, ValueError, "overflow must be one of"),
])
def test_bad_subscribe_arguments_name_the_problem(kwargs, error, words):
    ch = bgloop.channel("t.badsub")
    with pytest.raises(error, match=words):
        ch.subscribe(**kwargs)
    ch.close()


def test_one_responder_per_channel_and_request_arguments_checked():
    ch = bgloop.channel("t.two")
    ch.respond(lambda m: m)
    with pytest.raises(bgloop.ChannelError, match="already has a responder"):
        bgloop.channel("t.two").respond(lambda m: m)
    with pytest.raises(TypeError, match="handler must be callable"):
        bgloop.channel("t.three").respond(None)

    async def ask():
        with pytest.raises(ValueError, match="timeout must be > 0"):
            await ch.request(1, timeout=-1)
        with pytest.raises(TypeError, match="timeout must be a number"):
            await ch.request(1, timeout="soon")

    run(ask())
    ch.close()


def test_get_on_a_callback_subscription_is_refused():
    ch = bgloop.channel("t.cbget")
    sub = ch.subscribe(print)

    async def read():
        with pytest.raises(bgloop.ChannelError, match="has a callback"):
            await sub.get()

    run(read())
    ch.close()


# ---- two copies of bgloop --------------------------------------------------------

@pytest.fixture
def vendored(tmp_path):
    """A second copy of the installed package, importable as another name
    (how an add-on vendors bgloop)."""
    root = tmp_path / "vendor"
    shutil.copytree(os.path.dirname(bgloop.__file__), root / "vendored_bgloop",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(root))
    try:
        copy = importlib.import_module("vendored_bgloop")
        assert copy is not bgloop and copy.channel is not bgloop.channel
        yield copy
    finally:
        sys.path.remove(str(root))
        loop = copy.ensure_loop()
        copy.stop_services()
        copy.forget_services()
        loop.close()
        for name in [n for n in sys.modules if n.split(".")[0] == "vendored_bgloop"]:
            del sys.modules[name]


def _drive_both(loops, until):
    end = time.monotonic() + HANG_GUARD
    while not until():
        assert time.monotonic() < end, "loops did not finish in time"
        for loop in loops:
            loop.kick(timeout=0.01)


def test_two_copies_of_bgloop_share_channels(vendored):
    ours = bgloop.channel("t.copies", owner="addon_a")
    theirs = vendored.channel("t.copies", owner="addon_b")
    loops = [bgloop.ensure_loop(), vendored.ensure_loop()]
    assert loops[0] is not loops[1]

    seen = []
    theirs.subscribe(seen.append)
    ours.respond(lambda msg: {"echo": msg})
    assert ours.publish("hi") == 1
    _drive_both(loops, lambda: seen)
    assert seen == ["hi"]

    async def ask():
        return await theirs.request("ping", timeout=HANG_GUARD)

    task = loops[1].create_task(ask())
    _drive_both(loops, task.done)
    assert task.result() == {"echo": "ping"}

    # Their owner's end, told by their copy, reaches our bus entries too.
    vendored.forget_services("addon_b")
    assert ours.publish("bye") == 0
    ours.close()
    theirs.close()
