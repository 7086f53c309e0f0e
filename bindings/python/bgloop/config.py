"""Configuration from ``BGLOOP_*`` environment variables.

Every setting is read when it is needed (not at import), so a test or a
launcher script may change ``os.environ`` before starting the loop.  A bad
value raises :class:`ConfigError` naming the variable, the value and what was
expected: a typo in a deployment must fail loudly, never be ignored.

=================================  =======  ==================================
Variable                           Default  Meaning
=================================  =======  ==================================
``BGLOOP_LOG_LEVEL``               WARNING  level of the ``bgloop`` logger
                                            (name or number)
``BGLOOP_KICK_BUDGET``             0.002    seconds each kick of the Blender
                                            GUI driver may spend running
                                            callbacks; ``none`` = no limit
``BGLOOP_STOP_TIMEOUT``            5.0      seconds a service gets to stop
                                            before it is cancelled
``BGLOOP_RESTART_DELAY``           0.1      first restart delay (seconds);
                                            doubles after every restart
``BGLOOP_RESTART_MAX_DELAY``       30.0     cap of the restart delay
``BGLOOP_START_LIMIT_BURST``       5        starts allowed within the interval
                                            before a service stays ``failed``
                                            (0 = no limit)
``BGLOOP_START_LIMIT_INTERVAL``    10.0     that interval (seconds)
``BGLOOP_SLOW_CALLBACK``           (off)    seconds: log callbacks that run
                                            this long on the ``bgloop``
                                            logger (debug mode off; in debug
                                            mode asyncio reports them)
``BGLOOP_PY_TRANSPORTS``           0        1: TCP and Unix stream sockets of
                                            bgloop.Loop use asyncio's Python
                                            transports, not the C ones
``BGLOOP_PY_HANDLES``              0        1: call_soon/call_at/call_later/
                                            call_soon_threadsafe of bgloop.Loop
                                            make asyncio's Python Handles
                                            (isinstance(h, asyncio.Handle)
                                            holds), not bgloop's C ones
=================================  =======  ==================================

``BGLOOP_LOG_LEVEL``, when set, is applied to the ``bgloop`` logger when the
first service is registered, and by ``python -m bgloop`` (which also logs to
stderr at that level).  The service settings are the defaults of
:func:`bgloop.service`'s keyword arguments, read when a service is
registered.  ``BGLOOP_SLOW_CALLBACK``, ``BGLOOP_PY_TRANSPORTS`` and
``BGLOOP_PY_HANDLES`` are read when a :class:`bgloop.Loop` is created.
"""

from __future__ import annotations

import logging
import math
import os

__all__ = [
    "ConfigError",
    "log_level",
    "kick_budget",
    "stop_timeout",
    "restart_delay",
    "restart_max_delay",
    "start_limit_burst",
    "start_limit_interval",
    "slow_callback",
    "py_transports",
    "py_handles",
    "apply_log_level",
    "ENV_VARS",
]


class ConfigError(ValueError):
    """A ``BGLOOP_*`` environment variable has a value that cannot be used."""


_LEVELS = {
    "CRITICAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "NOTSET": logging.NOTSET,
}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _seconds(name: str, default: float, *, positive: bool, allow_none: bool = False):
    raw = _raw(name)
    if raw is None:
        return default
    if allow_none and raw.lower() in ("none", "unlimited", "inf"):
        return None
    bound = "> 0" if positive else ">= 0"
    extra = " or 'none'" if allow_none else ""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number of seconds {bound}{extra}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(f"{name}={raw!r}: expected a number of seconds {bound}{extra}")
    return value


def _count(name: str, default: int) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number >= 0") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r}: expected a whole number >= 0")
    return value


def log_level() -> int:
    """``BGLOOP_LOG_LEVEL``: a level name (``debug``, ``INFO``...) or number."""
    raw = _raw("BGLOOP_LOG_LEVEL")
    if raw is None:
        return logging.WARNING
    if raw.upper() in _LEVELS:
        return _LEVELS[raw.upper()]
    try:
        value = int(raw)
    except ValueError:
        names = ", ".join(k for k in _LEVELS if k != "WARN")
        raise ConfigError(f"BGLOOP_LOG_LEVEL={raw!r}: expected one of {names} or a number") from None
    if value < 0:
        raise ConfigError(f"BGLOOP_LOG_LEVEL={raw!r}: a numeric level must be >= 0")
    return value


def kick_budget() -> float | None:
    """``BGLOOP_KICK_BUDGET``: budget of the Blender driver's kicks; None =
    unlimited."""
    return _seconds("BGLOOP_KICK_BUDGET", 0.002, positive=True, allow_none=True)


def stop_timeout() -> float:
    """``BGLOOP_STOP_TIMEOUT``: default ``stop_timeout`` of services."""
    return _seconds("BGLOOP_STOP_TIMEOUT", 5.0, positive=False)


def restart_delay() -> float:
    """``BGLOOP_RESTART_DELAY``: first delay before a restart."""
    return _seconds("BGLOOP_RESTART_DELAY", 0.1, positive=False)


def restart_max_delay() -> float:
    """``BGLOOP_RESTART_MAX_DELAY``: cap of the exponential restart backoff."""
    return _seconds("BGLOOP_RESTART_MAX_DELAY", 30.0, positive=False)


def start_limit_burst() -> int:
    """``BGLOOP_START_LIMIT_BURST``: starts allowed per interval."""
    return _count("BGLOOP_START_LIMIT_BURST", 5)


def start_limit_interval() -> float:
    """``BGLOOP_START_LIMIT_INTERVAL``: the start-limit window in seconds."""
    return _seconds("BGLOOP_START_LIMIT_INTERVAL", 10.0, positive=True)


def slow_callback() -> float | None:
    """``BGLOOP_SLOW_CALLBACK``: threshold of bgloop's own slow-callback
    report; None (unset or empty) = no report, as in asyncio outside debug
    mode."""
    return _seconds("BGLOOP_SLOW_CALLBACK", None, positive=False)


def py_transports() -> bool:
    """``BGLOOP_PY_TRANSPORTS``: ``1`` gives TCP and Unix stream connections
    of bgloop.Loop asyncio's Python transports instead of the C ones."""
    return _flag("BGLOOP_PY_TRANSPORTS", False)


def py_handles() -> bool:
    """``BGLOOP_PY_HANDLES``: ``1`` makes bgloop.Loop's call_soon, call_at,
    call_later and call_soon_threadsafe return asyncio's Python Handles
    instead of bgloop's C ones (the default: asyncio's API, but not
    instances of asyncio.Handle)."""
    return _flag("BGLOOP_PY_HANDLES", False)


_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}


def _flag(name: str, default: bool) -> bool:
    """An on/off variable: 1/0, true/false, yes/no, on/off; unset = default."""
    raw = _raw(name)
    if raw is None:
        return default
    value = _BOOLS.get(raw.lower())
    if value is None:
        raise ConfigError(f"{name}={raw!r}: expected 1 or 0 (true/false, yes/no)")
    return value


def apply_log_level(logger: logging.Logger | None = None) -> None:
    """Set the ``bgloop`` logger's level from ``BGLOOP_LOG_LEVEL`` - only
    when the variable is set, so a host's own logging setup is left alone."""
    if _raw("BGLOOP_LOG_LEVEL") is not None:
        (logger or logging.getLogger("bgloop")).setLevel(log_level())


# name -> (reader, one-line description); used by ``python -m bgloop env``.
ENV_VARS = {
    "BGLOOP_LOG_LEVEL": (log_level, "level of the 'bgloop' logger"),
    "BGLOOP_KICK_BUDGET": (kick_budget, "Blender driver kick budget in seconds (none = unlimited)"),
    "BGLOOP_STOP_TIMEOUT": (stop_timeout, "default service stop_timeout in seconds"),
    "BGLOOP_RESTART_DELAY": (restart_delay, "first restart delay in seconds"),
    "BGLOOP_RESTART_MAX_DELAY": (restart_max_delay, "maximum restart delay in seconds"),
    "BGLOOP_START_LIMIT_BURST": (start_limit_burst, "starts allowed per start-limit interval"),
    "BGLOOP_START_LIMIT_INTERVAL": (start_limit_interval, "start-limit interval in seconds"),
    "BGLOOP_SLOW_CALLBACK": (slow_callback, "log callbacks slower than this (seconds; unset = off)"),
    "BGLOOP_PY_TRANSPORTS": (py_transports, "1 = asyncio's Python socket transports, not the C ones"),
    "BGLOOP_PY_HANDLES": (py_handles, "1 = asyncio's Python Handles, not bgloop's C ones"),
}
