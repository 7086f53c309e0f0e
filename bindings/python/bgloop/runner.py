"""bgloop.run(): asyncio.run() on a bgloop.Loop."""
from __future__ import annotations

import asyncio
import sys
from asyncio import coroutines, events
from typing import Any, Coroutine, Optional, TypeVar

from .loop import new_event_loop

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], *, debug: Optional[bool] = None) -> T:
    """Run coroutine `main` on a new bgloop.Loop and close it, exactly as
    asyncio.run() does: cancel left-over tasks, finish async generators, shut
    the default executor down."""
    if events._get_running_loop() is not None:
        raise RuntimeError("bgloop.run() cannot be called from a running event loop")
    if not coroutines.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    if sys.version_info >= (3, 11):
        # Runner also gives asyncio.run()'s Ctrl+C handling.
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return _run_310(main, debug)


def _run_310(main, debug):
    # Python 3.10's asyncio.run() has no loop factory: the same steps here.
    loop = new_event_loop()
    try:
        events.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            events.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop):
    to_cancel = asyncio.all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*to_cancel, return_exceptions=True))
    for task in to_cancel:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler({
                "message": "unhandled exception during bgloop.run() shutdown",
                "exception": task.exception(),
                "task": task,
            })
