"""Named channels between add-ons: publish/subscribe and request/reply.

::

    progress = bgloop.channel("render.progress", owner="my_addon")
    progress.publish({"frame": 12})             # any thread, never blocks

    sub = progress.subscribe(maxsize=100, overflow="drop_oldest")
    async for msg in sub:                       # or: await sub.get()
        ...
    progress.subscribe(print)                   # or a callback, run on the loop

    ask = bgloop.channel("scene.stats", owner="other_addon")
    ask.respond(lambda msg: {"objects": 3})     # one responder per channel
    reply = await ask.request({"scene": "Scene"}, timeout=5)

Channels are created on first use and live in one process-wide bus, a
:class:`Bus` stored as ``sys.modules["_bgloop_channels"]`` and versioned by
its ``protocol`` (:data:`PROTOCOL`), so add-ons with their own (vendored)
copy of bgloop meet on the same channels.  Objects of one copy reach another
only through the bus, and only through the underscore methods named in
:class:`Bus`'s docstring - never ``isinstance`` across copies.

Messages are the Python objects published, not copies: a subscriber sees
the very object (treat it as read-only).  Callbacks and ``get()`` run on the
loop the subscription was made on; a publish from another thread lands there
through ``call_soon_threadsafe``.

Each subscription has a bounded queue (``maxsize`` messages); when it is
full, ``overflow`` decides: ``"drop_oldest"`` (default) discards the oldest
queued message, ``"drop_newest"`` discards the new one, ``"error"`` ends the
subscription: its reader gets the queued messages, then
:class:`ChannelOverflow`.  A publisher is never held up nor failed by a slow
subscriber.  ``sub.dropped`` counts what a subscription discarded.

A channel handle made with ``owner`` belongs to that owner (an add-on's
package name): when its services are stopped (``stop_services(owner)``, an
add-on's unregister) or forgotten, its subscriptions end, its responders
are removed and its pending requests are cancelled; the handle itself stays
usable.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
import threading
from typing import Any, Callable

__all__ = ["PROTOCOL", "Bus", "Channel", "Subscription", "Responder", "channel",
           "ChannelError", "ChannelClosed", "ChannelOverflow", "NoResponder",
           "release_owner"]

log = logging.getLogger("bgloop.channels")

#: Version of the :class:`Bus` layout and of the underscore methods its
#: entries offer; copies with another value do not mix.  Bump it on any change.
PROTOCOL = 1
_BUS = "_bgloop_channels"
OVERFLOW = ("drop_oldest", "drop_newest", "error")


class ChannelError(RuntimeError):
    """A channel cannot do what was asked."""


class ChannelClosed(ChannelError):
    """The channel handle or subscription was closed."""


class ChannelOverflow(ChannelError):
    """A subscription with ``overflow="error"`` fell behind and ended."""


class NoResponder(ChannelError):
    """A request on a channel nobody responds to (or whose responder went away)."""


def _origin() -> str:
    package = __name__.rpartition(".")[0] or __name__
    return f"{package} ({os.path.dirname(__file__)})"


class Bus:
    """The process-wide channel state, shared by every bgloop copy.

    Plain data guarded by ``lock``; each copy's module functions read and
    write it.  The entries come from any copy, so only these methods are
    called on them (``protocol`` says which):

    * subscription: ``owner``; ``_deliver(msg)`` (any thread, never raises);
      ``_drop()`` (any thread: ends it, unlinked already).
    * responder: ``owner``; ``_handle(msg, ticket)`` (any thread);
      ``_abandon(ticket)``; ``_drop()``.
    * ticket (a pending request): ``owner``; ``_reply(kind, value)`` with
      kind ``"ok"``, ``"error"`` (value: the exception) or ``"gone"`` (the
      responder went away); ``_cancel()``.
    """

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.protocol = PROTOCOL
        self.lock = threading.RLock()
        self.subscribers: dict[str, list] = {}
        self.responders: dict[str, Any] = {}
        self.pending: set = set()


def _bus() -> Bus:
    bus = sys.modules.get(_BUS)
    if bus is None:
        bus = sys.modules.setdefault(_BUS, Bus(_origin()))
    protocol = getattr(bus, "protocol", None)
    if protocol != PROTOCOL:
        raise ChannelError(
            f"bgloop: {_origin()} speaks channel protocol {PROTOCOL}, but "
            f"{getattr(bus, 'origin', '?')} set up this process's channels with protocol "
            f"{protocol if protocol is not None else '?'}; use one bgloop version in all "
            f"add-ons")
    return bus


def _check_name(what: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str{' or None' if allow_none else ''}, not "
                        f"{type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _loop_here():
    """The running loop, else this copy's shared loop."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        from .shared import ensure_loop

        return ensure_loop()


def _soon(loop, fn: Callable, *args) -> bool:
    """Thread-safe hand-over to ``loop``; False if it is closed."""
    try:
        loop.call_soon_threadsafe(fn, *args)
        return True
    except RuntimeError:
        return False


def _matches(entry: Any, owner: str | None) -> bool:
    mine = getattr(entry, "owner", None)
    return mine is not None and (owner is None or mine == owner)


def release_owner(owner: str | None) -> None:
    """End what ``owner`` (None: every owner) holds on any channel: its
    subscriptions close, its responders go (requests they serve fail with
    :class:`NoResponder`), its pending requests are cancelled.  Called by
    the service manager when the owner's services stop or are forgotten."""
    bus = sys.modules.get(_BUS)
    if getattr(bus, "protocol", None) != PROTOCOL:
        return
    with bus.lock:
        subs = []
        for name, lst in list(bus.subscribers.items()):
            gone = [s for s in lst if _matches(s, owner)]
            subs += gone
            lst[:] = [s for s in lst if not _matches(s, owner)]
            if not lst:
                del bus.subscribers[name]
        responders = [r for r in bus.responders.values() if _matches(r, owner)]
        for name in [n for n, r in bus.responders.items() if _matches(r, owner)]:
            del bus.responders[name]
        tickets = [t for t in bus.pending if _matches(t, owner)]
        bus.pending.difference_update(tickets)
    for entry in subs + responders:
        entry._drop()
    for ticket in tickets:
        ticket._cancel()


# ---- subscriptions ---------------------------------------------------------------

class Subscription:
    """What :meth:`Channel.subscribe` returns.  ``await get()`` or
    ``async for`` (awaitable form), or the callback runs; ``close()`` ends
    it (harmless twice; it can be pushed onto a service's ``ctx.resources``)."""

    def __init__(self, name: str, owner: str | None, loop, callback: Callable | None,
                 maxsize: int, overflow: str) -> None:
        self.channel = name
        self.owner = owner
        self.callback = callback
        self.maxsize = maxsize
        self.overflow = overflow
        self.dropped = 0
        self._loop = loop
        self._lock = threading.Lock()
        self._queue: collections.deque = collections.deque()
        self._scheduled = False
        self._closed = False
        self._failed: ChannelOverflow | None = None
        self._waiter: asyncio.Future | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._queue)

    # -- the bus side (any thread, any copy)

    def _deliver(self, msg: Any) -> None:
        overflowed = False
        with self._lock:
            if self._closed:
                return
            if len(self._queue) >= self.maxsize:
                self.dropped += 1
                if self.overflow == "drop_newest":
                    return
                if self.overflow == "drop_oldest":
                    self._queue.popleft()
                    self._queue.append(msg)
                else:
                    self._failed = ChannelOverflow(
                        f"subscription to channel {self.channel!r} fell more than "
                        f"{self.maxsize} messages behind (overflow='error')")
                    self._closed = overflowed = True
            else:
                self._queue.append(msg)
            wake = not self._scheduled
            self._scheduled = True
        if overflowed:
            self._unlink()
        if wake:
            _soon(self._loop, self._wake)

    def _drop(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
            wake = not self._scheduled
            self._scheduled = True
        if wake:
            _soon(self._loop, self._wake)

    # -- the loop side

    def _wake(self) -> None:
        with self._lock:
            self._scheduled = False
        if self.callback is None:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return
        while True:
            with self._lock:
                if not self._queue:
                    failed, self._failed = self._failed, None
                    break
                msg = self._queue.popleft()
            try:
                result = self.callback(msg)
                if hasattr(result, "__await__"):
                    asyncio.ensure_future(result, loop=self._loop)
            except Exception:       # one subscriber must not break the others
                log.exception("channel %r: subscriber %r raised", self.channel, self.callback)
        if failed is not None:
            log.error("%s; subscriber %r unsubscribed", failed, self.callback)

    def _unlink(self) -> None:
        bus = _bus()
        with bus.lock:
            lst = bus.subscribers.get(self.channel)
            if lst is not None and self in lst:
                lst.remove(self)
                if not lst:
                    del bus.subscribers[self.channel]

    # -- the subscriber's API

    async def get(self) -> Any:
        """The next message; :class:`ChannelClosed` once the subscription
        is closed (and its queue read), :class:`ChannelOverflow` once if it
        ended by overflowing."""
        if self.callback is not None:
            raise ChannelError(f"subscription to channel {self.channel!r} has a callback; "
                               f"get() is for subscriptions made without one")
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(f"subscription to channel {self.channel!r}: await get() on "
                               f"the loop it was made on ({self._loop!r})")
        while True:
            with self._lock:
                if self._queue:
                    return self._queue.popleft()
                failed, self._failed = self._failed, None
                closed = self._closed
            if failed is not None:
                raise failed
            if closed:
                raise ChannelClosed(f"subscription to channel {self.channel!r} is closed")
            if self._waiter is not None:
                raise RuntimeError(f"subscription to channel {self.channel!r}: get() is "
                                   f"already awaited elsewhere")
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def get_nowait(self) -> Any:
        """The next queued message; IndexError if none is queued."""
        with self._lock:
            if not self._queue:
                raise IndexError(f"no message queued on channel {self.channel!r}")
            return self._queue.popleft()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.get()
        except ChannelClosed as exc:
            if isinstance(exc, ChannelOverflow):
                raise
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Unsubscribe; queued messages are discarded, a waiting ``get()``
        raises :class:`ChannelClosed` (``async for`` ends)."""
        self._unlink()
        self._drop()

    def __repr__(self) -> str:
        form = "callback" if self.callback is not None else "awaitable"
        state = "closed" if self._closed else f"{len(self._queue)} queued"
        return (f"<bgloop channel subscription {self.channel!r} owner={self.owner!r} "
                f"{form} {state}>")


# ---- request / reply -------------------------------------------------------------

class _Ticket:
    """One pending request, settled on the requester's loop."""

    def __init__(self, loop, owner: str | None, name: str) -> None:
        self.owner = owner
        self.channel = name
        self._loop = loop
        self.future: asyncio.Future = loop.create_future()

    def _reply(self, kind: str, value: Any) -> None:
        _soon(self._loop, self._settle, kind, value)

    def _settle(self, kind: str, value: Any) -> None:
        if self.future.done():
            return
        if kind == "ok":
            self.future.set_result(value)
        elif kind == "error":
            self.future.set_exception(value)
        else:
            self.future.set_exception(NoResponder(
                f"channel {self.channel!r}: the responder went away before replying"))

    def _cancel(self) -> None:
        _soon(self._loop, self.future.cancel)


class Responder:
    """What :meth:`Channel.respond` returns; ``close()`` removes it."""

    def __init__(self, name: str, owner: str | None, loop, handler: Callable) -> None:
        self.channel = name
        self.owner = owner
        self.handler = handler
        self._loop = loop
        self._closed = False
        self._tasks: dict[Any, asyncio.Task] = {}

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the bus side

    def _handle(self, msg: Any, ticket: Any) -> None:
        if not _soon(self._loop, self._run, msg, ticket):
            ticket._reply("gone", None)

    def _abandon(self, ticket: Any) -> None:
        _soon(self._loop, self._cancel_task, ticket)

    def _drop(self) -> None:
        self._closed = True
        _soon(self._loop, self._cancel_all)

    # -- the loop side

    def _run(self, msg: Any, ticket: Any) -> None:
        if self._closed:
            ticket._reply("gone", None)
            return
        try:
            result = self.handler(msg)
        except Exception as exc:        # the requester's, not the loop's
            ticket._reply("error", exc)
            return
        if not hasattr(result, "__await__"):
            ticket._reply("ok", result)
            return
        task = asyncio.ensure_future(result, loop=self._loop)
        self._tasks[ticket] = task

        def done(task: asyncio.Task) -> None:
            self._tasks.pop(ticket, None)
            if task.cancelled():
                ticket._reply("gone", None)
            elif task.exception() is not None:
                ticket._reply("error", task.exception())
            else:
                ticket._reply("ok", task.result())

        task.add_done_callback(done)

    def _cancel_task(self, ticket: Any) -> None:
        task = self._tasks.pop(ticket, None)
        if task is not None:
            task.cancel()

    def _cancel_all(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()

    def close(self) -> None:
        """Stop responding; requests it is serving fail with :class:`NoResponder`."""
        bus = _bus()
        with bus.lock:
            if bus.responders.get(self.channel) is self:
                del bus.responders[self.channel]
        self._drop()

    def __repr__(self) -> str:
        return (f"<bgloop channel responder {self.channel!r} owner={self.owner!r} "
                f"{self.handler!r}>")


# ---- the handle ------------------------------------------------------------------

class Channel:
    """A handle on the named channel (see :func:`channel`)."""

    def __init__(self, name: str, owner: str | None) -> None:
        self.name = name
        self.owner = owner
        self._closed = False
        self._mine: list = []       # subscriptions and responders made through it

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise ChannelClosed(f"{what} on channel {self.name!r}: this handle was closed")

    def _keep(self, entry: Any) -> None:
        # Ended entries are let go: a long-lived handle may subscribe often.
        self._mine = [e for e in self._mine if not e.closed]
        self._mine.append(entry)

    def publish(self, msg: Any) -> int:
        """Queue ``msg`` for every current subscriber (from any thread,
        without blocking); returns how many subscriptions it was queued for."""
        self._check_open("publish()")
        bus = _bus()
        with bus.lock:
            subs = list(bus.subscribers.get(self.name, ()))
        for sub in subs:
            sub._deliver(msg)
        return len(subs)

    def subscribe(self, callback: Callable[[Any], Any] | None = None, *, maxsize: int = 100,
                  overflow: str = "drop_oldest") -> Subscription:
        """Receive what is published from now on.  With ``callback``, it is
        called with each message on the loop (a coroutine it returns runs as
        a task; an exception is logged); without, read the returned
        :class:`Subscription` with ``await get()`` or ``async for``.
        ``maxsize`` (>= 1) bounds its queue; ``overflow`` is one of
        ``"drop_oldest"``, ``"drop_newest"``, ``"error"``."""
        self._check_open("subscribe()")
        if callback is not None and not callable(callback):
            raise TypeError(f"subscribe(): callback must be callable or None, not "
                            f"{type(callback).__name__}")
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"subscribe(): maxsize must be an int, not {type(maxsize).__name__}")
        if maxsize < 1:
            raise ValueError(f"subscribe(): maxsize must be >= 1, got {maxsize}")
        if overflow not in OVERFLOW:
            raise ValueError(f"subscribe(): overflow must be one of {', '.join(OVERFLOW)}, "
                             f"not {overflow!r}")
        sub = Subscription(self.name, self.owner, _loop_here(), callback, maxsize, overflow)
        bus = _bus()
        with bus.lock:
            bus.subscribers.setdefault(self.name, []).append(sub)
        self._keep(sub)
        return sub

    def respond(self, handler: Callable[[Any], Any]) -> Responder:
        """Answer requests with ``handler(msg)`` (sync, or async: awaited),
        run on the loop; its result is the reply, what it raises is raised
        by the requester.  One responder per channel: ChannelError if the
        channel has one."""
        self._check_open("respond()")
        if not callable(handler):
            raise TypeError(f"respond(): handler must be callable, not "
                            f"{type(handler).__name__}")
        responder = Responder(self.name, self.owner, _loop_here(), handler)
        bus = _bus()
        with bus.lock:
            current = bus.responders.get(self.name)
            if current is not None:
                raise ChannelError(
                    f"respond(): channel {self.name!r} already has a responder (owner "
                    f"{getattr(current, 'owner', None)!r}); close it first")
            bus.responders[self.name] = responder
        self._keep(responder)
        return responder

    async def request(self, msg: Any, *, timeout: float | None = None) -> Any:
        """Send ``msg`` to the channel's responder and return its reply.
        :class:`NoResponder` at once if there is none; what the responder
        raises is raised here; ``TimeoutError`` after ``timeout`` seconds
        (None: no limit), and the responder's work is cancelled."""
        self._check_open("request()")
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"request(): timeout must be a number of seconds or None, not "
                                f"{type(timeout).__name__}")
            if not timeout > 0:
                raise ValueError(f"request(): timeout must be > 0 seconds, got {timeout!r}")
        loop = asyncio.get_running_loop()
        bus = _bus()
        with bus.lock:
            responder = bus.responders.get(self.name)
            if responder is None:
                raise NoResponder(f"request(): nobody responds on channel {self.name!r}")
            ticket = _Ticket(loop, self.owner, self.name)
            bus.pending.add(ticket)
        try:
            responder._handle(msg, ticket)
            if timeout is None:
                return await ticket.future
            try:
                return await asyncio.wait_for(ticket.future, timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"request(): no reply on channel {self.name!r} within "
                                   f"{timeout} s") from None
        finally:
            with bus.lock:
                bus.pending.discard(ticket)
            if not ticket.future.done() or ticket.future.cancelled():
                responder._abandon(ticket)

    def close(self) -> None:
        """Close this handle: its subscriptions and responder end; publish,
        subscribe, respond and request on it raise :class:`ChannelClosed`.
        Other handles on the channel are unaffected."""
        self._closed = True
        mine, self._mine = self._mine, []
        for entry in mine:
            entry.close()

    def __repr__(self) -> str:
        return f"<bgloop.Channel {self.name!r} owner={self.owner!r}>"


def channel(name: str, owner: str | None = None) -> Channel:
    """A handle on the channel ``name`` (created on first use; any
    non-empty string), owned by ``owner`` (e.g. ``__package__``; None:
    nobody) - see the module's documentation.  TypeError/ValueError name a
    bad argument."""
    _check_name("channel name", name)
    _check_name("owner", owner, allow_none=True)
    _bus()
    if owner is not None:
        # Its owner's stop reaches the bus through the service manager.
        from .services import manager

        manager()
    return Channel(name, owner)
