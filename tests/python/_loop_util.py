"""Fixtures for bgloop's own loop tests (uvloop's pattern): each test body is
written once and runs against the stock asyncio loop and bgloop.Loop, and a
test fails on any unexpected call to the loop's exception handler."""
import asyncio
import contextlib
import os
import selectors
from asyncio import events, unix_events

import pytest

import bgloop

CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "certs")

FACTORIES = {
    "asyncio": lambda: asyncio.SelectorEventLoop(selectors.EpollSelector()),
    "bgloop": bgloop.Loop,
}


# The stock loop, bgloop.Loop with its C transports, and bgloop.Loop with
# asyncio's Python transports: the transport tests run each body on all three.
TRANSPORT_KINDS = ["asyncio", "bgloop", "bgloop-py"]


def transport_loop(kind, monkeypatch):
    """A new loop of one of TRANSPORT_KINDS."""
    if kind == "bgloop-py":
        monkeypatch.setenv("BGLOOP_PY_TRANSPORTS", "1")
        return bgloop.Loop()
    monkeypatch.delenv("BGLOOP_PY_TRANSPORTS", raising=False)
    return FACTORIES[kind]()


class _BgloopPolicy(unix_events._UnixDefaultEventLoopPolicy):
    def new_event_loop(self):
        return bgloop.Loop()


# Python 3.14 deprecates the public policy functions; its own asyncio suites
# install policies with these private twins, which 3.10-3.13 do not have.
_get_policy = getattr(events, "_get_event_loop_policy", None) or events.get_event_loop_policy
_set_policy = getattr(events, "_set_event_loop_policy", None) or events.set_event_loop_policy


@contextlib.contextmanager
def bgloop_policy():
    """asyncio.new_event_loop(), asyncio.run() and asyncio.Runner() make
    bgloop.Loops inside: CPython's asyncio suites make their loops that way.
    No current loop is set (as after a CPython test's tearDown), so
    get_event_loop() raises instead of making one."""
    old = _get_policy()
    policy = _BgloopPolicy()
    _set_policy(policy)
    policy.set_event_loop(None)
    try:
        yield policy
    finally:
        _set_policy(old)


class ExceptionLog:
    """What reached the exception handler; tests that provoke errors on
    purpose take them out with expect()."""

    def __init__(self):
        self.contexts = []

    def __call__(self, loop, context):
        self.contexts.append(context)

    def expect(self, n=1):
        got, self.contexts = self.contexts, []
        assert len(got) == n, got
        return got


def _close(loop):
    if loop.is_closed():
        return
    tasks = asyncio.all_tasks(loop)
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


@pytest.fixture
def exc_log():
    return ExceptionLog()


@pytest.fixture(params=sorted(FACTORIES))
def loop(request, exc_log):
    lp = FACTORIES[request.param]()
    lp.set_exception_handler(exc_log)
    try:
        yield lp
    finally:
        _close(lp)
    assert not exc_log.contexts, f"unexpected exception handler calls: {exc_log.contexts}"


@pytest.fixture
def bgl(exc_log):
    """bgloop.Loop only (kick, stats, C-specific behaviour)."""
    lp = bgloop.Loop()
    lp.set_exception_handler(exc_log)
    try:
        yield lp
    finally:
        _close(lp)
    assert not exc_log.contexts, f"unexpected exception handler calls: {exc_log.contexts}"


def run(loop, coro, timeout=30.0):
    """Run a coroutine with a hang guard (a failing test must not hang)."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))
