"""A deliberately small HTTP/1.1 server on asyncio streams.

Blender ships no aiohttp, and an add-on should not need it for a JSON API, so
this module parses just enough HTTP/1.1: request line, headers, a body with
Content-Length, keep-alive.  Everything it does not understand gets a 4xx/5xx
answer and the connection is closed; a handler that raises gets a plain 500
(the traceback goes to the log, never to the client).  Slow or silent clients
are dropped after a timeout, so nobody can keep the service stuck.
"""

from __future__ import annotations

import asyncio
import json
import logging

log = logging.getLogger("bgloop_demo.http")

MAX_LINE = 8 * 1024          # request line or one header line
MAX_HEADERS = 64
MAX_BODY = 64 * 1024
READ_TIMEOUT = 10.0          # seconds a client gets for one request
IDLE_TIMEOUT = 15.0          # keep-alive wait for the next request

REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
    401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Content",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class HTTPError(Exception):
    """Raised by the parser or a handler: becomes a JSON error answer."""

    def __init__(self, status: int, message: str, *, close: bool = False, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.headers = dict(headers or {})


class Request:
    __slots__ = ("method", "path", "query", "version", "headers", "body")

    def __init__(self, method, path, query, version, headers, body):
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
        self.body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        self.headers = dict(headers or {})


async def _read_line(reader: asyncio.StreamReader, timeout: float) -> bytes:
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    except asyncio.LimitOverrunError:
        raise HTTPError(431, "request line or header too long", close=True) from None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise HTTPError(400, "connection closed in the middle of a request",
                            close=True) from None
        raise EOFError from None
    if len(line) > MAX_LINE:
        raise HTTPError(431, "request line or header too long", close=True)
    return line.rstrip(b"\r\n")


async def read_request(reader: asyncio.StreamReader, idle_timeout: float) -> Request:
    """Parse one request.  EOFError: the client closed between requests."""
    line = await _read_line(reader, idle_timeout)
    while line == b"":                       # tolerate stray CRLF between requests
        line = await _read_line(reader, READ_TIMEOUT)
    try:
        method, target, version = line.decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        raise HTTPError(400, "malformed request line", close=True) from None
    if not version.startswith("HTTP/1."):
        raise HTTPError(505, f"unsupported protocol {version!r}", close=True)
    if not method.isalpha() or not method.isupper():
        raise HTTPError(400, f"malformed method {method!r}", close=True)
    if not target.startswith("/"):
        raise HTTPError(400, "request target must be an absolute path", close=True)
    path, _, query = target.partition("?")

    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        raw = await _read_line(reader, READ_TIMEOUT)
        if raw == b"":
            break
        name, sep, value = raw.partition(b":")
        if not sep or not name or name != name.strip():
            raise HTTPError(400, "malformed header line", close=True)
        try:
            key = name.decode("ascii").lower()
            text = value.decode("latin-1").strip()
        except UnicodeDecodeError:
            raise HTTPError(400, "non-ASCII header name", close=True) from None
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    else:
        raise HTTPError(431, f"more than {MAX_HEADERS} headers", close=True)

    if "transfer-encoding" in headers:
        raise HTTPError(501, "Transfer-Encoding is not supported; send Content-Length",
                        close=True)
    body = b""
    length_text = headers.get("content-length")
    if length_text is not None:
        if not length_text.isdigit():
            raise HTTPError(400, f"bad Content-Length {length_text!r}", close=True)
        length = int(length_text)
        if length > MAX_BODY:
            raise HTTPError(413, f"body larger than {MAX_BODY} bytes", close=True)
        try:
            body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
        except asyncio.IncompleteReadError:
            raise HTTPError(400, "connection closed before the body was complete",
                            close=True) from None
    elif method in ("POST", "PUT", "PATCH"):
        raise HTTPError(411, "Content-Length required", close=True)
    return Request(method, path, query, version, headers, body)


async def _linger(reader: asyncio.StreamReader) -> None:
    """Read and drop what the client still sends before we close: closing a
    socket with unread input sends a RST, which can destroy our error answer
    before the client reads it."""
    async def drop_input():
        total = 0
        while total < 16 * MAX_BODY:
            chunk = await reader.read(MAX_BODY)
            if not chunk:
                return
            total += len(chunk)
    try:
        await asyncio.wait_for(drop_input(), 1.0)
    except (asyncio.TimeoutError, ConnectionError, asyncio.LimitOverrunError):
        pass


def _encode(resp: Response, keep_alive: bool) -> bytes:
    head = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}",
            "Content-Type: application/json",
            f"Content-Length: {len(resp.body)}",
            "Connection: " + ("keep-alive" if keep_alive else "close")]
    head += [f"{k}: {v}" for k, v in resp.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + resp.body


class Server:
    """Serves ``handler(request) -> Response`` (sync or async) on streams.

    ``handler`` raises HTTPError for client mistakes.  ``stopping`` (an
    asyncio.Event) makes every open connection finish its current answer and
    close, so a stop never waits for an idle keep-alive client.
    """

    def __init__(self, handler, *, stopping: asyncio.Event, max_connections: int = 64):
        self._handler = handler
        self._stopping = stopping
        self._max = max_connections
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
        if len(self._writers) >= self._max or self._stopping.is_set():
            writer.write(_encode(Response(503, {"error": "server busy or stopping"}), False))
            writer.close()
            return
        self._writers.add(writer)
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.TimeoutError, EOFError):
            pass
        except asyncio.CancelledError:
            # The service is ending and cancels its tasks.  Python 3.11's
            # StreamReaderProtocol logs "Exception in callback" for a
            # cancelled connection task (fixed in 3.12), so end normally:
            # this is the outermost frame of the task, nothing else waits.
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve_connection(self, reader, writer):
        idle = IDLE_TIMEOUT
        while not self._stopping.is_set():
            try:
                req = await read_request(reader, idle)
            except HTTPError as exc:
                writer.write(_encode(Response(exc.status, {"error": exc.message}), False))
                await writer.drain()
                await _linger(reader)
                return
            resp = await self._answer(req)
            self.requests += 1
            keep = (req.version == "HTTP/1.1"
                    and req.headers.get("connection", "").lower() != "close"
                    and not self._stopping.is_set())
            writer.write(_encode(resp, keep))
            await writer.drain()
            if not keep:
                return

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
            return Response(500, {"error": "internal error (see the Blender console)"})
