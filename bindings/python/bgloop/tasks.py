"""Which service (and so which owner) a task belongs to.

A service's coroutine runs in a task whose context carries the service's
:class:`Scope` in a context variable.  asyncio copies the context into every
task, callback and ``call_later`` created from there, so anything a service
starts - directly, or through a callback, a server's connection handler, a
task started by a task - sees the same scope.  A task factory installed on
the loop enters each such task in a :class:`Registry` - libbgloop's task
registry (``bgloop/task.h``) - under the service's owner and name.  The
service manager owns the registry: it counts what is left, cancels a
service's tasks when its run ends and an owner's leftovers when it stops.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from . import _bgloop

__all__ = ["Scope", "Registry", "current_scope", "current_owner", "install_task_factory",
           "owned_tasks"]

_scope: contextvars.ContextVar["Scope | None"] = contextvars.ContextVar("bgloop_scope",
                                                                       default=None)


class Scope:
    """Where code runs: the service's name and owner."""

    __slots__ = ("service", "owner")

    def __init__(self, service: str, owner: str):
        self.service = service
        self.owner = owner

    def __repr__(self) -> str:
        return f"<Scope service={self.service!r} owner={self.owner!r}>"


class Registry:
    """The tasks created inside services, by owner and service name."""

    __slots__ = ("c",)

    def __init__(self) -> None:
        self.c = _bgloop.Tasks()

    def add(self, scope: Scope, task: asyncio.Future) -> None:
        self.c.add(scope.owner, scope.service, task)

    def tasks(self, owner: str | None = None, service: str | None = None) -> list:
        """Pending tasks of ``owner`` (None: every owner), or only those of
        the service named ``service``."""
        return self.c.tasks(owner, service)

    def active(self, owner: str | None = None) -> int:
        return self.c.active(owner)


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


def _make_factory(previous: Any, registry: Registry):
    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future:
        if previous is not None:
            task = previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        context = kwargs.get("context")
        scope = context.get(_scope) if context is not None else _scope.get()
        # (An eager task may already be done: nothing left to track.)
        if scope is not None and isinstance(task, asyncio.Future) and not task.done():
            registry.add(scope, task)
        return task

    factory._bgloop_registry = registry  # type: ignore[attr-defined]
    factory._bgloop_previous = previous  # type: ignore[attr-defined]
    return factory


def install_task_factory(loop: asyncio.AbstractEventLoop, registry: Registry) -> None:
    """Make ``loop`` enter service tasks in ``registry``; chains any factory
    already set."""
    current = loop.get_task_factory()
    if getattr(current, "_bgloop_registry", None) is registry:
        return
    loop.set_task_factory(_make_factory(current, registry))


def owned_tasks(owner: str | None = None, service: str | None = None) -> list[asyncio.Task]:
    """Pending tasks created inside the services of ``owner`` (None: every
    owner), or only inside the service named ``service``, on the shared
    loop's service manager."""
    from . import services

    mgr = services.manager(create=False)
    return mgr.tasks.tasks(owner, service) if mgr is not None else []
