"""bgloop's log lines on stderr, without any logging set-up by the host.

bgloop logs to ``bgloop.<module>`` loggers (``bgloop.services``,
``bgloop.serve``, ``bgloop.blender``, ``bgloop.service.<name>`` for a
service's ``ctx.log``...).  Python prints nothing below WARNING, and
nothing in the format a supervisor expects, unless someone configures
logging - which Blender (GUI and ``--background``), a plain
``bgloop.serve()`` script and a systemd unit do not.  So :func:`setup`
(called by ``serve()`` and by the Blender integration) puts one handler on
the ``bgloop`` logger:

* it writes to the current ``sys.stderr`` at the level of
  ``BGLOOP_LOG_LEVEL`` (default WARNING: warnings and errors show, INFO
  lines show with ``BGLOOP_LOG_LEVEL=INFO``);
* it **stands down** for a record that another handler on its way up the
  logger tree will print (the host ran ``logging.basicConfig()``, or put a
  handler on ``bgloop`` itself), so a host's own logging set-up gets every
  line exactly once, in its own format;
* under journald (``$JOURNAL_STREAM`` names the device and inode of stderr)
  each line starts with its syslog priority (``<3>`` error, ``<4>``
  warning, ``<6>`` info, ``<7>`` debug) and carries no timestamp (the
  journal adds its own); elsewhere lines read
  ``2025-01-01 12:00:00,000 bgloop.services WARNING: ...``.

``python -m bgloop`` uses :func:`setup_process` instead: the same handler on
the root logger, so the served module's own loggers print too.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["StderrHandler", "setup", "setup_process", "journald_stderr"]

# Every copy of bgloop (add-ons may vendor one) recognises the handler of
# any other copy by this attribute, so there is only ever one.
_MARK = "_bgloop_stderr_handler"

_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
               (logging.INFO, 6))


def journald_stderr() -> bool:
    """True if stderr is connected to the journal: ``$JOURNAL_STREAM`` is
    ``DEVICE:INODE`` of the file stderr is (systemd sets it for the
    service's own stdout/stderr; a child that redirected stderr elsewhere
    no longer matches)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep or not dev.isdigit() or not ino.isdigit():
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def _priority(levelno: int) -> int:
    for level, prio in _PRIORITIES:
        if levelno >= level:
            return prio
    return 7


class _Formatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s: %(message)s")
        self._journal = logging.Formatter("%(name)s %(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not journald_stderr():
            return super().format(record)
        # journald reads each line as one entry: every line gets the prefix.
        prefix = f"<{_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in self._journal.format(record).splitlines())


class StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (Blender and test
    runners replace it).  With ``stand_down`` it skips a record that another
    handler on the record's way up the logger tree handles."""

    def __init__(self, stand_down: bool) -> None:
        super().__init__()
        self.stand_down = stand_down
        setattr(self, _MARK, True)
        self.setFormatter(_Formatter())

    def _others_handle(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            for h in logger.handlers:
                if h is not self and record.levelno >= h.level:
                    return True
            if not logger.propagate:
                return False
            logger = logger.parent  # type: ignore[assignment]
        return False

    def emit(self, record: logging.LogRecord) -> None:
        if self.stand_down and self._others_handle(record):
            return
        stream = sys.stderr
        if stream is None:  # pythonw, some embedders
            return
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def _find(logger: logging.Logger) -> logging.Handler | None:
    for h in logger.handlers:
        if getattr(h, _MARK, False):
            return h
    return None


def setup() -> None:
    """Make bgloop's records visible on stderr (see the module text): apply
    ``BGLOOP_LOG_LEVEL`` to the ``bgloop`` logger and add the standing-down
    handler once.  A malformed ``BGLOOP_LOG_LEVEL`` leaves the level alone
    here (registering a service reports it)."""
    from . import config

    logger = logging.getLogger("bgloop")
    try:
        config.apply_log_level(logger)
    except config.ConfigError:
        pass
    if _find(logger) is None and _find(logging.getLogger()) is None:
        logger.addHandler(StderrHandler(stand_down=True))


def setup_process(level: int) -> None:
    """For a process bgloop runs itself (``python -m bgloop``): every
    logger's records at ``level`` and up go to stderr through the journald
    aware handler on the root logger, unless the root logger already has a
    handler."""
    root = logging.getLogger()
    root.setLevel(level)
    if not root.handlers:
        root.addHandler(StderrHandler(stand_down=False))
    setup()
