"""How a pushed resource is closed.

``ctx.resources.push(obj)`` accepts anything that can be cleaned up:

* an object with ``aclose()`` (async generators, HTTP client sessions...):
  awaited;
* an object with ``close()`` (servers, transports, stream writers, files,
  sockets): called, and awaited if it returns an awaitable; an asyncio
  server also closes its client connections (on every Python version); then,
  if the object also has ``wait_closed()`` (asyncio servers and stream
  writers), that is awaited too, so the port or connection is really
  released;
* a plain callable: called with no arguments, awaited if it returns an
  awaitable.

The order and bookkeeping (LIFO, per-service scope, keep going past a failing
entry, timeout, idempotence) belong to the C resource manager; this module
only knows how to close *one* Python object.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from typing import Any, Callable

log = logging.getLogger("bgloop.resources")

__all__ = ["check_closable", "describe", "begin_close"]


def check_closable(obj: Any) -> None:
    """Raise TypeError unless ``obj`` is something ``push()`` can close."""
    if obj is None:
        raise TypeError("resources.push(None): expected an object with close(), "
                        "aclose() or wait_closed(), or a callable")
    if _has(obj, "aclose") or _has(obj, "close") or _has(obj, "wait_closed"):
        return
    if callable(obj):
        return
    raise TypeError(f"resources.push(): {type(obj).__name__!r} object has no close(), "
                    "aclose() or wait_closed() and is not callable")


def describe(obj: Any) -> str:
    """A short name for logs and status()."""
    try:
        return str(getattr(obj, "__qualname__", None) or type(obj).__qualname__)
    except Exception:  # a hostile __qualname__ or __str__: the type still names it
        return type(obj).__qualname__


def _has(obj: Any, attr: str) -> bool:
    return callable(getattr(obj, attr, None))


def _close_steps(obj: Any) -> list[Callable[[], Any]]:
    # aclose() supersedes close(): objects offering both (aiohttp's
    # ClientSession, async generators) expect the async form.
    if _has(obj, "aclose"):
        return [obj.aclose]
    steps = []
    if _has(obj, "close"):
        steps.append(obj.close)
        # A server: drop its connections too, or they outlive the service
        # (and wait_closed() waits for every client to hang up on its own).
        close_clients = _clients_closer(obj)
        if close_clients is not None:
            steps.append(close_clients)
    if _has(obj, "wait_closed"):
        steps.append(obj.wait_closed)
    if not steps and callable(obj):
        steps.append(obj)
    return steps


def _clients_closer(obj: Any) -> Callable[[], None] | None:
    if _has(obj, "close_clients") and _has(obj, "wait_closed"):
        return obj.close_clients  # Python 3.13+
    if not isinstance(obj, asyncio.base_events.Server):
        return None
    # Before 3.13 a server does not know its connections; a selector loop
    # does (fd -> transport, each transport naming the server it came from).
    transports = getattr(obj._loop, "_transports", None)
    if transports is None:
        return None

    def close_clients() -> None:
        for transport in list(transports.values()):
            if getattr(transport, "_server", None) is obj:
                transport.close()

    return close_clients


def begin_close(obj: Any, loop: asyncio.AbstractEventLoop,
                done: Callable[[BaseException | None], None]) -> None:
    """Start closing ``obj``; call ``done(error_or_None)`` exactly once.

    Synchronous closes complete before this returns.  Anything awaitable runs
    in a task on ``loop`` created in an empty context, so it belongs to no
    service or owner and is never swept away by the cancellation of the
    tasks it is cleaning up after.
    """
    steps = _close_steps(obj)
    for i, step in enumerate(steps):
        try:
            result = step()
        except BaseException as exc:  # reported; only KeyboardInterrupt & co. go on
            done(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if inspect.isawaitable(result):
            rest = steps[i + 1:]
            coro = _finish(result, rest)
            task = contextvars.Context().run(loop.create_task, coro)
            task.add_done_callback(lambda t: done(_task_error(t)))
            return
    done(None)


async def _finish(awaitable: Any, rest: list[Callable[[], Any]]) -> None:
    await awaitable
    for step in rest:
        result = step()
        if inspect.isawaitable(result):
            await result


def _task_error(task: asyncio.Task) -> BaseException | None:
    if task.cancelled():
        return asyncio.CancelledError("close was cancelled")
    return task.exception()
