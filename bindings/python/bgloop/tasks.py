"""Which service (and so which owner) a task belongs to.

A service's coroutine runs in a task whose context carries the service's
:class:`Scope` in a context variable.  asyncio copies the context into every
task, callback and ``call_later`` created from there, so anything a service
starts - directly, or through a callback, a server's connection handler, a
task started by a task - sees the same scope.  A task factory installed on
the loop records each new task in its scope, so the tasks an owner's services
created can be found and cancelled later, and only those.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from typing import Any, Iterable

__all__ = ["Scope", "current_scope", "current_owner", "install_task_factory",
           "owned_tasks", "pending_owned"]

_scope: contextvars.ContextVar["Scope | None"] = contextvars.ContextVar("bgloop_scope",
                                                                       default=None)

# Every scope that still has tasks, so owner-wide sweeps find tasks created
# by a service that has since ended (a callback it left behind, say).
_live_scopes: "weakref.WeakSet[Scope]" = weakref.WeakSet()


class Scope:
    """One run of one service: its name, owner and the tasks created in it."""

    __slots__ = ("service", "owner", "tasks", "__weakref__")

    def __init__(self, service: str, owner: str | None):
        self.service = service
        self.owner = owner
        self.tasks: set[asyncio.Task] = set()

    def adopt(self, task: asyncio.Task) -> None:
        if task.done():
            return
        self.tasks.add(task)
        _live_scopes.add(self)
        task.add_done_callback(self.tasks.discard)

    def pending(self) -> list[asyncio.Task]:
        return [t for t in self.tasks if not t.done()]

    def __repr__(self) -> str:
        return f"<Scope service={self.service!r} owner={self.owner!r} tasks={len(self.tasks)}>"


def current_scope() -> Scope | None:
    """The scope of the code running now (None outside any service)."""
    return _scope.get()


def current_owner() -> str | None:
    """The owner of the service the running code belongs to, or None."""
    scope = _scope.get()
    return scope.owner if scope is not None else None


def enter(scope: Scope | None) -> contextvars.Context:
    """A fresh context (no inherited scope) with ``scope`` set in it."""
    ctx = contextvars.Context()
    ctx.run(_scope.set, scope)
    return ctx


def _make_factory(previous: Any):
    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future:
        if previous is not None:
            task = previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        context = kwargs.get("context")
        scope = context.get(_scope) if context is not None else _scope.get()
        if scope is not None and isinstance(task, asyncio.Future):
            scope.adopt(task)  # type: ignore[arg-type]
        return task

    factory._bgloop_owned = True  # type: ignore[attr-defined]
    factory._bgloop_previous = previous  # type: ignore[attr-defined]
    return factory


def install_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``loop`` record owned tasks; chains any factory already set."""
    current = loop.get_task_factory()
    if getattr(current, "_bgloop_owned", False):
        return
    loop.set_task_factory(_make_factory(current))


def owned_tasks(owner: Any = None, *, everything: bool = False) -> list[asyncio.Task]:
    """Pending tasks created inside services of ``owner`` (all if everything)."""
    found = []
    for scope in list(_live_scopes):
        if everything or scope.owner == owner:
            found.extend(scope.pending())
    return found


def pending_owned(scopes: Iterable[Scope] | None = None) -> bool:
    """True if any service-created task is still pending."""
    for scope in list(_live_scopes) if scopes is None else scopes:
        if scope.pending():
            return True
    return False
