"""The demo's bgloop service: the HTTP/JSON API on the shared loop.

Owned by the add-on's package name, so disabling the add-on stops exactly
this service, the connection tasks it spawned and its listening socket.
"""

from __future__ import annotations

import logging

import bpy

import bgloop

from bgloop import httpd

from . import api, settings

log = logging.getLogger("bgloop_demo")

SERVICE = "bgloop_demo.http"
# The bound address of the running service, for the panel and the tests.
address: tuple[str, int] | None = None


def _status_snapshot():
    return {"services": bgloop.status(), "stats": dict(bgloop.stats())}


def _tag_sidebars(*_transition):
    """A state hook: the sidebar redraws on every service transition."""
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
    # A resource of the service; 'python -m bgloop ls' lists it while it listens.
    listener = await ctx.listen(server_state.handle, host, port)
    address = (listener.host, listener.port)

    def forget_address():
        global address
        address = None
    ctx.resources.push(forget_address)

    # Tests and service scripts read this line to find an ephemeral port.
    print(f"bgloop_demo: listening on http://{address[0]}:{address[1]}", flush=True)
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("bgloop_demo: listening on %s, reachable from other machines", host)
    ctx.ready()
    await ctx.stopping.wait()


def register(owner: str) -> None:
    bgloop.ensure_loop()
    bgloop.service(SERVICE, owner=owner, stop_timeout=3.0)(http_service)
    if not bpy.app.background:
        # Every add-on's services, not only ours: the panel lists them all.
        # Dropped by forget_services(owner) when the add-on is disabled.
        bgloop.on_state_change(_tag_sidebars, owner=owner)
    bgloop.start_services(owner=owner)


def unregister(owner: str) -> None:
    bgloop.stop_services(owner=owner)
    bgloop.forget_services(owner=owner)
