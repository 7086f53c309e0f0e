"""Fixtures for bgloop's own loop tests (uvloop's pattern): each test body is
written once and runs against the stock asyncio loop and bgloop.Loop, and a
test fails on any unexpected call to the loop's exception handler."""
import asyncio
import os
import selectors

import pytest

import bgloop

CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "certs")

FACTORIES = {
    "asyncio": lambda: asyncio.SelectorEventLoop(selectors.EpollSelector()),
    "bgloop": bgloop.Loop,
}


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
