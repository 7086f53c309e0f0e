"""bgloop.Loop: an asyncio event loop whose scheduling core is libbgloop.

The class keeps asyncio's own selector-loop machinery (transports, streams,
servers, SSL, subprocesses, signals, sendfile, executors) and replaces what
sits underneath it: the ready queue, the timer heap, I/O polling and the
iteration step live in the C loop (bgloop._bgloop.Core).

- call_soon() queues a Handle in C; the C loop runs it.
- call_at()/call_later() arm one C timer per TimerHandle; cancel() disarms it
  (the core finds the timer by handle).
- The handles are bgloop._bgloop.Handle/TimerHandle: C types with asyncio's
  API, repr and debug messages, which the C loop runs without attribute
  look-ups; like uvloop's, they are not subclasses of asyncio's (see
  src/handle.h).  BGLOOP_PY_HANDLES=1 gives asyncio's own classes instead.
- The selector asyncio talks to (_Selector) is a registry of C fd watchers
  whose callbacks run the reader/writer Handles directly.
- call_soon_threadsafe() goes through libbgloop's thread-safe queue, which
  wakes a blocked iteration at once.
- _run_once() is one C iteration; kick() is a bounded step from outside.
- On Windows the C loop watches sockets only (no pipes, subprocesses or
  signal handlers): bgloop.windows says so in the errors.

`loop._ready` and `loop._scheduled` are small stand-ins for the deque and
heap asyncio keeps there, for code that looks at them (len(), append()).
"""
from __future__ import annotations

import asyncio
import logging
import selectors
import sys
import threading
from asyncio import base_events, events
from collections.abc import Mapping
from typing import Callable, Optional

from . import _bgloop, config, transports
from .windows import loop_bases as _loop_bases

__all__ = ["Loop", "new_event_loop", "add_busy_check", "remove_busy_check"]

logger = logging.getLogger("bgloop.loop")

_ThreadSafeHandle = getattr(events, "_ThreadSafeHandle", events.Handle)
# Frames of a call_soon_threadsafe() handle's debug traceback that are not the
# caller's: this method, and _ThreadSafeHandle.__init__ where it is a class of
# its own (Handle.__init__ records from its caller's frame).
_THREADSAFE_OWN_FRAMES = 1 if _ThreadSafeHandle is events.Handle else 2


def add_busy_check(check: Callable[["Loop"], bool]) -> None:
    """Loop.add_busy_check() on the shared loop (``bgloop.ensure_loop()``)."""
    from .shared import ensure_loop

    ensure_loop().add_busy_check(check)


def remove_busy_check(check: Callable[["Loop"], bool]) -> bool:
    """Loop.remove_busy_check() on the shared loop."""
    from .shared import ensure_loop

    return ensure_loop().remove_busy_check(check)


class _Ready:
    """Stands in for asyncio's `_ready` deque; the queue is in C."""

    __slots__ = ("_core",)

    def __init__(self, core):
        self._core = core

    def append(self, handle):
        self._core.call_soon(handle)

    def __len__(self):
        return self._core.queued

    def __bool__(self):
        return self._core.queued > 0

    def clear(self):
        # asyncio's close() clears the queue; the C loop drops (and
        # releases) whatever is still queued when the core is closed.
        pass


class _Scheduled:
    """Stands in for asyncio's `_scheduled` heap; the timers are in C."""

    __slots__ = ("_core",)

    def __init__(self, core):
        self._core = core

    def __len__(self):
        return self._core.armed

    def __bool__(self):
        return self._core.armed > 0

    def clear(self):
        self._core.clear_timers()


def _fileobj_to_fd(fileobj) -> int:
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class _KeyMap(Mapping):
    """get_map() of _Selector: keyed like selectors' own map, by fd or by
    file object (asyncio 3.13 calls get_map().get(sock))."""

    __slots__ = ("_sel", "_keys")

    def __init__(self, sel):
        self._sel = sel
        self._keys = sel._keys

    def get(self, fileobj, default=None):
        if fileobj.__class__ is int:  # the hot path: asyncio passes fds
            return self._keys.get(fileobj, default)
        try:
            return self[fileobj]
        except KeyError:
            return default

    def __getitem__(self, fileobj):
        try:
            return self._keys[self._sel._lookup(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)


class _Selector(selectors.BaseSelector):
    """The selector asyncio's selector loop talks to: a registry of C fd
    watchers.  register/modify/unregister/get_key/get_map behave as in
    selectors; select() is never used (the C loop polls)."""

    def __init__(self, core):
        self._core = core
        self._keys: dict = {}
        self._watchers: dict = {}
        self._map = _KeyMap(self)

    def _lookup(self, fileobj) -> int:
        try:
            return _fileobj_to_fd(fileobj)
        except ValueError:
            # A closed file object may still be registered: find it.
            for key in self._keys.values():
                if key.fileobj is fileobj:
                    return key.fd
            raise

    @staticmethod
    def _check_events(events):
        if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")

    def register(self, fileobj, events, data=None):
        self._check_events(events)
        fd = self._lookup(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._watchers[fd] = self._core.watch(fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj):
        fd = self._lookup(fileobj)
        try:
            key = self._keys.pop(fd)
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        self._watchers.pop(fd).close()
        return key

    def modify(self, fileobj, events, data=None):
        fd = self._lookup(fileobj)
        try:
            key = self._keys[fd]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        self._check_events(events)
        self._watchers[fd].modify(events, data)
        key = key._replace(events=events, data=data)
        self._keys[fd] = key
        return key

    def select(self, timeout=None):
        raise RuntimeError("bgloop's selector is polled by the C loop; select() is not available")

    def get_key(self, fileobj):
        try:
            return self._keys[self._lookup(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def get_map(self) -> Mapping:
        return self._map

    def close(self):
        for w in self._watchers.values():
            w.close()
        self._watchers.clear()
        self._keys.clear()


_HAS_RUN_FOREVER_SETUP = hasattr(base_events.BaseEventLoop, "_run_forever_setup")


class Loop(*_loop_bases(), asyncio.SelectorEventLoop):
    """An asyncio event loop on libbgloop.  Use it like any asyncio loop
    (run_until_complete, run_forever, bgloop.run), or step it from a host
    with kick()."""

    def __init__(self):
        self._core = _bgloop.Core()
        super().__init__(selector=_Selector(self._core))
        self._core.bind(self)
        self._ready = _Ready(self._core)
        self._scheduled = _Scheduled(self._core)
        # Callables f(loop) -> bool telling kick() that something other than
        # tasks still needs the loop (the service manager registers one).
        self._bgl_busy_checks: list = []
        # Tasks some busy check already accounts for (the service manager's
        # registry: it leaves out the tasks a stop abandoned), or None.
        self._bgl_accounted: Optional[Callable[[], list]] = None
        try:
            self._core.slow_callback_duration = config.slow_callback()
            self._bgl_c_transports = transports.AVAILABLE and not config.py_transports()
            self._bgl_c_handles = not config.py_handles()
            if self._bgl_c_handles:
                # call_soon() calls the C method with no Python frame in
                # between (a C Handle's debug traceback then ends with
                # call_soon's frame, which call_soon() drops).
                self._call_soon = self._core.soon
        except BaseException:
            self.close()  # a bad BGLOOP_* value: leave nothing open behind
            raise
        self._bgl_bind_c_methods()

    def _bgl_bind_c_methods(self):
        # The hottest methods in C (loop_fast.c), bound as instance
        # attributes where the class has asyncio's (or bgloop's) own:
        # kick(), _run_once(), create_future(), get_debug(), and call_soon(),
        # call_later() and call_at() while debug mode is off and the handles
        # are C ones (debug mode's checks and tracebacks stay asyncio's).
        # call_later() in C reads time.monotonic() and arms the timer
        # itself: only while time() and call_at() are the stock ones.
        cls, core = type(self), self._core
        c_handles = self._bgl_c_handles and not self._debug
        base = base_events.BaseEventLoop
        fast = {
            "kick": (Loop.kick, core.loop_kick, True),
            "_run_once": (Loop._run_once, core.loop_run_once, True),
            "create_future": (base.create_future, core.loop_create_future, True),
            "get_debug": (base.get_debug, core.loop_get_debug, True),
            "call_soon": (base.call_soon, core.loop_call_soon, c_handles),
            "call_later": (Loop.call_later, core.loop_call_later,
                           c_handles and cls.time is base.time and cls.call_at is Loop.call_at),
            "call_at": (Loop.call_at, core.loop_call_at, c_handles),
        }
        for name, (own, c_method, wanted) in fast.items():
            if wanted and getattr(cls, name) is own:
                setattr(self, name, c_method)
            else:
                self.__dict__.pop(name, None)

    # ---- scheduling -------------------------------------------------------

    def _call_soon(self, callback, args, context):
        # asyncio's Handles (BGLOOP_PY_HANDLES=1); by default __init__ puts
        # Core.soon (C handles) in this method's place.
        handle = events.Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        self._core.call_soon(handle)
        return handle

    def call_soon_threadsafe(self, callback, *args, context=None):
        self._check_closed()
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        if self._bgl_c_handles:
            handle = self._core.soon_threadsafe(callback, args, context)
            if handle._source_traceback:
                del handle._source_traceback[-1]
            return handle
        handle = _ThreadSafeHandle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-_THREADSAFE_OWN_FRAMES:]
        self._core.call_threadsafe(handle)
        return handle

    def call_later(self, delay, callback, *args, context=None):
        # The loop's own call_later() is loop_call_later (C); this one runs
        # for a subclass with its own time() or call_at(), in debug mode and
        # with asyncio's handles (BGLOOP_PY_HANDLES=1).
        if delay is None:
            raise TypeError("delay must not be None")
        timer = self.call_at(self.time() + delay, callback, *args, context=context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        return timer

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        if self._bgl_c_handles:
            timer = self._core.at(when, callback, args, context)
            if timer._source_traceback:
                del timer._source_traceback[-1]
            return timer
        timer = events.TimerHandle(when, callback, args, self, context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        self._core.call_at(when, timer)
        timer._scheduled = True
        return timer

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        # TCP and Unix stream sockets get the C transport (transports.py);
        # BGLOOP_PY_TRANSPORTS=1 keeps asyncio's.
        if not self._bgl_c_transports:
            return super()._make_socket_transport(
                sock, protocol, waiter, extra=extra, server=server
            )
        self._ensure_fd_no_transport(sock)
        return transports.make(self, sock, protocol, waiter, extra, server)

    def _timer_handle_cancelled(self, handle):
        self._core.cancel_timer(handle)
        handle._scheduled = False

    def _run_once(self):
        self._core.run_once(not self._stopping)

    def stop(self):
        super().stop()
        self._core.stop()

    def close(self):
        if self._core.busy:
            # A kick() may be waiting in another thread (the loop is not
            # "running" for asyncio until it wakes up).
            raise RuntimeError("Cannot close a running event loop")
        super().close()
        # A C transport still open holds itself through its fd watcher (as
        # asyncio's selector holds its callbacks): drop that with the loop.
        if getattr(self, "_bgl_c_transports", False):
            for transport in list(self._transports.values()):
                if isinstance(transport, transports.SocketTransport):
                    transport._release()
        # Selector and timers are gone by now; free the C loop itself.
        self._core.close()

    # ---- debug and statistics --------------------------------------------

    def set_debug(self, enabled):
        super().set_debug(enabled)
        self._core.debug = bool(enabled)
        if hasattr(self, "_bgl_c_handles"):  # not while __init__ runs
            self._bgl_bind_c_methods()

    def _bgl_run_debug(self, handle):
        # Debug mode: what asyncio's _run_once does around each callback.
        self._current_handle = handle
        try:
            t0 = self.time()
            handle._run()
            dt = self.time() - t0
            if dt >= self.slow_callback_duration:
                base_events.logger.warning(
                    "Executing %s took %.3f seconds", base_events._format_handle(handle), dt
                )
        finally:
            self._current_handle = None

    def _bgl_slow(self, handle, seconds):
        # BGLOOP_SLOW_CALLBACK's report (debug mode off only).
        logger.warning(
            "slow callback: %s took %.3f seconds", base_events._format_handle(handle), seconds
        )

    def stats(self) -> dict:
        """Counters of this loop: iterations, callbacks (Python callbacks
        run), longest_callback and loop_lag/loop_lag_max (seconds; how late
        timers ran), plus kicks, idle_kicks, waits, budget_exhausted,
        io_watchers, timers and queued."""
        return self._core.stats()

    # ---- kick ---------------------------------------------------------------

    def kick(self, timeout: Optional[float] = 0.0, budget: Optional[float] = None) -> bool:
        """One step of the loop from outside it.

        Waits up to `timeout` seconds (None: until something happens) for
        I/O, a timer or a thread-safe call; if nothing became ready it
        returns at once, having run no Python code.  Otherwise it runs the
        ready callbacks, iteration after iteration (without blocking) while
        more become ready, until nothing is ready, loop.stop() is called, or
        `budget` seconds (None: no limit) are spent; the rest stays queued,
        in order, for the next kick.  Only the time spent running callbacks
        counts against the budget, measured on the loop's monotonic clock;
        the wait does not count.  The budget is checked after each callback,
        so at least one runs (budget=0 runs exactly one).  E.g. callbacks of
        20 ms that each queue the next, the first one due after a 100 ms
        wait, budget=0.05: three run (40 ms < 50 ms <= 60 ms).

        Returns True when nothing is left: no pending task, no queued
        callback and no registered busy check (services) reporting work."""
        return self._core.loop_kick(timeout, budget)

    def _nothing_left(self) -> bool:
        if self._core.queued:
            return False
        tasks = asyncio.all_tasks(self)
        if tasks and self._bgl_accounted is not None:
            tasks.difference_update(self._bgl_accounted())
        if tasks:
            return False
        for check in list(self._bgl_busy_checks):
            try:
                if check(self):
                    return False
            except Exception as exc:  # noqa: BLE001 - reported, then dropped
                # A check that fails once would fail every later kick: it is
                # reported to the exception handler and removed.
                self.remove_busy_check(check)
                self.call_exception_handler({
                    "message": f"busy check {check!r} raised; it was removed",
                    "exception": exc,
                    "loop": self,
                })
        return True

    def add_busy_check(self, check: Callable[["Loop"], bool]) -> None:
        """Register ``check(loop) -> bool``: kick() reports work left while
        any registered check returns True (e.g. a service starting or
        stopping).  A check that raises is reported to the loop's exception
        handler and removed.  Adding the same check twice is harmless."""
        if not callable(check):
            raise TypeError(f"add_busy_check() needs a callable, not {type(check).__name__}")
        if check not in self._bgl_busy_checks:
            self._bgl_busy_checks.append(check)
            self._core.forget_left()  # the last answer did not ask it

    def remove_busy_check(self, check: Callable[["Loop"], bool]) -> bool:
        """Unregister a check; False if it was not registered."""
        try:
            self._bgl_busy_checks.remove(check)
        except ValueError:
            return False
        self._core.forget_left()
        return True

    def _bgl_kick_enter(self):
        if _HAS_RUN_FOREVER_SETUP:
            self._run_forever_setup()
            return
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        self._old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
        )
        events._set_running_loop(self)

    def _bgl_kick_exit(self):
        if _HAS_RUN_FOREVER_SETUP:
            self._run_forever_cleanup()
            return
        self._stopping = False
        self._thread_id = None
        events._set_running_loop(None)
        self._set_coroutine_origin_tracking(False)
        if self._old_agen_hooks is not None:
            sys.set_asyncgen_hooks(*self._old_agen_hooks)
            self._old_agen_hooks = None


def new_event_loop() -> Loop:
    """A new bgloop.Loop (not set as the current loop)."""
    return Loop()
