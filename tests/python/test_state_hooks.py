"""bgloop.on_state_change(): the C service manager's transitions, told to
Python callbacks on the loop's thread, in order; owner-scoped; a callback
that raises is logged and changes nothing else."""

from __future__ import annotations

import asyncio
import logging

import pytest

import bgloop
from _services_util import clean, drive, settle, state  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean")


def _idle_service(name, owner="hooks"):
    @bgloop.service(name, owner=owner, stop_timeout=1.0)
    async def svc(ctx):
        ctx.ready()
        await ctx.stopping.wait()
    return svc


def test_transitions_in_order_with_the_loop_running():
    seen = []

    def hook(name, old, new, error):
        seen.append((name, old, new, error, asyncio.get_running_loop() is bgloop.ensure_loop()))

    sub = bgloop.on_state_change(hook)
    _idle_service("hooks.a")
    bgloop.start_services("hooks")
    drive(lambda: state("hooks.a") == "running")
    bgloop.stop_services("hooks")
    sub()
    assert seen == [
        ("hooks.a", "stopped", "starting", None, True),
        ("hooks.a", "starting", "running", None, True),
        ("hooks.a", "running", "stopping", None, True),
        ("hooks.a", "stopping", "stopped", None, True),
    ]


def test_failure_carries_the_error_text():
    seen = []
    sub = bgloop.on_state_change(lambda *args: seen.append(args))

    @bgloop.service("hooks.bad", owner="hooks")
    async def bad(ctx):
        raise RuntimeError("disk on fire")

    bgloop.start_services("hooks")
    drive(lambda: state("hooks.bad") == "failed")
    sub()
    failed = [s for s in seen if s[2] == "failed"]
    assert len(failed) == 1
    assert failed[0][0] == "hooks.bad" and "disk on fire" in failed[0][3]


def test_unsubscribe_stops_the_calls_and_is_harmless_twice():
    seen = []
    sub = bgloop.on_state_change(lambda *args: seen.append(args))
    assert sub.active
    sub()
    sub.close()
    assert not sub.active
    _idle_service("hooks.quiet")
    bgloop.start_services("hooks")
    drive(lambda: state("hooks.quiet") == "running")
    assert seen == []


def test_owner_subscriptions_end_when_the_owner_is_forgotten():
    mine, theirs = [], []
    sub_a = bgloop.on_state_change(lambda *args: mine.append(args[2]), owner="addon_a")
    sub_b = bgloop.on_state_change(lambda *args: theirs.append(args[2]), owner="addon_b")
    _idle_service("a.svc", owner="addon_a")
    _idle_service("b.svc", owner="addon_b")
    bgloop.start_services()
    drive(lambda: state("a.svc") == "running" and state("b.svc") == "running")
    # A stop alone keeps the subscription: a panel still sees the service go down.
    bgloop.stop_services("addon_a")
    assert sub_a.active and mine[-1] == "stopped"
    bgloop.forget_services("addon_a")             # the add-on is disabled or reloaded
    assert not sub_a.active and sub_b.active
    count = len(mine)
    bgloop.stop_services("addon_b")
    assert len(mine) == count
    assert theirs[-2:] == ["stopping", "stopped"]
    sub_b()


def test_a_raising_callback_is_logged_and_the_others_still_run(caplog):
    after = []

    def broken(name, old, new, error):
        raise ValueError(f"broken hook saw {new}")

    subs = [bgloop.on_state_change(broken), bgloop.on_state_change(lambda *a: after.append(a[2]))]
    _idle_service("hooks.sturdy")
    with caplog.at_level(logging.ERROR, logger="bgloop.services"):
        bgloop.start_services("hooks")
        drive(lambda: state("hooks.sturdy") == "running")
    for sub in subs:
        sub()
    assert after == ["starting", "running"]
    logged = [r for r in caplog.records if r.name == "bgloop.services" and r.exc_info]
    assert len(logged) == 2 and "broken hook saw running" in str(logged[1].exc_info[1])
    settle()
    assert state("hooks.sturdy") == "running"


def test_subscribing_from_a_callback_takes_effect_after_it():
    calls = []
    inner = []

    def outer(name, old, new, error):
        calls.append(new)
        if len(calls) == 1:
            inner.append(bgloop.on_state_change(lambda *a: calls.append("inner:" + a[2])))

    sub = bgloop.on_state_change(outer)
    _idle_service("hooks.nested")
    bgloop.start_services("hooks")
    drive(lambda: state("hooks.nested") == "running")
    sub()
    inner[0]()
    assert calls == ["starting", "running", "inner:running"]


@pytest.mark.parametrize("args, kwargs, error, words", [
    ((None,), {}, TypeError, "callback must be callable"),
    ((print,), {"owner": 3}, TypeError, "owner must be a str or None"),
    ((print,), {"owner": ""}, ValueError, "owner must be a non-empty string"),
])
def test_bad_arguments_name_the_argument(args, kwargs, error, words):
    with pytest.raises(error, match=words):
        bgloop.on_state_change(*args, **kwargs)
