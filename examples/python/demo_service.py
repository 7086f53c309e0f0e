"""bgloop demo: three services on one loop, kept alive by ``bgloop.serve()``.

* ``store``  - shared in-memory state, ready at once;
* ``ticker`` - a periodic job (depends on store) counting seconds;
* ``http``   - an HTTP/1.1 keep-alive JSON server on 127.0.0.1 (depends on
  store), answering ``GET /`` (the state), ``GET /status`` (bgloop.status())
  and ``GET /hello?name=...``.

Run it with either of::

    python examples/python/demo_service.py
    python -m bgloop serve examples.python.demo_service

``BGLOOP_DEMO_PORT`` picks the port (default 8765; 0 = any free port).  The
address is printed on stdout as soon as the server listens; Ctrl+C or SIGTERM
stops everything cleanly (exit status 0).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from urllib.parse import parse_qs, urlsplit

import bgloop

OWNER = "demo"
state: dict = {}


@bgloop.service("store", owner=OWNER)
async def store(ctx):
    state.clear()
    state.update(started=time.time(), ticks=0, requests=0)
    ctx.resources.push(state.clear)  # nothing survives a restart
    ctx.ready()
    await ctx.stopping.wait()


@bgloop.service("ticker", owner=OWNER, depends_on=("store",), restart="on-failure")
async def ticker(ctx):
    ctx.ready()
    while not ctx.stopping.is_set():
        try:
            await asyncio.wait_for(ctx.stopping.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            state["ticks"] = state.get("ticks", 0) + 1


def _route(target: str) -> tuple[int, dict]:
    url = urlsplit(target)
    if url.path == "/":
        uptime = time.time() - state.get("started", time.time())
        return 200, {"service": "bgloop demo", "ticks": state.get("ticks", 0),
                     "requests": state.get("requests", 0), "uptime": round(uptime, 3)}
    if url.path == "/status":
        return 200, bgloop.status()
    if url.path == "/hello":
        name = parse_qs(url.query).get("name", ["world"])[0]
        return 200, {"hello": name}
    return 404, {"error": f"no route {url.path}"}


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = (lines[0].split(" ", 2) + ["", ""])[:3]
            headers = {}
            for line in lines[1:]:
                key, sep, value = line.partition(":")
                if sep:
                    headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(length)
            state["requests"] = state.get("requests", 0) + 1
            code, body = _route(target) if method in ("GET", "HEAD") else (405, {"error": method})
            payload = json.dumps(body, default=str).encode() + b"\n"
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            writer.write(
                f"HTTP/1.1 {code} {'OK' if code == 200 else 'Error'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode()
                + (payload if method != "HEAD" else b""))
            await writer.drain()
            if not keep:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass  # the client went away or sent garbage: just hang up
    except asyncio.CancelledError:
        # The http service is stopping and cancels its connections.  End
        # quietly: Python 3.11/3.12's start_server would log a cancelled
        # handler as an error.
        pass
    finally:
        writer.close()


@bgloop.service("http", owner=OWNER, depends_on=("store",), stop_timeout=2.0)
async def http(ctx):
    port = int(os.environ.get("BGLOOP_DEMO_PORT", "8765"))
    server = ctx.resources.push(await asyncio.start_server(_handle, "127.0.0.1", port))
    host, port = server.sockets[0].getsockname()[:2]
    print(f"demo: serving on http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    print(f"demo: try   curl -s http://{host}:{port}/   or   curl -s http://{host}:{port}/status",
          flush=True)
    ctx.ready()
    await ctx.stopping.wait()


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=bgloop.config.log_level(),
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    sys.exit(bgloop.serve())
