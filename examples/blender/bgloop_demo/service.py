"""The demo's bgloop service: the HTTP/JSON API on the shared loop.

Owned by the add-on's package name, so disabling the add-on stops exactly
this service, the connection tasks it spawned and its listening socket.
"""

from __future__ import annotations

import asyncio
import logging

import bpy

import bgloop

from . import api, httpd, settings

log = logging.getLogger("bgloop_demo")

SERVICE = "bgloop_demo.http"
# The bound address of the running service, for the panel and the tests.
address: tuple[str, int] | None = None


def _status_snapshot():
    return {"services": bgloop.status(), "stats": dict(bgloop.stats())}


def _tag_sidebars():
    wm = getattr(bpy.context, "window_manager", None)
    for win in (wm.windows if wm else ()):
        for area in win.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


async def http_service(ctx):
    global address
    host, port, token = settings.resolve(ctx.owner)
    routes = api.Api(token, _status_snapshot)
    server_state = httpd.Server(routes, stopping=ctx.stopping, limits=settings.limits())

    # Old-file references must go on load: here only a counter, but a real
    # service would drop cached bpy data in this callback.
    def on_load_post(*_args):
        routes.loads += 1
    subscribe = getattr(getattr(bgloop, "blender", None), "subscribe", None)
    if subscribe is not None:
        ctx.resources.push(subscribe("load_post", on_load_post))

    # LIFO: the listening socket closes first, then open connections.
    ctx.resources.push(server_state.close_connections)
    server = await asyncio.start_server(server_state.handle, host, port, reuse_address=True)
    ctx.resources.push(server)
    address = server.sockets[0].getsockname()[:2]

    def forget_address():
        global address
        address = None
    ctx.resources.push(forget_address)

    # Tests and service scripts read this line to find an ephemeral port.
    print(f"bgloop_demo: listening on http://{address[0]}:{address[1]}", flush=True)
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("bgloop_demo: listening on %s, reachable from other machines", host)
    ctx.ready()

    if bpy.app.background:
        await ctx.stopping.wait()       # no periodic wakeups when headless
        return
    # In the GUI, refresh the sidebar when the service list changes.
    last = None
    while not ctx.stopping.is_set():
        now = {n: (s["state"], s["restarts"]) for n, s in bgloop.status().items()}
        if now != last:
            last = now
            _tag_sidebars()
        try:
            await asyncio.wait_for(ctx.stopping.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


def register(owner: str) -> None:
    bgloop.ensure_loop()
    bgloop.service(SERVICE, owner=owner, stop_timeout=3.0)(http_service)
    bgloop.start_services(owner=owner)


def unregister(owner: str) -> None:
    bgloop.stop_services(owner=owner)
    bgloop.forget_services(owner=owner)
