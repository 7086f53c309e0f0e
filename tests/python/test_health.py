"""bgloop.health() and the health service: the dict, the loop's lag while a
callback blocks, /healthz and /readyz as services change, and bad clients
(malformed, oversized, slow, too many) that must not take it down."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time

import pytest

import bgloop
from bgloop import _bgloop
from _ports_util import rundir  # noqa: F401
from _services_util import clean, drive, run, settle, state  # noqa: F401

health_mod = sys.modules["bgloop.health"]   # bgloop.health is the function
pytestmark = pytest.mark.usefixtures("clean")

KEYS = {"ready", "services", "failed", "monitored", "lag", "lag_max", "last_tick_age"}


def _waiting_service(name, gate, owner="app"):
    @bgloop.service(name, owner=owner, stop_timeout=1.0)
    async def svc(ctx):
        await gate.wait()
        ctx.ready()
        await ctx.stopping.wait()
    return svc


def test_the_dict_follows_the_services():
    gate = asyncio.Event()
    _waiting_service("app.web", gate)

    @bgloop.service("app.broken", owner="broken")
    async def broken(ctx):
        raise RuntimeError("no config")

    h = bgloop.health()
    assert set(h) == KEYS and h["ready"] is False and h["monitored"] is False
    assert h["lag"] is None and h["last_tick_age"] is None
    assert h["services"]["app.web"] == {"state": "stopped", "owner": "app", "wanted": False,
                                        "error": None}
    bgloop.start_services("app")
    drive(lambda: state("app.web") == "starting")
    assert bgloop.health()["ready"] is False           # wanted, not running yet
    gate.set()
    drive(lambda: state("app.web") == "running")
    assert bgloop.health()["ready"] is True
    bgloop.start_services("broken")
    drive(lambda: state("app.broken") == "failed")
    h = bgloop.health()
    assert h["failed"] == ["app.broken"] and "no config" in h["services"]["app.broken"]["error"]
    assert h["ready"] is True       # a service failed for good is no longer wanted


def test_lag_is_measured_while_a_callback_blocks():
    loop = bgloop.ensure_loop()
    release = health_mod.monitor(0.02)
    try:
        assert bgloop.health()["monitored"] is True
        mgr = bgloop.services.manager()
        probe = mgr.lag_monitor.probe
        first = probe.stats()["samples"]
        drive(lambda: probe.stats()["samples"] > first)
        loop.call_soon(time.sleep, 0.3)                 # a callback blocking the loop
        before = probe.stats()["samples"]
        drive(lambda: probe.stats()["samples"] > before + 1)
        h = bgloop.health()
        assert h["lag_max"] >= 0.25, h
        assert h["last_tick_age"] < h["lag_max"]
    finally:
        release()
    assert bgloop.health()["monitored"] is False
    assert mgr.lag_monitor is None and probe.closed
    release()                                           # harmless twice


def test_the_probe_refuses_bad_periods():
    core = bgloop.ensure_loop()._core
    with pytest.raises(ValueError, match="period must be > 0"):
        _bgloop.LagProbe(core, 0)
    with pytest.raises(TypeError, match="period"):
        _bgloop.LagProbe(core, "1")
    with pytest.raises(TypeError, match="core"):
        _bgloop.LagProbe(object(), 1.0)
    probe = _bgloop.LagProbe(core, 10.0)
    probe.close()
    with pytest.raises(RuntimeError, match="closed"):
        probe.stats()


# ---- the HTTP service -------------------------------------------------------------

async def _exchange(port, data: bytes, *, wait=5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()


def _get(port, path, method="GET") -> tuple[int, dict, bytes]:
    raw = run(_exchange(port, f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close"
                              f"\r\n\r\n".encode()))
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.fixture
def endpoint(rundir):  # noqa: F811
    ep = bgloop.health_service(port=0, timeout=0.5, max_connections=4, max_header=1024)
    bgloop.start_services(ep.owner)
    drive(lambda: ep.port is not None)
    return ep


def test_healthz_and_readyz_follow_the_services(endpoint):
    status, headers, body = _get(endpoint.port, "/healthz")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body)["alive"] is True
    assert _get(endpoint.port, "/readyz")[0] == 200
    gate = asyncio.Event()
    _waiting_service("app.slow", gate)
    bgloop.start_services("app")
    drive(lambda: state("app.slow") == "starting")
    status, _, body = _get(endpoint.port, "/readyz")
    assert status == 503
    doc = json.loads(body)
    assert doc["ready"] is False and doc["services"]["app.slow"]["state"] == "starting"
    assert _get(endpoint.port, "/healthz")[0] == 200   # alive all the same
    gate.set()
    drive(lambda: state("app.slow") == "running")
    assert _get(endpoint.port, "/readyz?verbose=1")[0] == 200
    assert json.loads(_get(endpoint.port, "/healthz")[2])["monitored"] is True


def test_other_paths_and_methods(endpoint):
    assert _get(endpoint.port, "/")[0] == 404
    status, headers, _ = _get(endpoint.port, "/readyz", method="DELETE")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, body = _get(endpoint.port, "/healthz", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_keep_alive_answers_several_requests(endpoint):
    req = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    raw = run(_exchange(endpoint.port, req + req + req.replace(b"\r\n\r\n",
                                                                 b"\r\nConnection: close\r\n\r\n")))
    assert raw.count(b"HTTP/1.1 200 OK") == 3


@pytest.mark.parametrize("request_bytes, status", [
    (b"THIS IS NOT HTTP\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\n\r\n", 400),                        # no Host
    # Past the limit before the head is complete (more than one read).
    (b"GET /healthz HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 40000 + b"\r\n\r\n", 431),
])
def test_bad_requests_get_an_error_and_the_service_stays_up(endpoint, request_bytes, status):
    raw = run(_exchange(endpoint.port, request_bytes))
    assert raw.startswith(f"HTTP/1.1 {status} ".encode()), raw[:80]
    assert _get(endpoint.port, "/healthz")[0] == 200
    assert state(endpoint.name) == "running"


def test_a_slow_client_gets_408(endpoint):
    async def slow():
        reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")           # and nothing more
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10.0)     # then the server hangs up
        writer.close()
        return data

    assert run(slow()).startswith(b"HTTP/1.1 408 ")
    assert _get(endpoint.port, "/healthz")[0] == 200


def test_connections_beyond_the_bound_get_503(endpoint):
    async def crowd():
        conns = [await asyncio.open_connection("127.0.0.1", endpoint.port) for _ in range(8)]
        answers = [await asyncio.wait_for(reader.read(), 10.0) for reader, _ in conns]
        for _, writer in conns:
            writer.close()
        return answers

    # 4 are served (idle, then closed by the timeout), the others refused.
    answers = run(crowd())
    assert answers[:4] == [b""] * 4
    assert all(a.startswith(b"HTTP/1.1 503 ") for a in answers[4:]), answers
    assert _get(endpoint.port, "/readyz")[0] == 200


def test_the_listener_goes_with_the_service(endpoint):
    port = endpoint.port
    bgloop.stop_services(endpoint.owner)
    assert endpoint.port is None and health_mod.health()["monitored"] is False
    with pytest.raises(OSError):
        run(_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"))


def test_without_h11_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "h11", None)
    with pytest.raises(ImportError, match="h11"):
        bgloop.health_service(port=0)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"port": "80"}, TypeError, "port"),
    ({"port": 70000}, ValueError, "port"),
    ({"max_connections": 0}, ValueError, "max_connections"),
    ({"timeout": None}, TypeError, "timeout"),
    ({"period": -1}, ValueError, "period"),
])
def test_bad_arguments_name_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words):
        bgloop.health_service(**kwargs)


def test_stopping_with_open_connections_logs_nothing(endpoint, caplog):
    async def open_idle():
        reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")   # kept alive
        await writer.drain()
        await reader.read(1)                                          # an answer began
        return reader, writer

    reader, writer = run(open_idle())
    with caplog.at_level(logging.WARNING):
        bgloop.stop_services(endpoint.owner)
        settle()
    writer.close()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
