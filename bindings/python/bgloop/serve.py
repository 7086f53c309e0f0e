"""``serve()``: the background keep-alive.

Starts every registered service, then lets the shared loop wait in the
kernel - one blocking ``kick(timeout=None)`` after another, so there is no
polling sleep and no wakeup at all while nothing happens - until

* SIGINT or SIGTERM arrives: services are stopped gracefully and
  ``serve()`` returns 0 - or 1 if the stop had to abandon a service or a
  task that ignored cancellation, or did not finish within the service
  manager's bound on it (plus a margin): a stop never keeps the process up
  longer than that, whatever the services do.  A second signal during the
  stop gives up at once and returns 128 + the signal number (130 for
  SIGINT, 143 for SIGTERM);
* nothing is left (every service ended on its own and no task a service
  created is pending): returns 0, or 1 if a service failed for good.

Telling when nothing is left, and the exit code, is the service manager's
keep-alive: it stops the loop with that code, which ends the last kick.
Each kick runs at most ``STOP_SLICE`` seconds of callbacks, so a descriptor
that stays readable cannot hold one forever.

Signal handlers are installed even when the host already has its own
(Blender sets a SIGINT handler in C before Python starts): the previous
handlers - the Python-level one and the raw C disposition - are put back
when ``serve()`` returns.

Windows has console events instead of signals: libbgloop's console handler
delivers Ctrl+C as SIGINT, Ctrl+Break as SIGBREAK and the console's close,
the user's logoff or the system's shutdown as SIGTERM, each a graceful stop
as above; no signal disposition is changed there.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from asyncio import events

from . import log as _log
from . import notify as _notify
from . import ports as _ports
from . import services as _services

__all__ = ["serve", "EXIT_OK", "EXIT_FAILED", "EXIT_FORCED_BASE"]

log = logging.getLogger("bgloop.serve")

if sys.platform == "win32":
    # The console's events as libbgloop delivers them: Ctrl+C, Ctrl+Break,
    # and the console's close, the user's logoff or the system's shutdown.
    _SIGNALS = (signal.SIGINT, signal.SIGBREAK, signal.SIGTERM)
else:
    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

EXIT_OK = 0            # every service ended well, or a signal stopped them cleanly
EXIT_FAILED = 1        # failed for good, or the stop abandoned something
EXIT_FORCED_BASE = 128  # + the signal number: a second signal cut the stop short

_claim = threading.Lock()  # one serve() drives the shared loop at a time


class _SignalGuard:
    """Route SIGINT/SIGTERM to a loop callback; restore everything after."""

    def __init__(self, loop, on_signal):
        self._loop = loop
        self._on_signal = on_signal
        self._saved: list[tuple[int, object, object]] = []
        self._wakeup_fd = -1

    def __enter__(self):
        from . import _bgloop
        # asyncio's handlers take over the process-wide wakeup fd and reset
        # it to -1 when removed; a host's own wakeup fd is put back after.
        self._wakeup_fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(self._wakeup_fd)
        try:
            for signo in _SIGNALS:
                raw = _bgloop._sigaction_save(signo)
                previous = signal.getsignal(signo)
                self._saved.append((signo, previous, raw))
                self._loop.add_signal_handler(signo, self._on_signal, signo)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        from . import _bgloop
        while self._saved:
            signo, previous, raw = self._saved.pop()
            try:
                self._loop.remove_signal_handler(signo)
            finally:
                # Python's own record first, then the exact C disposition
                # (which may be a handler Python never knew about).
                if previous is not None:
                    signal.signal(signo, previous)
                _bgloop._sigaction_restore(signo, raw)
        current = signal.set_wakeup_fd(-1)
        # Still in use by the loop's other signal handlers: keep it.
        signal.set_wakeup_fd(current if current != -1 else self._wakeup_fd)
        return False


class _ConsoleGuard:
    """Windows: route the console's events to a loop callback through the
    core's signal watchers (libbgloop's console handler).  Python's own
    signal handling is left alone: while a watcher exists, libbgloop's
    handler answers the event and Python never sees it."""

    def __init__(self, loop, on_signal, signals=_SIGNALS):
        self._loop = loop
        self._on_signal = on_signal
        self._signals = signals
        self._watchers: list = []

    def __enter__(self):
        try:
            for signo in self._signals:
                handle = events.Handle(self._on_signal, (signo,), self._loop, None)
                self._watchers.append(self._loop._core.watch_signal(signo, handle))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        # A closing console waits for its SIGTERM watcher to go: Windows ends
        # the process once it is closed, which is after the stop.
        while self._watchers:
            self._watchers.pop().close()
        return False


_Guard = _ConsoleGuard if sys.platform == "win32" else _SignalGuard


class _Stop:
    """What the signals asked for, seen from the kicks of serve()."""

    __slots__ = ("mgr", "signals", "deadline", "forced")

    def __init__(self, mgr):
        self.mgr = mgr
        self.signals = 0
        self.deadline: float | None = None  # time.monotonic() the stop must end by
        self.forced = 0                     # the signal that cut the stop short

    def on_signal(self, signo: int) -> None:
        self.signals += 1
        name = signal.Signals(signo).name
        if self.signals == 1:
            log.info("serve: %s received, stopping services", name)
            self.deadline = self.mgr.stop_deadline(None, None)
            self.mgr.request_stop()
        else:
            log.warning("serve: %s received again, giving up on the stop", name)
            self.forced = signo

    def wait_for(self) -> float | None:
        """Timeout of the next kick: until something happens, or the stop's
        deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def over(self) -> bool:
        return bool(self.forced) or (self.deadline is not None
                                     and time.monotonic() >= self.deadline)


def serve(*, signals: bool = True) -> int:
    """Run all registered services on the shared loop until they are done or
    SIGINT/SIGTERM asks them to stop.  Returns the process exit code: 0
    after a signal or when every service ended well; 1 if a service failed
    for good, or the stop had to abandon something (it is logged) or did not
    finish within its bound; 128 + the signal number when a second signal
    cut the stop short.  With ``signals=False`` no handler is installed
    (stop it with ``bgloop.stop_services()`` from another thread instead; a
    KeyboardInterrupt stops the services, bounded as any stop, then
    propagates).  Must run on the thread the shared loop belongs to (the
    first that ran it)."""
    mgr = _services.manager()
    loop = mgr.loop
    if loop.is_running():
        raise RuntimeError("bgloop.serve() was called from inside the running loop; "
                           "it runs the loop itself - call it from plain code")
    if signals and threading.current_thread() is not threading.main_thread():
        raise RuntimeError("bgloop.serve(signals=True) must be called from the main thread "
                           "(signal handlers can only be installed there); "
                           "pass signals=False elsewhere")

    _log.setup()
    stop = _Stop(mgr)
    with _claim:
        # A second serve() would clear the first one's keep-alive on its way
        # out, and the first would then never return.
        if mgr.driver is not None or loop._core.busy:
            raise RuntimeError("bgloop.serve() is already running in another thread; "
                               "stop it with bgloop.stop_services() from here instead")
        owner = loop._core.thread
        if owner is not None and owner != threading.get_ident():
            raise RuntimeError(f"bgloop.serve(): the shared loop belongs to thread {owner}, "
                               f"the first to run it; call serve() there")
        mgr.driver = threading.get_ident()
    try:
        guard = _Guard(loop, stop.on_signal) if signals else None
        if guard is not None:
            guard.__enter__()
    except BaseException:
        mgr.driver = None
        raise
    code = None
    notifier = None
    try:
        # The manager stops the loop with its exit code once nothing is left:
        # no service active and no task a service created pending.
        mgr.set_keepalive(True)
        # Under systemd (Type=notify): readiness, status, stop and watchdog.
        notifier = _notify.attach(mgr.c)
        mgr.start()
        names = mgr.c.names()
        log.info("serve: %d service(s): %s; waiting for SIGINT/SIGTERM or their end",
                 len(names), ", ".join(names))
        try:
            while (code := loop._core.take_stop()) is None and not stop.over():
                loop.kick(stop.wait_for(), _services.STOP_SLICE)
        except BaseException:
            # KeyboardInterrupt (signals=False) or SystemExit escaping a
            # callback: do not leave services running behind the caller.
            log.warning("serve: interrupted, stopping services")
            mgr.set_keepalive(False)
            loop._core.take_stop()
            mgr.stop()
            raise
    finally:
        mgr.driver = None
        mgr.set_keepalive(False)
        loop._core.take_stop()
        if guard is not None:
            guard.__exit__(None, None, None)
        if notifier is not None:
            notifier.close()
        # What a cut-short stop left listening is no longer to be found.
        _ports.publications().remove_all()
    return _exit_code(mgr, stop, code)


def _exit_code(mgr, stop: _Stop, code: int | None) -> int:
    if stop.forced:
        left = [n for n in mgr.c.names() if mgr.c.info(n)["state"] == "stopping"]
        log.error("serve: stop cut short by %s; still stopping: %s",
                  signal.Signals(stop.forced).name, ", ".join(left) or "(resources, tasks)")
        mgr.forced = True
        return EXIT_FORCED_BASE + stop.forced
    if code is None:
        mgr.report_unfinished("serve", None)
        mgr.report_abandoned("serve", None)
        return EXIT_FAILED
    if stop.signals:
        return EXIT_FAILED if mgr.report_abandoned("serve", None) else EXIT_OK
    if code:
        log.error("serve: service(s) failed for good: %s", ", ".join(mgr.failed()))
    return code
