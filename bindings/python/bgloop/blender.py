"""Blender integration: one loop driver per process, file-load events.

Imported only inside Blender (``bpy`` importable); ``bgloop.ensure_loop()``
calls :func:`_maybe_install_driver` for you, so an add-on needs nothing from
this module to get its services running::

    def register():
        bgloop.ensure_loop()
        bgloop.start_services(owner=__package__)

    def unregister():
        bgloop.stop_services(owner=__package__)

What it does, and why:

* **One driver per process.**  In the GUI, a single persistent
  ``bpy.app.timers`` callback kicks the shared loop: ``kick(0, budget)``
  runs what is ready for at most ``budget`` seconds (default 2 ms,
  ``BGLOOP_KICK_BUDGET`` or :func:`configure`), then returns its interval,
  so Blender's UI keeps its cadence however busy the services are.  The
  callback never raises (Blender would silently drop it) and survives file
  loads.  There is no driver in ``blender --background`` or the ``bpy``
  module: their timers never fire; :func:`bgloop.serve` runs the loop there.
* **Shared across copies.**  Add-ons may vendor their own copy of bgloop.
  One :class:`Registry` object, stored as ``sys.modules["_bgloop_process"]``
  and versioned by its ``protocol`` attribute (:data:`PROTOCOL`), holds the
  process-wide state.  It remembers the first copy imported; every later
  copy hands its importer that first package instead of itself, so all
  add-ons share one loop, one service registry and one driver.  A copy
  speaking another protocol refuses loudly (:class:`ClashError`, naming
  both copies) instead of starting a second driver.
* **Quitting.**  When Blender quits (GUI or ``--background``) services
  still up are stopped as ``bgloop.stop_services()`` stops them - bounded
  by the service manager's bound on the stop, whatever they do - from an
  ``atexit`` handler, which logs what it had to abandon.
* **File loads.**  Persistent ``load_pre``/``load_post`` handlers call
  :func:`subscribe`'d callbacks, so services can drop references to data of
  the old file.  ``ctx.resources.push(bgloop.blender.subscribe(...))``
  unsubscribes when the service ends.

Worker threads must not call ``bpy`` nor ``bpy.app.timers.register``; they
hand work to the main thread with :func:`bgloop.run_on_main`.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
import threading
import time
import types
from typing import TYPE_CHECKING, Any, Callable

import bpy

from . import config
from . import log as _log

if TYPE_CHECKING:
    from .loop import Loop

__all__ = ["PROTOCOL", "ClashError", "Registry", "configure", "info", "subscribe",
           "shared_loop", "EVENTS"]

log = logging.getLogger("bgloop.blender")

#: Version of the :class:`Registry` layout (its attributes and what they
#: mean); copies with another value do not mix.  Bump it on any change.
PROTOCOL = 2
_REGISTRY = "_bgloop_process"
EVENTS = ("load_pre", "load_post")

DEFAULT_INTERVAL = 0.005    # Blender's WM loop sleeps about this long when idle
_ERROR_LOG_EVERY = 100      # after the first few, log 1 of N repeated driver errors


class ClashError(RuntimeError):
    """Another bgloop copy in this process cannot share its loop/driver."""


@dataclasses.dataclass(eq=False, slots=True)
class Registry:
    """Process-wide state shared by every bgloop copy in a Blender process.

    The first copy that asks creates it; the others reach the same instance
    through ``sys.modules`` - an instance of *that* copy's class, not of
    their own, so copies never test ``isinstance`` and never call methods on
    it: it is plain data, read and written by each copy's module functions,
    and ``protocol`` says which attributes it has.
    """

    origin: str                             # copy that created it, for messages
    protocol: int = PROTOCOL
    lock: threading.RLock = dataclasses.field(default_factory=threading.RLock, repr=False)
    package: types.ModuleType | None = None  # the first bgloop: all copies use it
    package_origin: str | None = None
    loop: Loop | None = None                # the shared loop
    loop_origin: str | None = None          # copy that created it
    driver: Callable[[], float | None] | None = None    # the registered timer callback
    # Seconds of callbacks per driver tick, None: no limit.  Until
    # budget_decided, BGLOOP_KICK_BUDGET (read when the driver is installed)
    # applies; configure() decides it for good.
    budget: float | None = None
    budget_decided: bool = False
    interval: float = DEFAULT_INTERVAL  # seconds between driver ticks
    ticks: int = 0
    busy: float = 0.0                   # seconds spent kicking, total
    longest_tick: float = 0.0           # longest single kick (budget + one callback)
    errors: int = 0
    last_error: str | None = None
    subscribers: dict[str, list[Subscription]] = dataclasses.field(
        default_factory=lambda: {event: [] for event in EVENTS})
    handlers: dict[str, Callable[..., None]] = dataclasses.field(
        default_factory=dict)           # event -> persistent bpy.app.handlers function


def _origin() -> str:
    """Which copy of bgloop this is, for messages: package and file."""
    package = __name__.rpartition(".")[0] or __name__
    return f"{package} ({os.path.dirname(__file__)})"


def _registry() -> Registry:
    """The process-wide registry, created by the first copy that asks;
    :class:`ClashError` if a copy of another protocol created it."""
    reg = sys.modules.get(_REGISTRY)
    if reg is None:
        # setdefault: two threads importing bgloop at once still share one.
        reg = sys.modules.setdefault(_REGISTRY, Registry(origin=_origin()))
    protocol = getattr(reg, "protocol", None)
    if protocol != PROTOCOL:
        raise ClashError(
            f"bgloop: {_origin()} speaks registry protocol {PROTOCOL}, but "
            f"{getattr(reg, 'origin', '?')} already set up this Blender process with "
            f"protocol {protocol if protocol is not None else '?'}; two drivers would "
            f"fight over Blender's main thread.  Use one bgloop version in all add-ons.")
    return reg


def _current() -> Registry | None:
    """The registry if one of this protocol exists (never creates one):
    for callbacks that must not raise."""
    reg = sys.modules.get(_REGISTRY)
    return reg if getattr(reg, "protocol", None) == PROTOCOL else None


def _adopt_package(name: str):
    """Called at the end of ``bgloop/__init__`` inside Blender.

    The first copy of bgloop imported in this process becomes *the* bgloop:
    every later copy (vendored by another add-on, or a re-import) replaces
    itself in ``sys.modules`` with it, so its importer gets the first copy -
    one loop, one service registry, one driver.  A copy speaking another
    :data:`PROTOCOL` raises :class:`ClashError` instead (its add-on fails to
    enable with that message) rather than run a second driver."""
    me = sys.modules[name]
    reg = _registry()           # raises ClashError on a protocol mismatch
    with reg.lock:
        if reg.package is None:
            reg.package = me
            reg.package_origin = _origin()
        first = reg.package
    if first is not me:
        log.debug("bgloop: %s joins %s", _origin(), reg.package_origin)
        sys.modules[name] = first
    return first


def shared_loop() -> Loop | None:
    """The loop some copy of bgloop already shares in this process, or None.

    ``ensure_loop()`` adopts it, so vendored copies end up on one loop."""
    loop = _registry().loop
    if loop is not None and loop.is_closed():
        return None
    return loop


def _seconds(name: str, value: Any, alternative: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds{alternative}, not "
                        f"{type(value).__name__}")
    return float(value)


def configure(*, budget: float | None = ..., interval: float | None = None) -> None:
    """Change the driver's per-tick ``budget`` (seconds; None: no limit)
    and/or its ``interval`` (seconds between ticks).  Applies to the one
    process-wide driver, whichever add-on asks; a budget set here wins over
    ``BGLOOP_KICK_BUDGET``."""
    if budget is not ... and budget is not None:
        budget = _seconds("budget", budget, " or None")
        if not budget > 0:
            raise ValueError(f"budget must be > 0 seconds, got {budget!r}")
    if interval is not None:
        interval = _seconds("interval", interval)
        if not 0 <= interval <= 1.0:
            raise ValueError(f"interval must be within [0, 1] seconds, got {interval!r}")
    reg = _registry()
    with reg.lock:
        if budget is not ...:
            reg.budget = budget
            reg.budget_decided = True
        if interval is not None:
            reg.interval = interval


def _driver() -> float | None:
    """The bpy.app.timers callback: one bounded kick, never an exception."""
    reg = _current()
    if reg is None:
        return None
    try:
        loop = reg.loop
        if loop is None or loop.is_closed():
            # Nothing to drive; ensure_loop() installs the driver again.
            reg.driver = None
            return None
        if not loop.is_running():           # e.g. stop_services() driving it
            t0 = time.perf_counter()
            loop.kick(0.0, reg.budget)
            spent = time.perf_counter() - t0
            reg.busy += spent
            reg.longest_tick = max(reg.longest_tick, spent)
        reg.ticks += 1
    except BaseException as exc:            # noqa: BLE001 - raising would unregister us
        reg.errors += 1
        reg.last_error = f"{type(exc).__name__}: {exc}"
        if reg.errors <= 3 or reg.errors % _ERROR_LOG_EVERY == 0:
            log.error("bgloop driver tick failed (%d so far)", reg.errors, exc_info=True)
    return reg.interval


def _timers_usable() -> bool:
    # No window-manager loop: timers never fire (blender -b, bpy module).
    return not bpy.app.background


def _maybe_install_driver(loop: Loop) -> None:
    """Called by ``ensure_loop()`` with the loop it returns.

    Records the loop process-wide, installs the load handlers and - in a
    GUI Blender - the one driver.  Idempotent and cheap on repeat calls.
    Off the main thread it does nothing: bpy.app.timers and bpy.app.handlers
    are not thread-safe, and the main thread's own ensure_loop() call (every
    add-on's register() makes one) installs them."""
    if threading.current_thread() is not threading.main_thread():
        return
    reg = _registry()
    with reg.lock:
        if reg.package is None:
            # bgloop was imported before bpy (bpy as a module): record it now.
            reg.package = sys.modules.get(__name__.rpartition(".")[0])
            reg.package_origin = _origin()
        if reg.loop is not None and reg.loop is not loop and not reg.loop.is_closed():
            raise ClashError(
                f"bgloop: {_origin()} tried to drive its own loop {loop!r}, but "
                f"{reg.loop_origin} already drives {reg.loop!r} in this Blender process; "
                f"call bgloop.ensure_loop() (it adopts the shared loop) instead of "
                f"creating a second one")
        if reg.loop is not loop:
            reg.loop = loop
            reg.loop_origin = _origin()
        _install_handlers(reg)
        # Blender configures no logging: bgloop's own lines go to stderr.
        _log.setup()
        # Once per process: the same function is registered again at most.
        atexit.unregister(_on_exit)
        atexit.register(_on_exit)
        if not _timers_usable():
            return
        if not reg.budget_decided:
            reg.budget = config.kick_budget()
            reg.budget_decided = True
        if driver_installed():
            return
        reg.driver = _driver
        bpy.app.timers.register(_driver, first_interval=0.0, persistent=True)
        log.debug("bgloop driver installed by %s (budget %s s, interval %s s)",
                  _origin(), reg.budget, reg.interval)


def _on_exit() -> None:
    """Blender quits: stop what is still up, bounded, on the main thread
    (the one the loop belongs to), unless serve() was cut short by a second
    signal already."""
    from . import services

    mgr = services.manager(create=False)
    if mgr is None or mgr.loop.is_closed() or mgr.forced or mgr.c.nothing_left():
        return
    if mgr.loop.is_running() or mgr._other_thread():
        log.warning("bgloop: Blender quits while the loop runs elsewhere; services not stopped")
        return
    try:
        log.info("bgloop: Blender quits, stopping services")
        mgr.stop()
    except Exception:                       # noqa: BLE001 - Blender is on its way out
        log.exception("bgloop: stopping services at exit failed")


def driver_installed() -> bool:
    reg = _current()
    return bool(reg is not None and reg.driver is not None
                and bpy.app.timers.is_registered(reg.driver))


def _release_at_exit() -> None:
    """Take bgloop's timer and handlers out of bpy before Python exits.

    bpy 4.2 and 4.5 as a module free whatever is still registered in C exit
    handlers that run after Python is gone: 4.2 crashes (SIGSEGV), 4.5 hangs.
    Registered below, after ``import bpy``, so it runs before bpy's own
    atexit hook."""
    reg = _current()
    if reg is None:
        return
    if reg.driver is not None and bpy.app.timers.is_registered(reg.driver):
        bpy.app.timers.unregister(reg.driver)
    for event, fn in reg.handlers.items():
        chain = getattr(bpy.app.handlers, event)
        while fn in chain:
            chain.remove(fn)


atexit.register(_release_at_exit)


# ---- load_pre / load_post --------------------------------------------------

def _dispatch(event: str, args: tuple) -> None:
    reg = _current()
    if reg is None:
        return
    for sub in list(reg.subscribers[event]):
        try:
            result = sub.callback(*args)
            if hasattr(result, "__await__"):
                loop = reg.loop
                if loop is not None and not loop.is_closed():
                    loop.create_task(result)
                else:
                    result.close()
        except Exception:                   # one subscriber must not break the others
            log.exception("bgloop %s subscriber %r failed", event, sub.callback)


def _make_handler(event: str) -> Callable:
    def handler(*args):
        _dispatch(event, args)
    handler.__name__ = f"bgloop_{event}"
    return bpy.app.handlers.persistent(handler)


def _install_handlers(reg: Registry) -> None:
    for event in EVENTS:
        fn = reg.handlers.get(event)
        if fn is None:
            fn = reg.handlers[event] = _make_handler(event)
        chain = getattr(bpy.app.handlers, event)
        if not any(h is fn for h in chain):
            chain.append(fn)


class Subscription:
    """Returned by :func:`subscribe`; ``close()`` (or calling it) ends it."""

    __slots__ = ("event", "callback", "owner")

    def __init__(self, event: str, callback: Callable, owner: str | None):
        self.event = event
        self.callback = callback
        self.owner = owner

    def close(self) -> None:
        reg = _current()
        if reg is not None and self in reg.subscribers[self.event]:
            reg.subscribers[self.event].remove(self)

    __call__ = close

    def __repr__(self) -> str:
        return f"<bgloop.blender.Subscription {self.event} {self.callback!r}>"


def subscribe(event: str, callback: Callable[..., Any], *,
              owner: str | None = None) -> Subscription:
    """Call ``callback(*handler_args)`` on every ``load_pre``/``load_post``.

    It runs on the main thread inside Blender's handler (so it can drop bpy
    references before they dangle); a coroutine it returns runs as a task on
    the shared loop.  Returns a :class:`Subscription`; push it onto a
    service's ``ctx.resources`` to unsubscribe when the service ends."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
    if not callable(callback):
        raise TypeError(f"callback must be callable, not {type(callback).__name__}")
    reg = _registry()
    with reg.lock:
        _install_handlers(reg)
        sub = Subscription(event, callback, owner)
        reg.subscribers[event].append(sub)
    return sub


def info() -> dict:
    """Process-wide driver state, for panels and tests.  ``budget`` is None
    both for "no limit" and, with ``budget_decided`` False, for "not decided
    yet" (no driver installed, no :func:`configure` call)."""
    reg = _registry()
    return {
        "protocol": reg.protocol,
        "origin": reg.origin,
        "loop_origin": reg.loop_origin,
        "driver_installed": driver_installed(),
        "background": bpy.app.background,
        "budget": reg.budget,
        "budget_decided": reg.budget_decided,
        "interval": reg.interval,
        "ticks": reg.ticks,
        "busy": reg.busy,
        "longest_tick": reg.longest_tick,
        "errors": reg.errors,
        "last_error": reg.last_error,
        "subscribers": {e: len(s) for e, s in reg.subscribers.items()},
        "time": time.monotonic(),
    }
