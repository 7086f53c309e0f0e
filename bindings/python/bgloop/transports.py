"""The socket transport of bgloop.Loop for TCP and Unix stream connections.

What runs per byte or per call (receiving, writing, flow control, close,
abort, write_eof) is bgloop._bgloop.SocketTransport, in C.  This subclass
adds what runs once per connection and reads exactly as asyncio's
_SelectorSocketTransport: construction (connection_made through call_soon),
get_extra_info, repr, the sendfile hooks, _fatal_error and
_call_connection_lost.  Set ``BGLOOP_PY_TRANSPORTS=1`` to use asyncio's own
transport instead.
"""
from __future__ import annotations

import inspect
import socket
import warnings
from asyncio import base_events, constants, futures, protocols, trsock
from asyncio.log import logger

from . import _bgloop

__all__ = ["SocketTransport", "AVAILABLE"]

# The C transport is POSIX only (Windows runs asyncio's proactor transports).
AVAILABLE = hasattr(_bgloop, "SocketTransport")

# Server._attach()/_detach() take the transport from Python 3.13 on.
_SERVER_KNOWS_TRANSPORTS = len(inspect.signature(base_events.Server._attach).parameters) > 1


def _attach(server, transport):
    if _SERVER_KNOWS_TRANSPORTS:
        server._attach(transport)
    else:
        server._attach()


def _detach(server, transport):
    if _SERVER_KNOWS_TRANSPORTS:
        server._detach(transport)
    else:
        server._detach()

if AVAILABLE:

    class SocketTransport(_bgloop.SocketTransport):
        """A TCP or Unix stream transport on bgloop's C core."""

        _start_tls_compatible = True
        _sendfile_compatible = constants._SendfileMode.TRY_NATIVE
        max_size = 256 * 1024  # the most one recv() takes

        def _setup(self, waiter, extra, server):
            sock = self._sock
            self._extra = extra = {} if extra is None else extra
            extra["socket"] = trsock.TransportSocket(sock)
            try:
                extra["sockname"] = sock.getsockname()
            except OSError:
                extra["sockname"] = None
            if "peername" not in extra:
                try:
                    extra["peername"] = sock.getpeername()
                except OSError:
                    extra["peername"] = None
            self._server = server
            if server is not None:
                _attach(server, self)
            loop = self._loop
            loop._transports[self._sock_fd] = self
            _set_nodelay(sock)
            loop.call_soon(self._protocol.connection_made, self)
            # Reading starts only once connection_made() has run.
            loop.call_soon(self._start_reading)
            if waiter is not None:
                loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

        def __repr__(self):
            info = [self.__class__.__name__]
            if self._sock is None:
                info.append("closed")
            elif self._closing:
                info.append("closing")
            info.append(f"fd={self._sock_fd}")
            loop = self._loop
            if loop is not None and not loop.is_closed():
                reading, writing = self._polling()
                info.append("read=polling" if reading else "read=idle")
                state = "polling" if writing else "idle"
                info.append(f"write=<{state}, bufsize={self.get_write_buffer_size()}>")
            return "<{}>".format(" ".join(info))

        def get_extra_info(self, name, default=None):
            return self._extra.get(name, default)

        def set_protocol(self, protocol):
            self._set_protocol(protocol, isinstance(protocol, protocols.BufferedProtocol))

        def get_protocol(self):
            return self._protocol

        def __del__(self, _warn=warnings.warn):
            if self._sock is not None:
                _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
                self._release()
                self._sock.close()
                if self._server is not None:
                    _detach(self._server, self)

        def _fatal_error(self, exc, message="Fatal error on transport"):
            if isinstance(exc, OSError):
                if self._loop.get_debug():
                    logger.debug("%r: %s", self, message, exc_info=True)
            else:
                self._loop.call_exception_handler({
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                })
            self._force_close(exc)

        def _call_connection_lost(self, exc):
            try:
                if self._protocol_connected:
                    self._protocol.connection_lost(exc)
            finally:
                self._release()
                self._sock.close()
                self._sock = None
                self._protocol = None
                self._loop = None
                server = self._server
                if server is not None:
                    _detach(server, self)
                    self._server = None
            if self._empty_waiter is not None:
                self._empty_waiter.set_exception(ConnectionError("Connection is closed by peer"))

        def _make_empty_waiter(self):
            if self._empty_waiter is not None:
                raise RuntimeError("Empty waiter is already set")
            self._empty_waiter = self._loop.create_future()
            if not self.get_write_buffer_size():
                self._empty_waiter.set_result(None)
            return self._empty_waiter

        def _reset_empty_waiter(self):
            self._empty_waiter = None

    def make(loop, sock, protocol, waiter=None, extra=None, server=None):
        """A SocketTransport for sock, as asyncio's _make_socket_transport()."""
        buffered = isinstance(protocol, protocols.BufferedProtocol)
        t = _bgloop.socket_transport(SocketTransport, loop._core, loop, sock, protocol, buffered)
        t._setup(waiter, extra, server)
        return t


def _set_nodelay(sock):
    # asyncio's base_events._set_nodelay(): small writes go out at once.
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
