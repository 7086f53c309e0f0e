"""HTTP/1.1 for a small JSON API: h11 parses, asyncio streams carry the bytes.

h11 (pure Python, ``pip install bgloop[health]``) does all the parsing and
framing - request line, headers, Content-Length, chunked bodies, keep-alive,
pipelining.  This module only moves bytes between h11 and a connection,
enforces the limits below and turns every client mistake into an answer
instead of a traceback.  The health service (:mod:`bgloop.health`), the
Blender demo add-on and examples/python/demo_service.py serve with it.

Limits (``Limits``, per server; each error answer closes the connection):

==================  ========  ===============================================
``max_header_bytes``  64 KiB  request line + headers still incomplete past
                              this: 431
``max_body``           1 MiB  a larger Content-Length or chunked body: 413
``header_timeout``      10 s  first byte of a request to the end of its
                              headers: 408
``body_timeout``        10 s  end of the headers to the end of the body: 408
``idle_timeout``        15 s  keep-alive wait for the next request: closed
                              without an answer
``send_timeout``        30 s  for the client to take an answer: closed
``max_connections``       64  more at once: 503
==================  ========  ===============================================

Malformed requests (request line, header lines, Content-Length, a missing
Host in HTTP/1.1) get 400, an HTTP version other than 1.0/1.1 505, a POST,
PUT or PATCH without Content-Length or Transfer-Encoding 411.  Handlers raise
``HTTPError`` for their own 4xx answers; anything else they raise becomes a
500 with the traceback in the log, since that is a bug in the handler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http
import json
import logging

import h11

log = logging.getLogger("bgloop.httpd")

READ_CHUNK = 16 * 1024
LINGER = 1.0                # seconds to drain input before closing after an error
CLOSE_WAIT = 1.0            # seconds a closed connection may take to flush


@dataclasses.dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 64 * 1024
    max_body: int = 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    idle_timeout: float = 15.0
    send_timeout: float = 30.0
    max_connections: int = 64


class HTTPError(Exception):
    """Raised by a handler (or here): becomes a JSON error answer."""

    def __init__(self, status: int, message: str, *, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class Request:
    __slots__ = ("method", "path", "query", "version", "headers", "body")

    def __init__(self, method, path, query, version, headers, body=b""):
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers      # lower-case name -> value
        self.body = body

    def json(self):
        """The body as JSON; 415/400 answers for anything else."""
        ctype = self.headers.get("content-type", "application/json")
        if ctype.split(";")[0].strip().lower() != "application/json":
            raise HTTPError(415, f"expected Content-Type application/json, got {ctype!r}")
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError) as exc:
            raise HTTPError(400, f"body is not valid JSON: {exc}") from None


class Response:
    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, payload, headers=None):
        self.status = status
        self.body = json.dumps(payload, separators=(",", ":"), default=str).encode() + b"\n"
        self.headers = dict(headers or {})


class _Timeout(Exception):
    """The client took longer than a limit allows."""


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _to_request(event: h11.Request) -> Request:
    """h11 has checked the syntax; refuse what the handlers cannot serve."""
    version = event.http_version.decode()
    if version not in ("1.0", "1.1"):
        raise HTTPError(505, f"HTTP/{version} is not supported")
    try:
        target = event.target.decode("ascii")
    except UnicodeDecodeError:
        raise HTTPError(400, "request target is not ASCII") from None
    if not target.startswith("/"):
        raise HTTPError(400, "request target must be an absolute path")
    headers: dict[str, str] = {}
    for name, value in event.headers:           # names come lower-cased
        key, text = name.decode("ascii"), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    method = event.method.decode("ascii")
    if (method in ("POST", "PUT", "PATCH") and "content-length" not in headers
            and "transfer-encoding" not in headers):
        raise HTTPError(411, "Content-Length required")
    path, _, query = target.partition("?")
    return Request(method, path, query, version, headers)


class _Connection:
    """One client: an h11 state machine over a reader/writer pair."""

    def __init__(self, reader, writer, limits: Limits):
        self.reader = reader
        self.writer = writer
        self.limits = limits
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self.loop = asyncio.get_running_loop()
        self.method = b""       # of the request being answered: no body for HEAD

    async def _read(self, timeout: float) -> bytes:
        if timeout <= 0:
            raise _Timeout
        try:
            return await asyncio.wait_for(self.reader.read(READ_CHUNK), timeout)
        except asyncio.TimeoutError:
            raise _Timeout from None

    async def send(self, event) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.limits.send_timeout)

    async def next_request(self) -> h11.Request | None:
        """The next request's head; None if the client closed or idled out."""
        deadline = None         # set once the request's first byte is here
        first = True
        while True:
            event = self.h11.next_event()
            if isinstance(event, h11.Request):
                self.method = event.method
                return event
            if event is not h11.NEED_DATA:
                return None         # ConnectionClosed
            if first and self.h11.trailing_data[0]:     # pipelined leftovers
                deadline = self.loop.time() + self.limits.header_timeout
            first = False
            if deadline is None:
                try:
                    data = await self._read(self.limits.idle_timeout)
                except _Timeout:
                    return None
                if data:
                    deadline = self.loop.time() + self.limits.header_timeout
            else:
                data = await self._read(deadline - self.loop.time())
            self.h11.receive_data(data)     # b"": EOF, h11 decides if that is an error

    async def read_body(self) -> bytes:
        deadline = self.loop.time() + self.limits.body_timeout
        body = bytearray()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                if self.h11.they_are_waiting_for_100_continue:
                    await self.send(h11.InformationalResponse(status_code=100, headers=[]))
                self.h11.receive_data(await self._read(deadline - self.loop.time()))
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.limits.max_body:
                    raise HTTPError(413, f"body larger than {self.limits.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)

    async def respond(self, resp: Response, *, close: bool = False) -> None:
        headers = [("Content-Type", "application/json"),
                   ("Content-Length", str(len(resp.body)))]
        headers += list(resp.headers.items())
        if close:
            headers.append(("Connection", "close"))
        await self.send(h11.Response(status_code=resp.status, headers=headers,
                                     reason=_reason(resp.status)))
        if self.method != b"HEAD":
            await self.send(h11.Data(data=resp.body))
        await self.send(h11.EndOfMessage())

    async def fail(self, status: int, message: str, headers=None) -> None:
        """Answer an error if h11 still allows an answer, then hang up
        gracefully: unread input at close() makes the kernel send a RST,
        which can destroy the answer before the client reads it."""
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await self.respond(Response(status, {"error": message}, headers), close=True)
        if self.writer.can_write_eof():
            self.writer.write_eof()
        deadline = self.loop.time() + LINGER
        drained = 0
        while drained < 4 * self.limits.max_body:
            try:
                chunk = await self._read(deadline - self.loop.time())
            except _Timeout:
                break
            if not chunk:
                break
            drained += len(chunk)


class Server:
    """Serves ``handler(request) -> Response`` (sync or async) on streams:
    pass ``handle`` to ``asyncio.start_server``.

    ``stopping`` (an asyncio.Event) makes every open connection close after
    its current answer; ``close_connections`` aborts them all at once.
    """

    def __init__(self, handler, *, stopping: asyncio.Event, limits: Limits | None = None):
        self._handler = handler
        self._stopping = stopping
        self.limits = limits or Limits()
        self._writers: set[asyncio.StreamWriter] = set()
        self.requests = 0

    @property
    def connections(self) -> int:
        return len(self._writers)

    def close_connections(self) -> None:
        """Abort every open connection (used as a service resource)."""
        for writer in list(self._writers):
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._writers.add(writer)
        conn = _Connection(reader, writer, self.limits)
        try:
            if len(self._writers) > self.limits.max_connections or self._stopping.is_set():
                await conn.fail(503, "server busy or stopping")
            else:
                await self._serve(conn)
        except (ConnectionError, asyncio.TimeoutError):
            pass            # the client went away or would not read our answer
        except asyncio.CancelledError:
            # The service is ending and cancels its tasks.  Python 3.11's
            # StreamReaderProtocol logs "Exception in callback" for a
            # cancelled connection task (fixed in 3.12), so end normally:
            # this is the outermost frame of the task, nothing else waits.
            pass
        except Exception:
            # A bug here must not escape into asyncio's client_connected_cb
            # logging or affect other clients.
            log.exception("HTTP connection failed")
        finally:
            self._writers.discard(writer)
            await _close(writer)

    async def _serve(self, conn: _Connection) -> None:
        while True:
            try:
                event = await conn.next_request()
                if event is None:
                    return
                req = _to_request(event)
                length = req.headers.get("content-length")
                if length is not None and int(length) > self.limits.max_body:
                    raise HTTPError(413, f"body larger than {self.limits.max_body} bytes")
                req.body = await conn.read_body()
            except h11.RemoteProtocolError as exc:
                return await conn.fail(exc.error_status_hint, str(exc))
            except _Timeout:
                return await conn.fail(408, "request not complete in time")
            except HTTPError as exc:
                return await conn.fail(exc.status, exc.message, exc.headers)
            resp = await self._answer(req)
            self.requests += 1
            await conn.respond(resp, close=self._stopping.is_set())
            if conn.h11.our_state is not h11.DONE or conn.h11.their_state is not h11.DONE:
                return      # HTTP/1.0, "Connection: close" or stopping
            conn.h11.start_next_cycle()
            conn.method = b""

    async def _answer(self, req: Request) -> Response:
        try:
            result = self._handler(req)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        except HTTPError as exc:
            return Response(exc.status, {"error": exc.message}, exc.headers)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed for %s %s", req.method, req.path)
            return Response(500, {"error": "internal error (see the log)"})


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close the connection and wait until it is gone.  Waiting is what marks
    a reset connection's error as seen; otherwise asyncio may log "Future
    exception was never retrieved" when the stream is collected."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_WAIT)
    except (OSError, asyncio.TimeoutError):
        writer.transport.abort()
    except asyncio.CancelledError:
        # Cancelled while closing: the outermost frame of the task, as in
        # handle(), so end normally.
        writer.transport.abort()
