"""``run_on_main``: hand work from any thread to the thread running the loop.

Inside Blender that is the main thread (the driver kicks the loop there, and
``serve()`` runs on it), so a worker thread can reach ``bpy`` safely::

    fut = bgloop.run_on_main(bpy.data.objects.new, "Empty", None)
    obj = fut.result(timeout=5)

The call travels through ``loop.call_soon_threadsafe`` - which wakes a
blocked kick/serve at once - and never through ``bpy.app.timers.register``,
which is not safe off the main thread.  Do not block on the future from the
loop's own thread: the call can only run after you return.
"""

from __future__ import annotations

import concurrent.futures
import sys
from typing import Any, Callable, TypeVar

__all__ = ["run_on_main"]

T = TypeVar("T")


def _target_loop():
    # Inside Blender: the loop every bgloop copy shares, read through the
    # versioned registry - without ensure_loop(), which may install the GUI
    # driver and so must not run on a worker thread.
    if "bpy" in sys.modules:
        from . import blender
        loop = blender.shared_loop()
        if loop is not None:
            return loop
    from . import ensure_loop
    return ensure_loop()


def run_on_main(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> "concurrent.futures.Future[T]":
    """Schedule ``fn(*args, **kwargs)`` on the shared loop's thread; return a
    :class:`concurrent.futures.Future` with its result or exception.
    Cancelling the future before the call starts skips the call."""
    if not callable(fn):
        raise TypeError(f"run_on_main() needs a callable, not {type(fn).__name__}")
    loop = _target_loop()
    future: concurrent.futures.Future = concurrent.futures.Future()

    def call() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:        # noqa: BLE001 - delivered to the waiter
            future.set_exception(exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            future.set_result(result)

    loop.call_soon_threadsafe(call)
    return future
