"""Health: ``bgloop.health()`` and an opt-in HTTP health service.

::

    bgloop.health_service(port=8766)          # GET /healthz and /readyz
    bgloop.start_services()

``health()`` returns a dict (the body of both endpoints)::

    {
      "ready": True,            # at least one service wanted, every wanted one running
      "services": {"web": {"state": "running", "owner": "my_addon",
                           "wanted": True, "error": None}, ...},
      "failed": [],             # services failed for good
      "monitored": True,        # a lag probe runs (while a health service does)
      "lag": 0.0003,            # seconds: how late the probe's last run was,
                                # or how overdue its next one is if that is more
      "lag_max": 0.0021,        # the latest run since monitoring began
      "last_tick_age": 0.41,    # seconds since the probe last ran on the loop
    }

``lag``, ``lag_max`` and ``last_tick_age`` are None while nothing monitors
the loop: the probe (libbgloop's ``bgl_lag``, ``bgloop/lag.h``) wakes the
loop once per period, so it runs only while a health service runs or
:func:`monitor` is held - an idle process otherwise keeps no wakeups.
Readiness is the service manager's rule (``bgl_services_ready()``), the
same one that sends systemd ``READY=1``.

The health service answers ``GET``/``HEAD`` ``/healthz`` (liveness: 200
with the dict whenever the loop runs the request at all) and ``/readyz``
(200 when ready, else 503, with the dict), 404 for other paths and 405 for
other methods.  It serves with :mod:`bgloop.httpd` (``h11``, ``pip install
bgloop[health]``) and stays up under bad clients: a malformed request gets
400, a head growing past ``max_header`` bytes 431, a request not complete
within ``timeout`` seconds 408 (an idle keep-alive connection is closed
then), and beyond ``max_connections`` open connections new ones get 503.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from . import _bgloop
from . import services as _services

__all__ = ["health", "health_service", "monitor", "HealthEndpoint", "LIVENESS_PATH",
           "READINESS_PATH", "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_PERIOD"]

log = logging.getLogger("bgloop.health")

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766
#: Seconds between runs of the lag probe.
DEFAULT_PERIOD = 1.0
DEFAULT_SERVICE = "bgloop.health"


# ---- the lag probe --------------------------------------------------------------

class LagMonitor:
    """One lag probe per service manager, held while anyone watches."""

    def __init__(self, core: Any, period: float):
        self.probe = _bgloop.LagProbe(core, period)
        self.users = 0

    def stats(self) -> dict | None:
        return None if self.probe.closed else self.probe.stats()


def monitor(period: float = DEFAULT_PERIOD) -> Callable[[], None]:
    """Watch the loop's lag: arms the probe (every ``period`` seconds; a
    probe already armed keeps its period) and returns a function that
    releases it - the probe stops once every holder released it.
    ValueError/TypeError name a bad period."""
    mgr = _services.manager()
    mon = mgr.lag_monitor
    if mon is None or mon.probe.closed:
        mon = mgr.lag_monitor = LagMonitor(mgr.loop._core, period)
    mon.users += 1
    released = False

    def release() -> None:
        nonlocal released
        if released:
            return
        released = True
        mon.users -= 1
        if mon.users == 0:
            mon.probe.close()
            if mgr.lag_monitor is mon:
                mgr.lag_monitor = None

    return release


def health() -> dict:
    """The process's health (see the module's documentation for the keys)."""
    mgr = _services.manager()
    c = mgr.c
    services = {}
    for name in c.names():
        info = c.info(name)
        services[name] = {"state": info["state"], "owner": info["owner"],
                          "wanted": info["wanted"], "error": info["error"]}
    mon = mgr.lag_monitor
    lag = mon.stats() if mon is not None else None
    return {
        "ready": c.all_ready(),
        "services": services,
        "failed": c.failed(),
        "monitored": lag is not None,
        "lag": max(lag["last"], lag["overdue"]) if lag else None,
        "lag_max": max(lag["max"], lag["overdue"]) if lag else None,
        "last_tick_age": lag["since_tick"] if lag else None,
    }


# ---- HTTP ---------------------------------------------------------------------------

def _httpd():
    try:
        import h11  # noqa: F401
    except ImportError:
        raise ImportError("bgloop.health_service() needs the 'h11' package: "
                          "pip install h11 (or bgloop[health])") from None
    from . import httpd

    return httpd


def _route(req) -> Any:
    httpd = _httpd()
    if req.path not in (LIVENESS_PATH, READINESS_PATH):
        return httpd.Response(404, {"error": f"no such endpoint: {req.path[:100]}"})
    if req.method not in ("GET", "HEAD"):
        return httpd.Response(405, {"error": f"{req.method[:20]} not allowed"},
                              {"Allow": "GET, HEAD", "Cache-Control": "no-store"})
    body = health()
    if req.path == LIVENESS_PATH:
        return httpd.Response(200, {"alive": True, **body}, {"Cache-Control": "no-store"})
    return httpd.Response(200 if body["ready"] else 503, body, {"Cache-Control": "no-store"})


class HealthEndpoint:
    """What :func:`health_service` registered: ``name``, ``owner``,
    ``host``, and ``port`` - the listening port while the service runs
    (also for port 0), else None."""

    def __init__(self, name: str, owner: str, host: str):
        self.name = name
        self.owner = owner
        self.host = host
        self.port: int | None = None

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<HealthEndpoint {self.name!r} {self.url or 'not listening'}>"


def health_service(name: str = DEFAULT_SERVICE, *, host: str = DEFAULT_HOST,
                   port: int = DEFAULT_PORT, owner: str = DEFAULT_SERVICE,
                   period: float = DEFAULT_PERIOD, max_connections: int = 32,
                   max_header: int = 8192, timeout: float = 5.0,
                   stop_timeout: float | None = None) -> HealthEndpoint:
    """Register the health service ``name`` (an ordinary bgloop service:
    start it with ``start_services()``, it stops with the others) serving
    ``/healthz`` and ``/readyz`` on ``host:port`` (port 0: a free port; the
    listener is published for ``python -m bgloop ls``).  While it runs, the
    loop's lag is monitored every ``period`` seconds.  ImportError naming
    h11 if it is not installed; TypeError/ValueError name bad arguments."""
    httpd = _httpd()
    if isinstance(period, bool) or not isinstance(period, (int, float)):
        raise TypeError(f"health_service(): period must be a number of seconds, not "
                        f"{type(period).__name__}")
    if not period > 0:
        raise ValueError(f"health_service(): period must be > 0 seconds, got {period!r}")
    for arg, value in (("max_connections", max_connections), ("max_header", max_header)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"health_service(): {arg} must be an int, not "
                            f"{type(value).__name__}")
        if value < 1:
            raise ValueError(f"health_service(): {arg} must be >= 1, got {value}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"health_service(): timeout must be a number of seconds, not "
                        f"{type(timeout).__name__}")
    if not timeout > 0:
        raise ValueError(f"health_service(): timeout must be > 0 seconds, got {timeout!r}")
    from .ports import _check_address

    _check_address(host, port)
    endpoint = HealthEndpoint(name, owner, host)

    async def serve_health(ctx):
        ctx.resources.push(monitor(period))
        limits = httpd.Limits(max_header_bytes=max_header, max_body=max_header,
                              header_timeout=float(timeout), body_timeout=float(timeout),
                              idle_timeout=float(timeout), send_timeout=float(timeout),
                              max_connections=max_connections)
        server = httpd.Server(_route, stopping=ctx.stopping, limits=limits)
        ctx.resources.push(server.close_connections)
        listener = await ctx.listen(server.handle, host, port)

        def gone() -> None:
            endpoint.port = None
        ctx.resources.push(gone)
        endpoint.port = listener.port
        ctx.ready()
        await ctx.stopping.wait()

    serve_health.__qualname__ = f"health_service.{name}"
    _services.service(name, owner=owner, stop_timeout=stop_timeout)(serve_health)
    return endpoint
