"""What a service function receives: ``async def fn(ctx)``."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from . import resources as _resources

if TYPE_CHECKING:
    from . import ports

__all__ = ["ServiceContext", "Resources"]

T = TypeVar("T")


class Resources:
    """The service's cleanup stack: pushed objects close LIFO when the
    service ends, however it ends (return, exception, stop, cancel)."""

    __slots__ = ("_push",)

    def __init__(self, push: Callable[[Any], None]):
        self._push = push

    def push(self, obj: T) -> T:
        """Register ``obj`` for closing and return it, so that
        ``server = ctx.resources.push(await asyncio.start_server(...))`` reads
        naturally.  See :mod:`bgloop.resources` for what can be pushed."""
        _resources.check_closable(obj)
        self._push(obj)
        return obj


class ServiceContext:
    """The handle a running service gets.

    ``name``, ``owner`` and ``loop`` say where it runs; ``ready()`` tells the
    manager it is up (dependents wait for it); ``stopping`` is set when a
    stop was requested - leave soon after, or be cancelled when the
    service's ``stop_timeout`` runs out; ``resources`` closes what was pushed
    when the service ends; ``log`` is a logger named ``bgloop.service.NAME``.
    A new context is made for every (re)start.
    """

    __slots__ = ("name", "owner", "loop", "stopping", "resources", "log", "_ready", "_is_ready")

    def __init__(self, name: str, owner: str | None, loop: asyncio.AbstractEventLoop,
                 ready: Callable[[], None], push: Callable[[Any], None]):
        self.name = name
        self.owner = owner
        self.loop = loop
        self.stopping = asyncio.Event()
        self.resources = Resources(push)
        self.log = logging.getLogger(f"bgloop.service.{name}")
        self._ready = ready
        self._is_ready = False

    def ready(self) -> None:
        """Report readiness: the service becomes ``running`` and services
        depending on it may start.  Calling it again is harmless; so is
        calling it (or ``resources.push()``) from a worker thread: the report
        is handed to the loop, which it wakes."""
        if self._is_ready:
            return
        self._is_ready = True
        self._ready()

    @property
    def is_ready(self) -> bool:
        return self._is_ready

    async def listen(self, handler: Callable | None = None, host: str = "127.0.0.1",
                     port: int = 0, **options: Any) -> "ports.Listener":
        """Listen on ``host:port`` for this service and return a
        :class:`bgloop.ports.Listener` (``.port``, ``.address``, ``.server``).

        ``handler`` is a stream handler as for :func:`asyncio.start_server`;
        or pass ``protocol=factory`` for an :class:`asyncio.Protocol`.
        Port 0 picks a free port; a port in use raises
        :class:`bgloop.ports.PortInUseError` (an ``OSError``, ``EADDRINUSE``)
        naming the holder when it is a bgloop service.  Options:
        ``token=True`` (or a str) requires a secret, written to a private
        token file named in the discovery file; ``backlog``, ``ssl``,
        ``limit`` as for asyncio.  The server closes when the service ends;
        meanwhile a discovery file lists it for ``python -m bgloop ls``."""
        from . import ports as _ports
        return await _ports.listen(self, handler, host, port, **options)

    def __repr__(self) -> str:
        return f"<ServiceContext {self.name!r} owner={self.owner!r}>"
