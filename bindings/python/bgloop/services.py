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

The state machine is libbgloop's service manager (``bgloop/service.h``): it
owns the states, dependency order, readiness gating, restart policy with
exponential backoff, the start limit, stop timeout then cancel, and the
resource stacks closed LIFO when a service ends.  This module only supplies
its hooks - start runs ``fn(ctx)`` in a task, stop sets ``ctx.stopping``,
cancel cancels the task - and reports back readiness and how the task ended.

Every task a service creates, directly or through callbacks and other tasks,
belongs to the service (see :mod:`bgloop.tasks`): when the service ends they
are cancelled, and ``stop_services(owner)`` cancels whatever the owner's
services left behind - and nothing of other owners.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Awaitable, Callable, Iterable, TypeVar

from . import _bgloop
from . import config as _config
from . import resources as _resources
from . import tasks as _tasks
from .context import ServiceContext

__all__ = ["ServiceError", "service", "start_services", "stop_services",
           "stop_services_async", "status", "forget_services"]

log = logging.getLogger("bgloop")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

RESTART_POLICIES = {
    "no": _bgloop.RESTART_NO,
    "on-failure": _bgloop.RESTART_ON_FAILURE,
    "always": _bgloop.RESTART_ALWAYS,
}

# The one manager of this copy of bgloop, on ensure_loop()'s loop.
_mgr: Any = None
_loop: asyncio.AbstractEventLoop | None = None
_hosts: dict[str, "_Host"] = {}
_waiters: list[asyncio.Future] = []       # woken on every state change
_inflight: set[asyncio.Task] = set()      # stop operations under way


class ServiceError(ValueError):
    """A service cannot be registered or started: duplicate name, unknown
    dependency, dependency cycle...  The message names the services."""


# ---- the manager ------------------------------------------------------------

def _manager():
    global _mgr, _loop
    if _mgr is None:
        from . import ensure_loop, loop as _loopmod

        _config.apply_log_level()  # a bad BGLOOP_LOG_LEVEL fails here, loudly
        loop = ensure_loop()
        mgr = _bgloop.Services(loop._core)
        mgr.set_hooks(_close_resource, _on_state)
        _loopmod.add_busy_check(_anything_left)
        _mgr, _loop = mgr, loop
    return _mgr


def _on_state(name: str, old: str, new: str) -> None:
    host = _hosts.get(name)
    if new == "failed":
        error = _mgr.info(name)["error"] if _mgr is not None else None
        log.warning("service %r: %s -> failed: %s", name, old, error)
    elif host is not None:
        log.info("service %r: %s -> %s", name, old, new)
    waiters = _waiters[:]
    _waiters.clear()
    for fut in waiters:
        if not fut.done():
            fut.set_result(None)


def _close_resource(obj: Any, done: Callable[..., Any]) -> None:
    def finished(exc: BaseException | None) -> None:
        if exc is None:
            done()
            return
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("closing %s failed: %s", _resources.describe(obj), text)
        done(text)

    _resources.begin_close(obj, _loop, finished)


def _anything_left(loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """True while a service is starting, running or stopping (or waiting to
    restart), a stop is under way, or a task a service created is pending.
    ``kick()`` and ``serve()`` use it to tell when the loop may rest."""
    if _mgr is None or (loop is not None and loop is not _loop):
        return False
    if not _mgr.nothing_left(_tasks.registry()):
        return True
    return any(not t.done() for t in _inflight)


def _spawn(coro: Awaitable[Any]) -> asyncio.Task:
    """A task that belongs to no service (an empty context), so stopping an
    owner never cancels the very operation that stops it."""
    task = _tasks.enter(None).run(_loop.create_task, coro)
    _inflight.add(task)
    task.add_done_callback(_inflight.discard)
    return task


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# ---- one service --------------------------------------------------------------

class _Host:
    """The Python side of one service: its function and its current run."""

    def __init__(self, name: str, owner: str, fn: Callable, depends_on: tuple,
                 restart: str, stop_timeout: float):
        self.name = name
        self.owner = owner
        self.fn = fn
        self.depends_on = depends_on
        self.restart = restart
        self.stop_timeout = stop_timeout
        self.run = 0                  # number of the current run
        self.ctx: ServiceContext | None = None
        self.task: asyncio.Task | None = None
        self.reported = True          # the current run's end was reported

    # hooks called by the C manager

    def _bgl_start(self) -> None:
        self.run += 1
        run = self.run
        self.reported = False
        self.ctx = ServiceContext(self.name, self.owner, _loop,
                                  ready=lambda: self._ready(run),
                                  push=lambda obj: self._push(run, obj))
        # Created in a context holding the service's scope: the task and
        # everything it starts inherit it.
        scope = _tasks.Scope(self.name, self.owner)
        task = _tasks.enter(scope).run(_loop.create_task, self._main(self.ctx, run),
                                       name=f"bgloop.service:{self.name}")
        self.task = task
        task.add_done_callback(lambda t: self._task_done(t, run))

    def _bgl_stop(self) -> None:
        if self.ctx is not None:
            self.ctx.stopping.set()

    def _bgl_cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel(f"service {self.name!r}: stop timeout, cancelled")

    # reports back to the manager

    def _ready(self, run: int) -> None:
        if run == self.run and not self.reported:
            _mgr.ready(self.name)  # -ESRCH if a stop came first: fine

    def _report(self, run: int, failed: bool, error: str | None) -> None:
        if run != self.run or self.reported:
            return
        self.reported = True
        _mgr.exited(self.name, failed, error)

    def _push(self, run: int, obj: Any) -> None:
        if run != self.run or self.reported:
            # The run is over: nothing would close it later, so close now.
            _resources.begin_close(obj, _loop, lambda exc: None)
            raise RuntimeError(f"service {self.name!r} has ended; "
                               f"{_resources.describe(obj)} was closed instead of pushed")
        _mgr.push(self.name, obj, _resources.describe(obj))

    def _task_done(self, task: asyncio.Task, run: int) -> None:
        # Safety net: a task cancelled before its first step never ran _main.
        if task.cancelled():
            self._report(run, True, "cancelled before it started")

    async def _main(self, ctx: ServiceContext, run: int) -> None:
        failed, error, escaped = False, None, None
        try:
            await self.fn(ctx)
        except asyncio.CancelledError:
            failed = True
            error = "cancelled" + (" while stopping" if ctx.stopping.is_set() else "")
        except Exception as exc:
            failed, error = True, f"{type(exc).__name__}: {exc}"
            log.error("service %r failed", self.name, exc_info=exc)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: pass on
            failed, error, escaped = True, f"{type(exc).__name__}", exc
        try:
            # However it ended, what it started ends with it.
            await _cancel_tasks(_tasks.owned_tasks(self.owner, self.name), self.stop_timeout,
                                f"service {self.name!r} ended")
        except asyncio.CancelledError:
            pass  # cancelled again while cleaning up: report anyway
        finally:
            self._report(run, failed, error)
        if escaped is not None:
            raise escaped


async def _cancel_tasks(tasks: Iterable[asyncio.Task], timeout: float, why: str) -> None:
    me = asyncio.current_task()
    tasks = [t for t in tasks if t is not me and not t.done()]
    if not tasks:
        return
    for t in tasks:
        t.cancel(why)
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    if pending:
        log.warning("%s: %d task(s) ignored cancellation for %.1f s: %s", why, len(pending),
                    timeout, ", ".join(sorted(t.get_name() for t in pending)))


# ---- registration -------------------------------------------------------------

def _default_owner(fn: Callable) -> str:
    # A Blender add-on's package (my_addon.services -> "my_addon").
    module = getattr(fn, "__module__", None) or "__main__"
    return module.split(".")[0]


def _seconds(value: Any, what: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")) or value < 0 \
            or (positive and value == 0):
        raise ValueError(f"{what} must be a finite number of seconds "
                         f"{'> 0' if positive else '>= 0'}, got {value!r}")
    return value


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
        the task.  None: ``BGLOOP_STOP_TIMEOUT`` (default 5.0).  Pushed
        resources then get ``max(stop_timeout, 1)`` seconds to close; one
        that takes longer is reported and abandoned, the others still close.
    owner
        who the service belongs to, e.g. an add-on's package name; None: the
        top-level package of the module defining ``fn``.

    Returns ``fn`` unchanged.  A bad argument, a duplicate name or a function
    that is not ``async def`` raises at once (:class:`ServiceError`,
    ``TypeError``, ``ValueError``), naming the problem.  The same definition
    (same owner, module and function name) registered again - a module
    reload - replaces the old registration if that service is not active.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"service(): name must be a non-empty string, got {name!r}")
    if isinstance(depends_on, str):
        raise TypeError(f"service {name!r}: depends_on must be a sequence of names, "
                        f"not the string {depends_on!r} (write ({depends_on!r},))")
    deps = tuple(depends_on)
    for dep in deps:
        if not isinstance(dep, str) or not dep:
            raise TypeError(f"service {name!r}: dependency names must be non-empty strings, "
                            f"got {dep!r}")
    if name in deps:
        raise ServiceError(f"service {name!r} depends on itself")
    if restart not in RESTART_POLICIES:
        raise ValueError(f"service {name!r}: unknown restart policy {restart!r} "
                         f"(expected one of {', '.join(map(repr, RESTART_POLICIES))})")
    if owner is not None and (not isinstance(owner, str) or not owner):
        raise TypeError(f"service {name!r}: owner must be a non-empty string or None, "
                        f"got {owner!r}")
    stop_timeout = _seconds(_config.stop_timeout() if stop_timeout is None else stop_timeout,
                            f"service {name!r}: stop_timeout")
    delay = _seconds(_config.restart_delay() if restart_delay is None else restart_delay,
                     f"service {name!r}: restart_delay")
    delay_max = _seconds(_config.restart_max_delay() if restart_max_delay is None
                         else restart_max_delay, f"service {name!r}: restart_max_delay")
    if delay_max < delay:
        raise ValueError(f"service {name!r}: restart_max_delay ({delay_max}) is below "
                         f"restart_delay ({delay})")
    burst = _config.start_limit_burst() if start_limit_burst is None else start_limit_burst
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        raise ValueError(f"service {name!r}: start_limit_burst must be an int >= 0 "
                         f"(0 = no limit), got {burst!r}")
    interval = _seconds(_config.start_limit_interval() if start_limit_interval is None
                        else start_limit_interval, f"service {name!r}: start_limit_interval",
                        positive=True)

    def register(fn: F) -> F:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"service {name!r}: {getattr(fn, '__qualname__', fn)!r} must be "
                            "an 'async def' function taking ctx")
        who = owner if owner is not None else _default_owner(fn)
        host = _Host(name, who, fn, deps, restart, stop_timeout)
        mgr = _manager()
        old = _hosts.get(name)
        if old is not None:
            if old.owner != who or _identity(old.fn) != _identity(fn):
                raise ServiceError(f"a service named {name!r} is already registered "
                                   f"(owner {old.owner!r}, function {_identity(old.fn)}); "
                                   "forget_services() it first to register it again")
            # The same definition executed again: a module reload (a Blender
            # add-on re-enabled after its file changed).  Replace it, if it
            # is not in use.
            if _busy(name):
                raise ServiceError(f"service {name!r} is being registered again while it "
                                   "is active; stop_services() it first")
            mgr.remove(name)
            del _hosts[name]
        try:
            # The C manager wants stop_timeout > 0: 0 means "cancel at once".
            mgr.add(name=name, owner=who, depends_on=deps, restart=RESTART_POLICIES[restart],
                    stop_timeout=max(stop_timeout, 1e-6), close_timeout=max(stop_timeout, 1.0),
                    restart_delay=delay, restart_delay_max=delay_max, start_limit_burst=burst,
                    start_limit_interval=interval, host=host)
        except ValueError as exc:
            raise ServiceError(f"service {name!r}: {exc}") from None
        _hosts[name] = host
        return fn

    return register


def _identity(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _busy(name: str) -> bool:
    info = _mgr.info(name)
    return (info["state"] in ("starting", "running", "stopping") or info["wanted"]
            or info["restart_pending"] or info["resources"] > 0)


def forget_services(owner: str | None = None) -> list[str]:
    """Unregister the services of ``owner`` (None: all), so that they may be
    registered again (e.g. when a Blender add-on is reloaded).  They must
    be stopped first: a RuntimeError names those still active.  Returns the
    names forgotten."""
    if _mgr is None:
        return []
    names = _mgr.names(owner)
    busy = [n for n in names if _busy(n)]
    if busy:
        raise RuntimeError(f"forget_services(): still active or wanted: {', '.join(busy)}; "
                           "stop_services() first")
    for name in names:
        _mgr.remove(name)
        _hosts.pop(name, None)
    return names


# ---- start and stop -----------------------------------------------------------

def _check_owner(owner: Any, what: str) -> None:
    if owner is not None and (not isinstance(owner, str) or not owner):
        raise TypeError(f"{what}(): owner must be a non-empty string or None, got {owner!r}")


def start_services(owner: str | None = None) -> None:
    """Start the registered services of ``owner`` (None: all) and their
    dependencies, in dependency order.  Returns at once: the loop (a kick,
    ``serve()``, ``run_until_complete``...) does the starting.  Unknown
    dependencies and cycles raise :class:`ServiceError` naming the services,
    and then nothing is started.  Starting running services is harmless."""
    _check_owner(owner, "start_services")
    mgr = _manager()
    running = _running_loop()
    if running is not None and running is not _loop:
        # They would never run: nothing drives the shared loop meanwhile.
        raise RuntimeError("start_services(): services run on bgloop.ensure_loop()'s loop, "
                           "but another event loop is running here; start them from plain "
                           "code, from that loop (kick(), serve(), "
                           "ensure_loop().run_until_complete()) or a Blender add-on")
    _tasks.install_task_factory(_loop)
    if owner is not None and not mgr.names(owner):
        # Legal, but usually a mistake: e.g. forget_services() in an add-on's
        # unregister() while its services are registered at import only.
        log.warning("start_services(%r): no service is registered for this owner", owner)
    try:
        mgr.start(owner)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None


async def _wait_change(timeout: float) -> None:
    fut = _loop.create_future()
    _waiters.append(fut)
    try:
        await asyncio.wait([fut], timeout=timeout)
    finally:
        if fut in _waiters:
            _waiters.remove(fut)


async def _stop(owner: str | None, timeout: float | None) -> None:
    mgr = _mgr
    names = mgr.names(owner)
    mgr.stop(owner)
    deadline = None if timeout is None else _loop.time() + timeout
    forced = False
    while mgr.active(owner) > 0:
        now = _loop.time()
        if deadline is not None and now >= deadline and not forced:
            # The caller's timeout beats the services' own stop_timeout.
            forced = True
            for name in names:
                if mgr.info(name)["state"] in ("starting", "running", "stopping"):
                    _hosts[name]._bgl_cancel()
        if not any(mgr.info(n)["state"] in ("starting", "running", "stopping")
                   for n in names):
            # Only the owner's resource stacks are left to close: that takes
            # an iteration or two and changes no service state.
            await asyncio.sleep(0)
            continue
        # State changes wake us; the 1 s bound only guards against a change
        # that has no callback (it is never reached while idle: stopping is
        # not idle).
        wait = 1.0 if deadline is None or forced else min(1.0, max(deadline - now, 0.0))
        await _wait_change(wait)
    # Whatever the owner's services left behind (callbacks that created
    # tasks after their service ended...).
    longest = max((_hosts[n].stop_timeout for n in names if n in _hosts), default=1.0)
    leftovers = _tasks.owned_tasks(owner)
    await _cancel_tasks(leftovers, longest if timeout is None else timeout,
                        f"stop_services({owner!r})")


async def stop_services_async(owner: str | None = None, timeout: float | None = None) -> None:
    """Stop the services of ``owner`` (None: all) and wait until they are
    down: dependents first, ``ctx.stopping`` set, cancelled after their
    ``stop_timeout`` (or after ``timeout`` seconds if given), resources
    closed, and every task those services created cancelled.  For use
    inside the loop.  Awaited by one of the services it stops, it only
    starts the stop and returns at once (a service cannot wait for its own
    end): the stop runs in a task of its own, and the service should leave
    when its ``ctx.stopping`` is set."""
    _check_owner(owner, "stop_services_async")
    if timeout is not None:
        timeout = _seconds(timeout, "stop_services_async(): timeout")
    if _mgr is None:
        return
    stop = _spawn(_stop(owner, timeout))
    scope = _tasks.current_scope()
    if scope is not None and (owner is None or scope.owner == owner):
        # Called by one of the services being stopped: it cannot wait for
        # its own end.  The stop goes on; ctx.stopping tells it to leave.
        return
    await asyncio.shield(stop)


def stop_services(owner: str | None = None,
                  timeout: float | None = None) -> "asyncio.Task | None":
    """Stop the services of ``owner`` (None: all): see
    :func:`stop_services_async`.

    Called from plain code (not inside the loop), it drives the shared loop
    itself and returns when everything is down.  Called from inside the
    running loop (a callback, a service, a kick) it cannot block: it starts
    the stop and returns its ``asyncio.Task`` at once (await it if you need
    to know when it is done).  Called from another thread while the loop is
    running in its own thread (``serve()``, ``run_forever()``), it hands the
    stop over thread-safely and waits for it.  Repeated calls are harmless."""
    _check_owner(owner, "stop_services")
    if timeout is not None:
        timeout = _seconds(timeout, "stop_services(): timeout")
    if _mgr is None:
        return None
    running = _running_loop()
    if running is _loop:
        return _spawn(_stop(owner, timeout))
    if running is not None:
        raise RuntimeError("stop_services(): called from inside another event loop; "
                           "use 'await bgloop.stop_services_async()' on the bgloop loop")
    if _loop.is_running():
        # Running in another thread: only a thread-safe call may touch it.
        async def stop_there():
            await asyncio.shield(_spawn(_stop(owner, timeout)))
        asyncio.run_coroutine_threadsafe(stop_there(), _loop).result()
        return None
    task = _spawn(_stop(owner, timeout))
    while not task.done():
        _loop.kick(timeout=None)
    task.result()
    return None


def request_stop(timeout: float | None = None) -> asyncio.Task:
    """Start stopping every service from inside the loop (serve()'s signal
    handler); returns the task."""
    return _spawn(_stop(None, timeout))


# ---- status -------------------------------------------------------------------

def status() -> dict[str, dict]:
    """Per service name: ``state`` (stopped, starting, running, stopping,
    exited, failed), ``owner``, ``restarts``, ``error`` (text of the last
    failure or None), ``since`` (seconds in this state), ``wanted``,
    ``restart_pending``/``restart_in``, ``stop_timed_out``, ``waiting_for``
    (the dependency it waits for), ``depends_on``, ``restart`` (policy),
    ``stop_timeout``, ``resources`` (pushed, not yet closed) and ``tasks``
    (pending tasks of its current run)."""
    if _mgr is None:
        return {}
    out = {}
    for name in _mgr.names(None):
        info = _mgr.info(name)
        host = _hosts.get(name)
        if host is not None:
            info["depends_on"] = list(host.depends_on)
            info["restart"] = host.restart
            info["stop_timeout"] = host.stop_timeout
            info["tasks"] = len(_tasks.owned_tasks(host.owner, name))
        out[name] = info
    return out


def failed_for_good() -> list[str]:
    """Names of services that failed and will not be restarted."""
    if _mgr is None or _mgr.exit_code() == 0:
        return []
    return [name for name, info in status().items()
            if info["state"] == "failed" and not info["restart_pending"] and not info["wanted"]]
