"""systemd notifications for :func:`bgloop.serve`.

When the process runs under systemd with ``Type=notify`` (``$NOTIFY_SOCKET``
set), ``serve()`` attaches a notifier to the service manager: READY=1 once
every service runs, STATUS= with a one-line summary, RELOADING=1/READY=1
around a restart, STOPPING=1 and EXTEND_TIMEOUT_USEC= while a stop is in
progress, and WATCHDOG=1 every ``WATCHDOG_USEC/2`` from the loop itself (so
a callback that blocks the loop stops the pings and systemd's
``WatchdogSec=`` restarts the worker).  libbgloop decides all of it
(``<bgloop/notify.h>``); this module only creates the notifier and logs why
there is none when the environment is malformed.
"""

from __future__ import annotations

import logging
import os

from . import _bgloop

__all__ = ["attach"]

log = logging.getLogger("bgloop.notify")


def attach(services: _bgloop.Services) -> _bgloop.Notifier | None:
    """A notifier following ``services`` when ``$NOTIFY_SOCKET`` is set, else
    None.  A malformed ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` or
    ``WATCHDOG_PID`` is logged (naming the variable) and gives None: the
    services run without notifications rather than not at all.  Close the
    notifier when done."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return None
    try:
        notifier = _bgloop.Notifier(services)
    except OSError as exc:
        log.warning("systemd notifications off: %s", exc.strerror)
        return None
    if notifier.note:
        log.warning("systemd watchdog off: %s", notifier.note)
    usec = notifier.stats()["watchdog_usec"]
    log.info("systemd notifications to %s%s", notifier.address,
             f", watchdog pings every {usec / 2e6:g} s" if usec else "")
    return notifier
