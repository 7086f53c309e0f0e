"""State hooks: callbacks told of every service transition.

::

    def changed(name, old, new, error):
        print(f"{name}: {old} -> {new}", error or "")

    unsubscribe = bgloop.on_state_change(changed, owner="my_addon")
    ...
    unsubscribe()       # or: forget_services("my_addon") drops it

The transitions are the C service manager's (its state callback,
``bgl_services_set_state_cb()``), delivered on the loop's thread in the
order they happen.  A callback that raises is logged by the
``bgloop.services`` logger; the manager and the other callbacks carry on.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

__all__ = ["StateHooks", "Subscription", "on_state_change"]

log = logging.getLogger("bgloop.services")

StateCallback = Callable[[str, str, str, Optional[str]], object]


class Subscription:
    """What :func:`on_state_change` returns: call it (or ``close()`` it,
    e.g. from a service's ``ctx.resources``) to unsubscribe; harmless
    twice."""

    __slots__ = ("callback", "owner", "_hooks")

    def __init__(self, hooks: "StateHooks", callback: StateCallback, owner: str | None):
        self._hooks: StateHooks | None = hooks
        self.callback = callback
        self.owner = owner

    @property
    def active(self) -> bool:
        return self._hooks is not None

    def __call__(self) -> None:
        hooks, self._hooks = self._hooks, None
        if hooks is not None:
            hooks.discard(self)

    close = __call__

    def __repr__(self) -> str:
        state = "active" if self.active else "closed"
        return f"<bgloop state hook {self.callback!r} owner={self.owner!r} {state}>"


class StateHooks:
    """The subscriptions of one service manager, in subscription order."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self, callback: StateCallback, owner: str | None = None) -> Subscription:
        if not callable(callback):
            raise TypeError(f"on_state_change(): callback must be callable, not "
                            f"{type(callback).__name__}")
        if owner is not None and not isinstance(owner, str):
            raise TypeError(f"on_state_change(): owner must be a str or None, not "
                            f"{type(owner).__name__}")
        if owner == "":
            raise ValueError("on_state_change(): owner must be a non-empty string or None")
        sub = Subscription(self, callback, owner)
        self._subs.append(sub)
        return sub

    def discard(self, sub: Subscription) -> None:
        try:
            self._subs.remove(sub)
        except ValueError:
            pass

    def drop_owner(self, owner: str | None) -> None:
        """Unsubscribe what ``owner`` subscribed (None: every owned
        subscription), as its services are forgotten."""
        for sub in [s for s in self._subs
                    if s.owner is not None and (owner is None or s.owner == owner)]:
            sub()

    def dispatch(self, name: str, old: str, new: str, error: str | None) -> None:
        # A copy: callbacks may subscribe or unsubscribe while being told.
        for sub in list(self._subs):
            if not sub.active:
                continue
            try:
                sub.callback(name, old, new, error)
            except Exception:
                log.exception("state hook %r raised on service %r: %s -> %s",
                              sub.callback, name, old, new)


def on_state_change(callback: StateCallback, owner: str | None = None) -> Subscription:
    """Call ``callback(name, old_state, new_state, error)`` on the loop's
    thread for every state change of every service (``error``: the
    service's last failure text, or None).  With ``owner`` (e.g. an
    add-on's package name), the subscription is dropped when that owner's
    services are forgotten (``forget_services(owner)``: the add-on is
    disabled or reloaded).  Returns a :class:`Subscription`: call it to
    unsubscribe.  TypeError names a wrong argument."""
    from .services import manager

    return manager().state_hooks.subscribe(callback, owner)
