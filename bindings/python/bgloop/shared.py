"""The process-wide shared loop: ensure_loop(), kick(), stats().

A host that owns the process (Blender's UI, a GUI toolkit) does not run an
asyncio loop forever; it calls kick() now and then (e.g. from a timer) and
the shared loop does whatever became due.  Between kicks the loop is not
running, so other code may still use asyncio.run(); during a kick
asyncio.get_running_loop() returns it.
"""
from __future__ import annotations

import sys
import threading
from typing import Optional

from .loop import Loop

__all__ = ["ensure_loop", "kick", "stats"]

_lock = threading.Lock()
_shared: Optional[Loop] = None


def ensure_loop() -> Loop:
    """The shared bgloop.Loop: created on first call, the same object
    afterwards.  It never touches loops it did not create (it is not set as
    asyncio's current loop); if the shared loop was closed, a new one
    replaces it.  Inside Blender the loop is shared with other copies of
    bgloop (vendored by other add-ons) and driven by a GUI timer."""
    loop = _shared
    if loop is None or loop.is_closed():
        loop = _create()
    if "bpy" in sys.modules:
        from . import blender

        blender._maybe_install_driver(loop)
    return loop


def _create() -> Loop:
    global _shared
    with _lock:
        if _shared is None or _shared.is_closed():
            loop = None
            if "bpy" in sys.modules:
                from . import blender

                loop = blender.shared_loop()
            _shared = loop if loop is not None and not loop.is_closed() else Loop()
        return _shared


def kick(timeout: Optional[float] = 0.0, budget: Optional[float] = None) -> bool:
    """One step of the shared loop.

    Waits up to `timeout` seconds (None: until something happens) for I/O, a
    timer or a thread-safe call, returning as soon as one is due; an idle
    kick (nothing became ready) runs no Python code.  Then runs ready
    callbacks, and keeps iterating without blocking while more become ready,
    until nothing is ready or `budget` seconds (None: no limit) are spent -
    the rest stays queued, in order, for the next kick.  Only time spent
    running callbacks counts against the budget, measured on the loop's
    monotonic clock; the wait does not count.  At least one callback runs.
    Returns True when nothing is left: no pending task, no queued callback,
    no service starting, running or stopping.  RuntimeError if the loop is
    already running, or belongs to another thread (the first thread that
    runs a loop owns it); ValueError/TypeError for a negative or non-numeric
    argument; KeyboardInterrupt (or whatever a Python signal handler raises)
    if a signal interrupts the wait.
    """
    loop = _shared
    if loop is None or loop._closed or "bpy" in sys.modules:
        loop = ensure_loop()
    return loop.kick(timeout, budget)


def stats() -> dict:
    """Counters of the shared loop (see bgloop.Loop.stats)."""
    return ensure_loop().stats()
