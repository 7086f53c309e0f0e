"""Helpers shared by the services tests: drive the shared loop the way a
host (Blender's timer, serve()) does - one kick at a time - and clean up."""

from __future__ import annotations

import asyncio
import time

import bgloop
import pytest

# A bound against hangs only, never a timing assertion: tests finish in
# milliseconds; this just turns a bug into a failure instead of a stuck run.
HANG_GUARD = 20.0


def drive(until, guard: float = HANG_GUARD) -> None:
    """Kick the shared loop until ``until()`` is true."""
    loop = bgloop.ensure_loop()
    end = time.monotonic() + guard
    while not until():
        if time.monotonic() > end:
            raise AssertionError(f"loop did not reach the expected state within {guard} s: "
                                 f"{bgloop.status()}")
        loop.kick(timeout=0.05)


def run(coro):
    """Run a coroutine to completion on the shared loop (kick by kick)."""
    loop = bgloop.ensure_loop()
    task = loop.create_task(coro)
    drive(task.done)
    return task.result()


def state(name: str) -> str:
    return bgloop.status()[name]["state"]


def settle(n: int = 5) -> None:
    """A few non-blocking kicks: let queued work run."""
    loop = bgloop.ensure_loop()
    for _ in range(n):
        loop.kick(timeout=0)


@pytest.fixture
def clean():
    """Every test starts and ends with no services registered."""
    bgloop.stop_services()
    bgloop.forget_services()
    yield
    bgloop.stop_services()
    bgloop.forget_services()
    loop = bgloop.ensure_loop()
    # Nothing a service created may outlive the stop.
    left = [t for t in asyncio.all_tasks(loop) if "bgloop.service" in t.get_name()]
    assert not left, left
