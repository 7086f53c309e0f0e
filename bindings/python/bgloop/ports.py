"""Listening services: ``await ctx.listen(handler, host, port)``.

::

    @bgloop.service("api")
    async def api(ctx):
        listener = await ctx.listen(handle)        # port 0: any free port
        print("listening on", listener.address)
        ctx.ready()
        await ctx.stopping.wait()

``handle`` is a stream handler, as for :func:`asyncio.start_server`
(``async def handle(reader, writer)``); pass ``protocol=Factory`` instead for
an :class:`asyncio.Protocol` factory.  Port 0 picks a free port; a fixed port
already in use raises :class:`PortInUseError`, which names the address and,
when the holder is a bgloop service, its pid, owner and name.

The server is a resource of the service: it closes (with its connections)
when the service ends.  While it listens, a discovery file describes it
(:mod:`bgloop.discovery`), so that ``python -m bgloop ls`` finds it; the
file goes when the server closes, when the service restarts and at exit.
A runtime directory that cannot be written is logged once and the service
listens all the same.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import errno
import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import discovery as _discovery

__all__ = ["PortInUseError", "Listener", "listen", "publications"]

log = logging.getLogger("bgloop.ports")

_IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}


class PortInUseError(OSError):
    """A fixed port is taken.  ``host``, ``port`` and ``holder`` (the
    :class:`bgloop.discovery.Record` of the bgloop service holding it, or
    None) say which and by whom; ``errno`` is ``EADDRINUSE``."""

    def __init__(self, host: str, port: int, holder: "_discovery.Record | None",
                 where: Path | None):
        self.host = host
        self.port = port
        self.holder = holder
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if holder is not None:
            by = (f"by bgloop service {holder.service!r} (owner {holder.owner!r}, "
                  f"pid {holder.pid})")
        elif where is not None:
            by = f"by a process that is not a bgloop service listed in {str(where)!r}"
        else:
            by = "by another process"
        super().__init__(errno.EADDRINUSE,
                         f"cannot listen on {address}: address already in use {by}; "
                         f"pass port=0 for any free port")

    def __str__(self) -> str:
        return self.strerror


class Publications:
    """The discovery and token files this process wrote, removed when their
    server closes and, for those left, at exit.  A runtime directory that
    cannot be used is logged once."""

    def __init__(self):
        self._lock = threading.Lock()
        self._files: dict[Path, int] = {}  # path -> pid that wrote it
        self._warned = False
        self._atexit = False

    def directory(self) -> "_discovery.Directory | None":
        """The usable runtime directory, created if needed; None (after a
        warning, the first time) if it cannot be used."""
        directory = _discovery.Directory()
        try:
            directory.ensure()
        except OSError as exc:
            self._warn(exc)
            return None
        return directory

    def _warn(self, exc: OSError) -> None:
        with self._lock:
            first, self._warned = not self._warned, True
        if first:
            log.warning("bgloop services will not be discoverable (python -m bgloop ls): %s",
                        exc)

    def _track(self, path: Path) -> None:
        with self._lock:
            self._files[path] = os.getpid()
            if not self._atexit:
                self._atexit = True
                atexit.register(self.remove_all)

    def publish(self, record: "_discovery.Record") -> Path | None:
        directory = self.directory()
        if directory is None:
            return None
        try:
            path = directory.write(record)
        except OSError as exc:
            self._warn(exc)
            return None
        self._track(path)
        return path

    def write_token(self, record: "_discovery.Record", token: str) -> Path | None:
        """Write ``token`` (mode 0600) beside ``record``'s discovery file."""
        directory = self.directory()
        if directory is None:
            return None
        path = directory.file_for(record).with_suffix(".token")
        try:
            directory.write_private(path, token + "\n")
        except OSError as exc:
            self._warn(exc)
            return None
        self._track(path)
        return path

    def remove(self, path: Path | None) -> None:
        if path is None:
            return
        with self._lock:
            pid = self._files.pop(path, None)
        if pid == os.getpid():
            try:
                _discovery.Directory.remove(path)
            except OSError as exc:
                log.warning("cannot remove %s: %s", path, exc)

    def remove_all(self) -> None:
        """Remove every file this process wrote (a forked child leaves its
        parent's alone)."""
        with self._lock:
            paths = [p for p, pid in self._files.items() if pid == os.getpid()]
        for path in paths:
            self.remove(path)

    def files(self) -> list[Path]:
        with self._lock:
            return [p for p, pid in self._files.items() if pid == os.getpid()]


_publications: Publications | None = None
_publications_lock = threading.Lock()


def publications() -> Publications:
    """This process's discovery files."""
    global _publications
    with _publications_lock:
        if _publications is None:
            _publications = Publications()
        return _publications


class Listener:
    """A listening server of a service.

    ``server`` is the :class:`asyncio.Server`; ``host``, ``port`` and
    ``address`` where it listens (the first socket's, when the host
    resolved to several addresses); ``token`` the secret clients must
    present (None unless ``token=`` was given), also in ``token_file``;
    ``discovery_file`` its discovery file (None if the runtime directory
    cannot be used).  ``close()`` stops listening early; otherwise the
    service's end closes it."""

    __slots__ = ("server", "host", "port", "token", "token_file", "discovery_file", "record")

    def __init__(self, server: asyncio.AbstractServer, record: "_discovery.Record",
                 token: str | None, token_file: Path | None, discovery_file: Path | None):
        self.server = server
        self.record = record
        self.host = record.host
        self.port = record.port
        self.token = token
        self.token_file = token_file
        self.discovery_file = discovery_file

    @property
    def address(self) -> str:
        return self.record.address

    @property
    def sockets(self) -> tuple:
        return tuple(self.server.sockets or ())

    def unpublish(self) -> None:
        """Remove the discovery and token files (the server still listens)."""
        pubs = publications()
        pubs.remove(self.discovery_file)
        pubs.remove(self.token_file)

    def close(self) -> None:
        self.unpublish()
        self.server.close()

    async def wait_closed(self) -> None:
        await self.server.wait_closed()

    def __repr__(self) -> str:
        return f"<bgloop.ports.Listener {self.record.service!r} on {self.address}>"


def _check_address(host: Any, port: Any) -> None:
    if not isinstance(host, str):
        raise TypeError(f"listen(): host must be a str such as '127.0.0.1', "
                        f"not {type(host).__name__}")
    if not host.strip():
        raise ValueError("listen(): host is empty; use '127.0.0.1' (this machine) or "
                         "'0.0.0.0' (every interface)")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"listen(): port must be an int (0: any free port), "
                        f"not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"listen(): port {port} is out of range 0-65535 (0: any free port)")


def _check_token(token: Any) -> str | None:
    if token is None or token is False:
        return None
    if token is True:
        return secrets.token_urlsafe(32)
    if not isinstance(token, str):
        raise TypeError(f"listen(): token must be None, True (generate one) or a str, "
                        f"not {type(token).__name__}")
    if not token or token != token.strip() or "\n" in token:
        raise ValueError("listen(): token must be a non-empty str without surrounding "
                         "whitespace or newlines")
    return token


async def _bind(ctx, handler, protocol, host: str, port: int, backlog: int, ssl,
                limit: int | None) -> asyncio.AbstractServer:
    try:
        if protocol is not None:
            return await ctx.loop.create_server(protocol, host, port, backlog=backlog, ssl=ssl)
        kwargs = {} if limit is None else {"limit": limit}
        return await asyncio.start_server(handler, host, port, backlog=backlog, ssl=ssl,
                                          **kwargs)
    except socket.gaierror as exc:
        raise socket.gaierror(exc.errno, f"listen(): cannot resolve host {host!r}: "
                                         f"{exc.strerror}") from None
    except OSError as exc:
        if port and exc.errno in _IN_USE:
            directory = _discovery.Directory()
            try:
                holder = directory.holder(host, port)
            except OSError:
                holder = None
            raise PortInUseError(host, port, holder, directory.path) from exc
        raise


async def listen(ctx, handler: Callable | None = None, host: str = "127.0.0.1", port: int = 0,
                 *, protocol: Callable[[], asyncio.BaseProtocol] | None = None,
                 token: "bool | str | None" = None, backlog: int = 100, ssl=None,
                 limit: int | None = None) -> Listener:
    """Listen for the service of ``ctx``: see :meth:`ServiceContext.listen`."""
    if (handler is None) == (protocol is None):
        raise TypeError("listen(): pass either a stream handler (async def handle(reader, "
                        "writer)) or protocol=<asyncio.Protocol factory>, not "
                        + ("both" if handler is not None else "neither"))
    fn = handler if handler is not None else protocol
    if not callable(fn):
        raise TypeError(f"listen(): {'handler' if handler is not None else 'protocol'} must "
                        f"be callable, not {type(fn).__name__}")
    _check_address(host, port)
    if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0:
        raise ValueError(f"listen(): backlog must be an int >= 0, not {backlog!r}")
    if protocol is not None and limit is not None:
        raise TypeError("listen(): limit applies to stream handlers, not to protocol=")
    secret = _check_token(token)

    server = await _bind(ctx, handler, protocol, host, port, backlog, ssl, limit)
    # Pushed at once: if the service's run already ended, push() closes it.
    ctx.resources.push(server)
    bound = server.sockets[0].getsockname()
    pubs = publications()
    record = _discovery.Record(pid=os.getpid(), owner=ctx.owner or "", service=ctx.name,
                               host=bound[0], port=bound[1], started=time.time(),
                               process_start=_discovery.process_start())
    token_file = None
    if secret is not None:
        token_file = pubs.write_token(record, secret)
        if token_file is not None:
            record = dataclasses.replace(record, token_file=str(token_file))
    listener = Listener(server, record, secret, token_file, pubs.publish(record))
    try:
        # LIFO: the files go before the server closes, so nobody is sent to it.
        ctx.resources.push(listener.unpublish)
    except BaseException:
        listener.unpublish()
        raise
    log.info("service %r listening on %s", ctx.name, listener.address)
    return listener
