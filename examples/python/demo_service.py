"""bgloop demo: three services on one loop, kept alive by ``bgloop.serve()``.

* ``store``  - shared in-memory state, ready at once;
* ``ticker`` - a periodic job (depends on store) counting seconds;
* ``http``   - an HTTP/1.1 keep-alive JSON server on 127.0.0.1 (depends on
  store), answering ``GET /`` (the state), ``GET /status`` (bgloop.status())
  and ``GET /hello?name=...``.  HTTP comes from h11 (``pip install h11``)
  through bgloop.httpd, which also documents the limits: malformed requests
  get 400, oversized ones 413/431, slow ones 408.

Run it with either of::

    python examples/python/demo_service.py
    python -m bgloop serve examples.python.demo_service

``BGLOOP_DEMO_PORT`` picks the port (default 8765; 0 = any free port),
``BGLOOP_DEMO_HEADER_TIMEOUT`` the seconds a client gets to send a request's
headers (default 10).  The address is printed on stdout as soon as the server
listens; Ctrl+C or SIGTERM stops everything cleanly (exit status 0).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from urllib.parse import parse_qs

import bgloop
from bgloop import httpd

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


def _route(req) -> httpd.Response:
    state["requests"] = state.get("requests", 0) + 1
    if req.method not in ("GET", "HEAD"):
        return httpd.Response(405, {"error": req.method}, {"Allow": "GET, HEAD"})
    if req.path == "/":
        uptime = time.time() - state.get("started", time.time())
        return httpd.Response(200, {"service": "bgloop demo", "ticks": state.get("ticks", 0),
                                    "requests": state["requests"], "uptime": round(uptime, 3)})
    if req.path == "/status":
        return httpd.Response(200, bgloop.status())
    if req.path == "/hello":
        name = parse_qs(req.query).get("name", ["world"])[0]
        return httpd.Response(200, {"hello": name})
    return httpd.Response(404, {"error": f"no route {req.path}"})


def _limits() -> httpd.Limits:
    """BGLOOP_DEMO_HEADER_TIMEOUT (seconds) shortens the 408 wait for tests."""
    text = os.environ.get("BGLOOP_DEMO_HEADER_TIMEOUT", "").strip()
    if not text:
        return httpd.Limits()
    timeout = float(text)
    if not timeout > 0:
        raise ValueError(f"BGLOOP_DEMO_HEADER_TIMEOUT={text!r}: expected seconds > 0")
    return httpd.Limits(header_timeout=timeout)


@bgloop.service("http", owner=OWNER, depends_on=("store",), stop_timeout=2.0)
async def http(ctx):
    port = int(os.environ.get("BGLOOP_DEMO_PORT", "8765"))
    web = httpd.Server(_route, stopping=ctx.stopping, limits=_limits())
    # LIFO: the listening socket closes first, then open connections.
    ctx.resources.push(web.close_connections)
    # A resource of the service, listed by 'python -m bgloop ls' while it listens.
    listener = await ctx.listen(web.handle, "127.0.0.1", port)
    host, port = listener.host, listener.port
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
