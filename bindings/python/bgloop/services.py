"""Services: long-lived coroutines with dependencies, restarts and cleanup.

::

    @bgloop.service("web", depends_on=("db",), restart="on-failure", owner="my_addon")
    async def web(ctx):
        server = ctx.resources.push(await asyncio.start_server(handle, "127.0.0.1", 8080))
        ctx.ready()                  # dependents may start now
        await ctx.stopping.wait()    # until a stop is requested

    bgloop.start_services()          # returns at once; the loop does the rest
    ...
    bgloop.stop_services()           # graceful stop, then cancel; blocks

The rules are libbgloop's service manager's (``bgloop/service.h``): states,
dependency order, readiness gating, restart policy with exponential
backoff, the start limit, stop timeout then cancel, what a stop deadline
does, the resource stacks closed LIFO when a service ends, which tasks are
cancelled when, what "failed for good" means, and every configuration
check.  This module only adapts its hooks - start runs ``fn(ctx)`` in a
task, stop sets ``ctx.stopping``, cancel cancels the task, close closes a
pushed object - and reports back readiness and how the task ended.

Every task a service creates, directly or through callbacks and other tasks,
belongs to the service (see :mod:`bgloop.tasks`): when the service ends they
are cancelled, and ``stop_services(owner)`` cancels whatever the owner's
services left behind - and nothing of other owners.
"""

from __future__ import annotations

import asyncio
import math
import concurrent.futures
import inspect
import logging
import threading
import time
from typing import Any, Awaitable, Callable, Iterable, TypeVar

from . import _bgloop
from . import channels as _channels
from . import config as _config
from . import resources as _resources
from . import tasks as _tasks
from .context import ServiceContext
from .statehooks import StateHooks

__all__ = ["ServiceError", "Manager", "manager", "service", "start_services", "stop_services",
           "stop_services_async", "status", "forget_services", "failed_for_good",
           "request_stop"]

log = logging.getLogger("bgloop.services")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

#: Seconds allowed beyond the service manager's own bound on a stop
#: (``Services.stop_bound()``) before a blocking stop gives up waiting.
STOP_MARGIN = 1.0
#: Seconds of callbacks per kick while a stop is driven from plain code, so
#: that a descriptor that stays readable cannot hold a kick forever.
STOP_SLICE = 0.05

ServiceError = _bgloop.ServiceError


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _describe_error(exc: BaseException) -> str:
    # Never raises: the text is how the end of a run reaches the manager.
    try:
        text = str(exc)
    except Exception:
        text = "<str() of the exception failed>"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _identity(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


# ---- one service --------------------------------------------------------------

class _Host:
    """The Python side of one service: its function and its current run.
    The C manager calls start/stop/cancel; the host reports back."""

    __slots__ = ("mgr", "name", "owner", "fn", "depends_on", "restart", "stop_timeout",
                 "run", "ctx", "task", "ended")

    def __init__(self, mgr: "Manager", name: str, owner: str, fn: Callable,
                 depends_on: tuple, restart: str, stop_timeout: float):
        self.mgr = mgr
        self.name = name
        self.owner = owner
        self.fn = fn
        self.depends_on = depends_on
        self.restart = restart
        self.stop_timeout = stop_timeout
        self.run = 0                  # number of the current run
        self.ctx: ServiceContext | None = None
        self.task: asyncio.Task | None = None
        self.ended = True             # the current run's end was reported

    # hooks

    def start(self) -> None:
        self.run += 1
        run = self.run
        self.ended = False
        loop = self.mgr.loop
        ctx = ServiceContext(self.name, self.owner, loop, ready=lambda: self._ready(run),
                             push=lambda obj: self._push(run, obj))
        self.ctx = ctx
        # Created in a context holding the service's scope: the task and
        # everything it starts inherit it.
        scope = _tasks.enter(_tasks.Scope(self.name, self.owner))
        coro = None
        try:
            coro = scope.run(self.fn, ctx)
            task = scope.run(loop.create_task, coro, name=f"bgloop.service:{self.name}")
        except Exception as exc:
            if coro is not None:
                coro.close()
            log.error("service %r failed to start", self.name, exc_info=exc)
            self._report(run, True, _describe_error(exc))
            return
        self.task = task
        task.add_done_callback(lambda t: self._finished(run, ctx, t))

    def stop(self) -> None:
        if self.ctx is not None:
            self.ctx.stopping.set()

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel(f"service {self.name!r}: stop timeout, cancelled")

    # reports

    def _in_loop(self) -> bool:
        # ctx.ready() or push() from a worker thread: the C manager may only
        # be touched from the loop, and only a thread-safe call wakes it.
        return _running_loop() is self.mgr.loop

    def _ready(self, run: int) -> None:
        if not self._in_loop():
            self.mgr.loop.call_soon_threadsafe(self._ready, run)
            return
        if run == self.run and not self.ended:
            self.mgr.c.ready(self.name)  # ignored if a stop came first

    def _report(self, run: int, failed: bool, error: str | None) -> None:
        if run != self.run or self.ended:
            return
        self.ended = True
        try:
            self.mgr.c.exited(self.name, failed, error)
        except BaseException:
            if run == self.run:  # not recorded: a later report may still end the run
                self.ended = False
            raise

    def _finished(self, run: int, ctx: ServiceContext, task: asyncio.Task) -> None:
        if task.cancelled():
            self._report(run, True, "cancelled while stopping" if ctx.stopping.is_set()
                         else "cancelled")
            return
        exc = task.exception()
        if exc is None:
            self._report(run, False, None)
            return
        # A BaseException (SystemExit, KeyboardInterrupt) already propagated
        # out of the loop, as asyncio does; only an Exception is logged here.
        if isinstance(exc, Exception):
            log.error("service %r failed", self.name, exc_info=exc)
        self._report(run, True, _describe_error(exc))

    def _push(self, run: int, obj: Any) -> None:
        if not self._in_loop() and run == self.run and not self.ended:
            self.mgr.loop.call_soon_threadsafe(self._push_from_thread, run, obj)
            return
        self._push_now(run, obj)

    def _push_from_thread(self, run: int, obj: Any) -> None:
        try:
            self._push_now(run, obj)
        except RuntimeError as exc:  # the run ended first: closed instead
            log.warning("%s", exc)

    def _push_now(self, run: int, obj: Any) -> None:
        if run != self.run or self.ended:
            # The run is over: nothing would close it later, so close now.
            _resources.begin_close(obj, self.mgr.loop, lambda exc: None)
            raise RuntimeError(f"service {self.name!r} has ended; "
                               f"{_resources.describe(obj)} was closed instead of pushed")
        self.mgr.c.push(self.name, obj, _resources.describe(obj))


# ---- the manager -----------------------------------------------------------------

class Manager:
    """The services of one loop: the C manager, its task registry and one
    host per service.  bgloop's module-level functions use the one on
    ``ensure_loop()``'s loop (:func:`manager`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.tasks = _tasks.Registry()
        # The thread of a serve() driving the loop, kick after kick.
        self.driver: int | None = None
        # A second signal cut serve()'s stop short: exit handlers do not
        # wait for it again.
        self.forced = False
        # bgloop.on_state_change()'s subscribers, told by _on_state().
        self.state_hooks = StateHooks()
        # bgloop.health's lag monitor while someone watches the loop.
        self.lag_monitor: Any = None
        self.c = _bgloop.Services(loop._core, self.tasks.c)
        self.c.set_hooks(start=_Host.start, stop=_Host.stop, cancel=_Host.cancel,
                         close=self._close, on_state=self._on_state)

    # hooks

    def _on_state(self, name: str, old: str, new: str) -> None:
        error = self.c.info(name)["error"] if new == "failed" or self.state_hooks else None
        if new == "failed":
            log.warning("service %r: %s -> failed: %s", name, old, error)
        else:
            log.info("service %r: %s -> %s", name, old, new)
        if self.state_hooks:
            self.state_hooks.dispatch(name, old, new, error)

    def _close(self, obj: Any, done: Callable[..., Any]) -> None:
        def finished(exc: BaseException | None) -> None:
            if exc is None:
                done()
                return
            text = _describe_error(exc)
            log.warning("closing %s failed: %s", _resources.describe(obj), text)
            done(text)

        _resources.begin_close(obj, self.loop, finished)

    def busy(self, loop: asyncio.AbstractEventLoop) -> bool:
        """For ``kick()``: True while something of this manager is active."""
        return loop is self.loop and not self.c.nothing_left()

    # registration

    def register(self, name: str, fn: Callable, *, owner: str, depends_on: Iterable[str] = (),
                 restart: str = "no", stop_timeout: float | None = None,
                 restart_delay: float | None = None, restart_max_delay: float | None = None,
                 start_limit_burst: int | None = None,
                 start_limit_interval: float | None = None) -> None:
        """Register ``fn`` as the service ``name``; None keeps the service
        manager's default."""
        try:
            old = self.c.host(name)
        except (KeyError, TypeError):
            old = None
        if old is not None and old.owner == owner and _identity(old.fn) == _identity(fn):
            # The same definition executed again: a module reload (a Blender
            # add-on re-enabled after its file changed).  Replace it, if it
            # is not in use.
            try:
                self.c.remove(name)
            except RuntimeError as exc:
                raise ServiceError(str(exc)) from None
        if not isinstance(depends_on, (str, tuple, list)):
            try:
                depends_on = tuple(depends_on)  # a generator is read once
            except TypeError:
                pass  # the manager names what it expected
        host = _Host(self, name, owner, fn, depends_on, restart, stop_timeout)
        self.c.add(name, owner, host, depends_on=depends_on, restart=restart,
                   stop_timeout=stop_timeout, restart_delay=restart_delay,
                   restart_delay_max=restart_max_delay, start_limit_burst=start_limit_burst,
                   start_limit_interval=start_limit_interval)
        if stop_timeout is not None:
            try:
                host.stop_timeout = float(stop_timeout)
            except OverflowError:  # an int beyond a float: the manager took it as no limit
                host.stop_timeout = math.inf

    def forget(self, owner: str | None = None) -> list[str]:
        names = self.c.remove_owner(owner)
        self.state_hooks.drop_owner(owner)
        _channels.release_owner(owner)
        return names

    def host(self, name: str) -> _Host:
        return self.c.host(name)

    def report(self, name: str) -> dict:
        return self.c.report(name)

    # start and stop

    def loop_thread(self) -> int | None:
        """Ident of the thread the loop belongs to (the first that ran
        it), or None while no thread has run it yet."""
        return self.loop._core.thread

    def _other_thread(self) -> bool:
        thread = self.loop_thread()
        return thread is not None and thread != threading.get_ident()

    def start(self, owner: str | None = None) -> "concurrent.futures.Future | None":
        if self._other_thread() and not self.loop.is_closed():
            return self._start_through_loop(owner)
        self._start_here(owner)
        return None

    def _start_through_loop(self, owner: str | None) -> concurrent.futures.Future:
        accepted: concurrent.futures.Future = concurrent.futures.Future()

        def begin() -> None:
            if not accepted.set_running_or_notify_cancel():
                return
            try:
                self._start_here(owner)
            except BaseException as exc:  # noqa: BLE001 - delivered to the caller
                accepted.set_exception(exc)
            else:
                accepted.set_result(None)

        self.loop.call_soon_threadsafe(begin)  # wakes a blocked kick at once
        return accepted

    def _start_here(self, owner: str | None = None) -> None:
        running = _running_loop()
        if running is not None and running is not self.loop:
            # They would never run: nothing drives the shared loop meanwhile.
            raise RuntimeError("start_services(): services run on bgloop.ensure_loop()'s "
                               "loop, but another event loop is running here; start them "
                               "from plain code, from that loop (kick(), serve(), "
                               "ensure_loop().run_until_complete()) or a Blender add-on")
        _tasks.install_task_factory(self.loop, self.tasks)
        self._warn_if_unknown("start_services", owner)
        self.c.start(owner)

    def _warn_if_unknown(self, what: str, owner: str | None) -> None:
        # Legal, but usually a mistake: a misspelt owner, or forget_services()
        # in an add-on's unregister() while its services register at import.
        if owner is not None and not self.c.names(owner):
            log.warning("%s(%r): no service is registered for this owner", what, owner)

    def _c_stop(self, owner: str | None, timeout: float | None,
                done: Callable[[], Any] | None) -> None:
        """The service manager's stop; once it is complete, what the owner
        holds on channels goes too."""
        def complete() -> None:
            _channels.release_owner(owner)
            if done is not None:
                done()

        self.c.stop(owner, timeout, complete)

    def request_stop(self, owner: str | None = None, timeout: float | None = None,
                     done: Callable[[], Any] | None = None) -> None:
        """Start stopping; ``done()`` is called from the loop once it is
        complete."""
        self._c_stop(owner, timeout, done)

    def _stop_future(self, owner: str | None, timeout: float | None) -> asyncio.Future:
        """Start a stop; the future completes (from the C done callback) in
        the very iteration the stop does."""
        fut = self.loop.create_future()

        def done() -> None:
            if not fut.done():
                fut.set_result(None)

        self._c_stop(owner, timeout, done)
        return fut

    async def stop_async(self, owner: str | None = None, timeout: float | None = None) -> None:
        if _running_loop() is not self.loop:
            raise RuntimeError("stop_services_async(): await it on bgloop.ensure_loop()'s loop")
        self._warn_if_unknown("stop_services_async", owner)
        fut = self._stop_future(owner, timeout)
        scope = _tasks.current_scope()
        if scope is not None and (owner is None or scope.owner == owner):
            # Called by one of the services being stopped: it cannot wait for
            # its own end.  The stop goes on; ctx.stopping tells it to leave.
            return
        await asyncio.shield(fut)  # cancelling the caller leaves the stop going

    def stop(self, owner: str | None = None,
             timeout: float | None = None) -> "asyncio.Future | None":
        running = _running_loop()
        if running is self.loop:
            self._warn_if_unknown("stop_services", owner)
            return self._stop_future(owner, timeout)
        if running is not None:
            raise RuntimeError("stop_services(): called from inside another event loop; "
                               "use 'await bgloop.stop_services_async()' on the bgloop loop")
        self._warn_if_unknown("stop_services", owner)
        if self.loop.is_closed():
            return None
        if self._other_thread():
            self._stop_through_loop(owner, timeout)
        else:
            self._stop_here(owner, timeout)
        return None

    def stop_deadline(self, owner: str | None, timeout: float | None) -> float:
        """time.monotonic() by which a stop started now is over, whatever
        the services do: the service manager's bound plus STOP_MARGIN."""
        return time.monotonic() + self.c.stop_bound(owner, timeout) + STOP_MARGIN

    def drive(self, until: Callable[[], bool], deadline: float) -> bool:
        """Kick the loop from plain code until ``until()`` or the deadline
        (time.monotonic()); each kick is bounded (STOP_SLICE of callbacks),
        so a descriptor that stays readable cannot hold it.  True if
        ``until()`` became true."""
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.loop.kick(left, STOP_SLICE)
        return True

    def _stop_here(self, owner: str | None, timeout: float | None) -> None:
        done: list[bool] = []
        deadline = self.stop_deadline(owner, timeout)
        self._c_stop(owner, timeout, lambda: done.append(True))
        if not self.drive(lambda: bool(done), deadline):
            self.report_unfinished("stop_services", owner)
        self.report_abandoned("stop_services", owner)

    def _stop_through_loop(self, owner: str | None, timeout: float | None) -> None:
        # Another thread runs the loop: the stop is handed over and this
        # thread waits for it, as long as the stop can take.
        stopped: concurrent.futures.Future = concurrent.futures.Future()
        begun = threading.Event()

        def begin() -> None:
            begun.set()
            try:
                self._c_stop(owner, timeout, lambda: stopped.set_result(None))
            except BaseException as exc:  # noqa: BLE001 - raised in the caller
                stopped.set_exception(exc)

        deadline = self.stop_deadline(owner, timeout)
        self.loop.call_soon_threadsafe(begin)  # wakes a blocked kick at once
        try:
            stopped.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            if not begun.is_set():
                raise TimeoutError(
                    f"stop_services(): the loop belongs to thread {self.loop_thread()}, which "
                    f"did not run it for {STOP_MARGIN + self.c.stop_bound(owner, timeout):.1f} s; "
                    f"the stop was handed over and happens when that thread runs the loop"
                ) from None
            self.report_unfinished("stop_services", owner)

    def report_unfinished(self, what: str, owner: str | None) -> None:
        left = [n for n in self.c.names(owner) if self.c.info(n)["state"] == "stopping"]
        log.error("%s(%s): the stop did not finish within its bound; still stopping: %s",
                  what, "" if owner is None else repr(owner), ", ".join(left) or "(resources)")

    def report_abandoned(self, what: str, owner: str | None) -> int:
        """Log what stops gave up on (see Services.abandoned()); returns
        that count."""
        n = self.c.abandoned(owner)
        if n:
            names = [name for name in self.c.names(owner) if self.c.info(name)["abandoned"]]
            tasks = n - len(names)
            log.warning("%s(%s): abandoned %s%s%d task(s) that ignored cancellation",
                        what, "" if owner is None else repr(owner),
                        ", ".join(f"service {name!r}" for name in names),
                        "; " if names else "", tasks)
        return n

    # queries

    def status(self) -> dict[str, dict]:
        out = {}
        for name in self.c.names():
            info = self.c.info(name)
            host = self.c.host(name)
            info["depends_on"] = list(host.depends_on)
            info["restart"] = host.restart
            info["stop_timeout"] = host.stop_timeout
            info["tasks"] = len(self.tasks.tasks(host.owner, name))
            out[name] = info
        return out

    def failed(self) -> list[str]:
        return self.c.failed()

    def exit_code(self) -> int:
        return self.c.exit_code()

    def set_keepalive(self, enable: bool) -> None:
        self.c.set_keepalive(enable)


_default: Manager | None = None


def manager(create: bool = True) -> Manager | None:
    """The manager on ``ensure_loop()``'s loop (created on first use; with
    ``create=False`` None until then)."""
    global _default
    mgr = _default
    if mgr is not None and not mgr.loop.is_closed():
        return mgr
    if not create:
        return None
    from . import ensure_loop

    _config.apply_log_level()  # a bad BGLOOP_LOG_LEVEL fails here, loudly
    mgr = _default = Manager(ensure_loop())
    mgr.loop.add_busy_check(mgr.busy)
    # Its tasks are the manager's to count: a task a stop abandoned is not.
    mgr.loop._bgl_accounted = mgr.tasks.tasks
    return mgr


# ---- registration -------------------------------------------------------------

def _check_takes_ctx(name: str, fn: Callable) -> None:
    """A service is called as fn(ctx): refuse at registration what would
    only fail when started."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # no signature to check (some callables hide it)
    try:
        sig.bind(None)
    except TypeError as exc:
        raise TypeError(f"service {name!r}: {getattr(fn, '__qualname__', fn)!r} must take the "
                        f"service context as its only required argument, like "
                        f"'async def {getattr(fn, '__name__', 'fn')}(ctx)' ({exc})") from None


def _default_owner(fn: Callable) -> str:
    # A Blender add-on's package (my_addon.services -> "my_addon").
    module = getattr(fn, "__module__", None) or "__main__"
    return module.split(".")[0]


def service(name: str, *, depends_on: Iterable[str] = (), restart: str = "no",
            stop_timeout: float | None = None, owner: str | None = None,
            restart_delay: float | None = None, restart_max_delay: float | None = None,
            start_limit_burst: int | None = None,
            start_limit_interval: float | None = None) -> Callable[[F], F]:
    """Register ``async def fn(ctx)`` as the service ``name``.

    depends_on
        names of services that must be running (ready) before this one
        starts; when one of them goes down, this one is stopped first and
        started again once the dependency is back.
    restart
        ``"no"``, ``"on-failure"`` or ``"always"`` (after ending on its own);
        restarts wait ``restart_delay`` seconds, doubling up to
        ``restart_max_delay``; more than ``start_limit_burst`` starts within
        ``start_limit_interval`` seconds leave it ``failed``.
    stop_timeout
        seconds between the stop request (``ctx.stopping``) and cancelling
        the task (0: cancel at once).  None: ``BGLOOP_STOP_TIMEOUT``
        (default 5.0).  Pushed resources then get ``max(stop_timeout, 1)``
        seconds to close; one that takes longer is reported and abandoned,
        the others still close.
    owner
        who the service belongs to, e.g. an add-on's package name; None: the
        top-level package of the module defining ``fn``.

    Returns ``fn`` unchanged.  When applied to ``fn``, a bad argument or a
    duplicate name raises :class:`ServiceError` (with the service manager's
    text, naming the service and the field), an argument of the wrong type,
    or a function that is not ``async def`` or cannot be called as
    ``fn(ctx)``, raises ``TypeError``.  The same
    definition (same owner, module and function name) registered again - a
    module reload - replaces the old registration if that service is not
    active.
    """
    def register(fn: F) -> F:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"service {name!r}: {getattr(fn, '__qualname__', fn)!r} must be "
                            "an 'async def' function taking ctx")
        _check_takes_ctx(name, fn)
        manager().register(
            name, fn, owner=_default_owner(fn) if owner is None else owner,
            depends_on=depends_on, restart=restart,
            stop_timeout=_config.stop_timeout() if stop_timeout is None else stop_timeout,
            restart_delay=_config.restart_delay() if restart_delay is None else restart_delay,
            restart_max_delay=(_config.restart_max_delay() if restart_max_delay is None
                               else restart_max_delay),
            start_limit_burst=(_config.start_limit_burst() if start_limit_burst is None
                               else start_limit_burst),
            start_limit_interval=(_config.start_limit_interval() if start_limit_interval is None
                                  else start_limit_interval))
        return fn

    return register


def forget_services(owner: str | None = None) -> list[str]:
    """Unregister the services of ``owner`` (None: all), so that they may be
    registered again (e.g. when a Blender add-on is reloaded).  They must
    be stopped first: a RuntimeError names those still active, and then
    none is forgotten.  Returns the names forgotten."""
    mgr = manager(create=False)
    return mgr.forget(owner) if mgr is not None else []


# ---- start and stop -----------------------------------------------------------

def start_services(owner: str | None = None) -> "concurrent.futures.Future | None":
    """Start the registered services of ``owner`` (None: all) and their
    dependencies, in dependency order.  Returns at once: the loop (a kick,
    ``serve()``, ``run_until_complete``...) does the starting.  Unknown
    dependencies and cycles raise :class:`ServiceError` naming the services,
    and then nothing is started.  Starting running services is harmless.

    Called from a thread other than the one the loop belongs to (the first
    that ran it), it hands the request over thread-safely - waking the loop
    at once - and returns a :class:`concurrent.futures.Future`, done once
    the loop has taken the request (its exception is the ServiceError, if
    any)."""
    return manager().start(owner)


async def stop_services_async(owner: str | None = None, timeout: float | None = None) -> None:
    """Stop the services of ``owner`` (None: all) and wait until they are
    down: dependents first, ``ctx.stopping`` set, cancelled after their
    ``stop_timeout`` (or once ``timeout`` seconds have passed, if given),
    every task those services created cancelled, resources closed.  For use
    inside the loop.  Awaited by one of the services it stops, it only
    starts the stop and returns at once (a service cannot wait for its own
    end): the service should leave when its ``ctx.stopping`` is set."""
    mgr = manager(create=False)
    if mgr is not None:
        await mgr.stop_async(owner, timeout)
    elif owner is not None:
        log.warning("stop_services_async(%r): no service is registered for this owner", owner)


def stop_services(owner: str | None = None,
                  timeout: float | None = None) -> "asyncio.Future | None":
    """Stop the services of ``owner`` (None: all): see
    :func:`stop_services_async`.

    Called from plain code (not inside the loop), it drives the shared loop
    itself and returns when everything is down - at the latest after the
    service manager's bound on the stop (stop timeouts, cancel graces,
    resource closes) plus ``STOP_MARGIN``, whatever the services do; what it
    had to abandon is logged.  Called from inside the running loop (a
    callback, a service, a kick) it cannot block: it starts the stop and
    returns an ``asyncio.Future`` at once, done when the stop is (await it
    if you need to know).  Called from a thread other than the one the loop
    belongs to (``serve()``, ``run_forever()`` or Blender's main thread), it
    hands the stop over thread-safely, waking the loop at once, and waits
    for it just as long; ``TimeoutError`` if that thread did not run the
    loop meanwhile.  Repeated calls are harmless."""
    mgr = manager(create=False)
    if mgr is None:
        if owner is not None:
            log.warning("stop_services(%r): no service is registered for this owner", owner)
        return None
    return mgr.stop(owner, timeout)


def request_stop(timeout: float | None = None) -> None:
    """Start stopping every service from inside the loop (serve()'s signal
    handler) and return at once."""
    mgr = manager(create=False)
    if mgr is not None:
        mgr.request_stop(None, timeout)


# ---- status -------------------------------------------------------------------

def status() -> dict[str, dict]:
    """Per service name: ``state`` (stopped, starting, running, stopping,
    exited, failed), ``owner``, ``restarts``, ``error`` (text of the last
    failure or None), ``since`` (seconds in this state), ``wanted``,
    ``restart_pending``/``restart_in``, ``stop_timed_out``, ``waiting_for``
    (the dependency it waits for), ``failed_for_good``, ``tasks_abandoned``
    (tasks that ignored cancellation when its last run ended), ``depends_on``,
    ``restart`` (policy), ``stop_timeout``, ``resources`` (pushed, not yet
    closed) and ``tasks`` (pending tasks of its current run)."""
    mgr = manager(create=False)
    return mgr.status() if mgr is not None else {}


def failed_for_good() -> list[str]:
    """Names of services that failed and will not be restarted (the service
    manager's rule, which also makes serve()'s exit code 1)."""
    mgr = manager(create=False)
    return mgr.failed() if mgr is not None else []
