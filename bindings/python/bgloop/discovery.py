"""Discovery files: where this user's listening bgloop services can be found.

Each listening service (see :mod:`bgloop.ports`) has one JSON file in the
user's runtime directory - ``$XDG_RUNTIME_DIR/bgloop/``, or else the private
``<tempdir>/bgloop-<uid>`` - holding ``pid``, ``owner``, ``service``,
``host``, ``port``, ``started`` (epoch seconds), ``token_file`` (the path
of the file holding the token a client must present, or null) and
``process_start`` (the process's start in clock ticks since boot, so that a
reused pid is not taken for the writer; null where unknown).  Files are
written atomically (a temporary file renamed into place), so a reader sees a
whole record or none; files of processes that are gone are pruned whenever
the directory is listed or written to.

``python -m bgloop ls`` and ``python -m bgloop status`` read them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["DiscoveryError", "Record", "Directory", "runtime_dir", "pid_alive", "process_start",
           "probe", "duration", "table"]

SCHEMA = 1
_SUFFIX = ".json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DiscoveryError(OSError):
    """The runtime directory cannot be used (not creatable, not private)."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One listening service, as written to its discovery file."""

    pid: int
    owner: str
    service: str
    host: str
    port: int
    started: float
    token_file: str | None = None
    #: process_start() of ``pid`` when written: tells a reused pid apart.
    process_start: int | None = None

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def to_json(self) -> dict:
        return {"schema": SCHEMA, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: object) -> "Record":
        """ValueError when ``data`` is not a record of this schema."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError("not a bgloop discovery record")
        try:
            record = cls(pid=data["pid"], owner=data["owner"], service=data["service"],
                         host=data["host"], port=data["port"], started=data["started"],
                         token_file=data.get("token_file"),
                         process_start=data.get("process_start"))
        except KeyError as exc:
            raise ValueError(f"discovery record without {exc.args[0]!r}") from None
        types = ((record.pid, int), (record.port, int), (record.owner, str),
                 (record.service, str), (record.host, str), (record.started, (int, float)))
        if any(isinstance(v, bool) or not isinstance(v, t) for v, t in types) or \
                not (record.token_file is None or isinstance(record.token_file, str)) or \
                not (record.process_start is None or (isinstance(record.process_start, int)
                                                      and not isinstance(record.process_start,
                                                                         bool))):
            raise ValueError("discovery record with a field of the wrong type")
        return record


def probe(record: Record, timeout: float = 2.0) -> str | None:
    """Connect to ``record``'s port over TCP: None if it accepts, else why
    not.  A wildcard address is tried on loopback."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(record.host, record.host)
    try:
        with socket.create_connection((host, record.port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def duration(seconds: float) -> str:
    """``45s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def table(records: list[Record], now: float) -> str:
    """Records as aligned columns: PID OWNER SERVICE ADDRESS UPTIME."""
    rows = [("PID", "OWNER", "SERVICE", "ADDRESS", "UPTIME")]
    rows += [(str(r.pid), r.owner or "-", r.service, r.address, duration(now - r.started))
             for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]
                     for row in rows)


def _uid() -> str:
    getuid = getattr(os, "getuid", None)
    if getuid is not None:
        return str(getuid())
    import getpass
    return _UNSAFE.sub("_", getpass.getuser())


def runtime_dir(environ: "os._Environ[str] | dict[str, str] | None" = None) -> Path:
    """The discovery directory for this user (not created here)."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_RUNTIME_DIR", "")
    # The XDG spec: a relative path is to be ignored.
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return Path(xdg) / "bgloop"
    return Path(tempfile.gettempdir()) / f"bgloop-{_uid()}"


#: Seconds two readings of one process's start may differ by.
_START_SLACK = 5.0


def pid_alive(pid: int, start: int | None = None) -> bool:
    """Whether process ``pid`` exists (a zombie counts as gone).  With
    ``start`` (its :func:`process_start` when a record was written), a
    process that started at another time is one that reused the pid: gone
    too."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _win_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    except OSError:
        return False
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc (macOS): kill() said it exists
    if fields[0] == b"Z":
        return False
    now_start = _start_of(fields)
    if start is None or now_start is None:
        return True
    # Emulators (qemu-user) report their guest's own start a little off.
    return abs(now_start - start) <= _START_SLACK * os.sysconf("SC_CLK_TCK")


def process_start(pid: int | None = None) -> int | None:
    """When process ``pid`` (default: this one) started, in clock ticks
    since boot (Linux), unchanged by wall-clock steps; None elsewhere."""
    fields = _proc_stat(os.getpid() if pid is None else pid)
    return None if fields is None else _start_of(fields)


def _proc_stat(pid: int) -> list[bytes] | None:
    # "pid (comm) state ...": comm may hold spaces and parentheses, so the
    # fields are counted after the last ')'.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields or None


def _start_of(fields: list[bytes]) -> int | None:
    try:
        return int(fields[19])  # field 22, starttime
    except (IndexError, ValueError):
        return None


def _win_pid_alive(pid: int) -> bool:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


class Directory:
    """The discovery files in one directory."""

    def __init__(self, path: "Path | str | None" = None):
        self.path = Path(path) if path is not None else runtime_dir()

    def __repr__(self) -> str:
        return f"<bgloop.discovery.Directory {str(self.path)!r}>"

    def ensure(self) -> Path:
        """Create the directory (mode 0700) if needed; DiscoveryError if it
        cannot be, or if it is someone else's or writable by others, since
        then the records in it could be forged."""
        try:
            self.path.mkdir(mode=0o700, parents=False, exist_ok=True)
        except FileExistsError:
            pass  # not a directory: said below
        except OSError as exc:
            raise DiscoveryError(exc.errno, f"cannot create the bgloop runtime directory "
                                            f"{str(self.path)!r}: {exc.strerror or exc}") from None
        self._check_private()
        return self.path

    def _check_private(self) -> None:
        try:
            st = os.lstat(self.path)
        except OSError as exc:
            raise DiscoveryError(exc.errno, f"bgloop runtime directory {str(self.path)!r}: "
                                            f"{exc.strerror or exc}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise DiscoveryError(f"bgloop runtime directory {str(self.path)!r} is not a "
                                 f"directory")
        if sys.platform == "win32":
            return  # per-user %TEMP%; POSIX modes do not apply
        if st.st_uid != os.getuid():
            raise DiscoveryError(f"bgloop runtime directory {str(self.path)!r} belongs to "
                                 f"uid {st.st_uid}, not to this user ({os.getuid()}); "
                                 f"refusing to use it")
        if st.st_mode & 0o022:
            raise DiscoveryError(f"bgloop runtime directory {str(self.path)!r} is writable by "
                                 f"group or others (mode {stat.S_IMODE(st.st_mode):o}); "
                                 f"refusing to use it")

    def file_for(self, record: Record) -> Path:
        service = _UNSAFE.sub("_", record.service)[:80] or "_"
        return self.path / f"{record.pid}-{service}-{record.port}{_SUFFIX}"

    def write(self, record: Record) -> Path:
        """Write ``record``'s file atomically; returns its path.  Prunes the
        files of dead processes first."""
        self.ensure()
        self.prune()
        target = self.file_for(record)
        self.write_private(target, json.dumps(record.to_json(), indent=1) + "\n")
        return target

    def write_private(self, target: Path, text: str) -> None:
        """Write ``text`` to ``target`` (mode 0600) by way of a temporary
        file renamed into place."""
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @staticmethod
    def remove(path: "Path | str") -> bool:
        """Remove a file written here; False if it was already gone."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def _entries(self) -> Iterator[tuple[Path, Record | None]]:
        try:
            names = sorted(os.listdir(self.path))
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            if not name.endswith(_SUFFIX) or name.startswith("."):
                continue
            path = self.path / name
            try:
                with open(path, encoding="utf-8") as f:
                    yield path, Record.from_json(json.load(f))
            except FileNotFoundError:
                continue  # removed meanwhile
            except (OSError, ValueError):
                yield path, None

    def prune(self) -> list[Path]:
        """Remove the files of processes that are gone (and their token
        files); returns the discovery files removed.  Unreadable or
        malformed files are left alone."""
        removed = []
        for path, record in self._entries():
            if record is None or pid_alive(record.pid, record.process_start):
                continue
            if record.token_file and Path(record.token_file).parent == self.path:
                self.remove(record.token_file)
            if self.remove(path):
                removed.append(path)
        return removed

    def records(self, *, prune: bool = True) -> list[Record]:
        """The records of live processes, oldest first; with ``prune`` the
        files of dead ones are removed on the way.  Empty while the
        directory does not exist; DiscoveryError if it is not private (its
        records could be forged)."""
        if not os.path.lexists(self.path):
            return []
        self._check_private()
        if prune:
            try:
                self.prune()
            except OSError:
                pass  # a read-only directory: the files just stay
        out = [r for _, r in self._entries()
               if r is not None and pid_alive(r.pid, r.process_start)]
        out.sort(key=lambda r: (r.started, r.pid, r.service))
        return out

    def find(self, name: str) -> list[Record]:
        """Live records matching ``name``: a service name, ``owner/service``,
        or a pid."""
        def match(r: Record) -> bool:
            return name in (r.service, f"{r.owner}/{r.service}", str(r.pid))
        return [r for r in self.records() if match(r)]

    def holder(self, host: str, port: int) -> Record | None:
        """The live record listening on ``port`` at ``host`` (or on a
        wildcard address covering it), if any."""
        wildcard = {"", "0.0.0.0", "::"}
        for r in self.records():
            if r.port == port and (r.host == host or r.host in wildcard or host in wildcard):
                return r
        return None
