"""ctx.listen(): free and fixed ports, clashes that name the holder, the
discovery file's life (written on listen, gone on stop, restart and exit),
tokens, an unusable runtime directory, bad arguments."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import socket
import stat

import bgloop
import pytest
from bgloop import discovery, ports
from bgloop.context import ServiceContext
from bgloop.ports import Listener, PortInUseError

from _ports_util import holders, rundir  # noqa: F401
from _services_util import clean, drive, run, state  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean", "rundir")


async def greet(reader, writer):
    writer.write(b"hi\n")
    await writer.drain()
    writer.close()


async def fetch_line(port: int, host: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        return await reader.readline()
    finally:
        writer.close()


def listening_service(name: str, listeners: list, errors: list | None = None, **listen_kw):
    """Register a service that listens with ``listen_kw`` and stays up;
    its listener (or the exception) is appended to ``listeners`` / ``errors``."""
    @bgloop.service(name, owner="t", stop_timeout=2.0)
    async def svc(ctx):
        try:
            listeners.append(await ctx.listen(listen_kw.pop("handler", greet), **listen_kw))
        except Exception as exc:
            if errors is None:
                raise
            errors.append(exc)
        ctx.ready()
        await ctx.stopping.wait()
    return svc


def start_and_wait(name: str) -> None:
    bgloop.start_services()
    drive(lambda: state(name) in ("running", "failed"))


def test_port_zero_picks_a_free_port_and_answers(rundir):
    listeners: list[Listener] = []
    listening_service("api", listeners)
    start_and_wait("api")
    (listener,) = listeners
    assert listener.port > 0 and listener.host == "127.0.0.1"
    assert listener.address == f"127.0.0.1:{listener.port}"
    assert listener.sockets[0].getsockname()[1] == listener.port
    assert run(fetch_line(listener.port)) == b"hi\n"


def test_discovery_file_describes_the_listener(rundir):
    listeners: list[Listener] = []
    listening_service("api", listeners)
    start_and_wait("api")
    (listener,) = listeners
    assert listener.discovery_file is not None and listener.discovery_file.parent == rundir
    data = json.loads(listener.discovery_file.read_text())
    assert data["pid"] == os.getpid() and data["owner"] == "t" and data["service"] == "api"
    assert (data["host"], data["port"]) == ("127.0.0.1", listener.port)
    assert data["token_file"] is None and data["started"] == listener.record.started
    assert data["process_start"] == discovery.process_start()
    assert stat.S_IMODE(rundir.stat().st_mode) == 0o700
    assert [p.name for p in rundir.iterdir()] == [listener.discovery_file.name]  # no temp left


def test_file_removed_and_port_released_on_stop(rundir):
    listeners: list[Listener] = []
    listening_service("api", listeners)
    start_and_wait("api")
    (listener,) = listeners
    bgloop.stop_services()
    assert not listener.discovery_file.exists()
    assert discovery.Directory().records() == []
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", listener.port))


def test_restart_replaces_the_file(rundir):
    listeners: list[Listener] = []
    leave = asyncio.Event()

    @bgloop.service("flaky", owner="t", restart="always", restart_delay=0.01)
    async def flaky(ctx):
        listeners.append(await ctx.listen(greet))
        ctx.ready()
        if len(listeners) == 1:
            await leave.wait()  # the first run ends on its own: restarted
            return
        await ctx.stopping.wait()

    start_and_wait("flaky")
    first = listeners[0]
    assert first.discovery_file.exists()
    leave.set()
    drive(lambda: len(listeners) == 2 and state("flaky") == "running")
    second = listeners[1]
    records = discovery.Directory().records()
    assert [(r.service, r.port, r.started) for r in records] == \
        [("flaky", second.port, second.record.started)]
    assert second.discovery_file.exists()
    assert first.discovery_file == second.discovery_file or not first.discovery_file.exists()
    assert run(fetch_line(second.port)) == b"hi\n"


def test_fixed_port_in_use_by_this_process_names_the_service(rundir):
    listeners: list[Listener] = []
    errors: list[Exception] = []
    listening_service("first", listeners)
    start_and_wait("first")
    port = listeners[0].port
    listening_service("second", listeners, errors, port=port)
    start_and_wait("second")
    (exc,) = errors
    assert isinstance(exc, PortInUseError) and isinstance(exc, OSError)
    assert exc.errno == errno.EADDRINUSE and exc.port == port and exc.host == "127.0.0.1"
    assert exc.holder is not None and exc.holder.service == "first"
    text = str(exc)
    assert f"127.0.0.1:{port}" in text and "'first'" in text and f"pid {os.getpid()}" in text
    assert len(list(rundir.iterdir())) == 1  # the failed listen published nothing


def test_fixed_port_in_use_by_another_bgloop_process_names_its_pid(rundir, holders):
    holder = holders(name="render-api", owner="farm").listening()
    errors: list[Exception] = []
    listening_service("mine", [], errors, port=holder.port)
    start_and_wait("mine")
    (exc,) = errors
    assert isinstance(exc, PortInUseError) and exc.errno == errno.EADDRINUSE
    assert exc.holder.pid == holder.pid
    text = str(exc)
    assert f"127.0.0.1:{holder.port}" in text
    assert f"pid {holder.pid}" in text and "'render-api'" in text and "'farm'" in text


def test_fixed_port_in_use_by_a_stranger_says_so(rundir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        errors: list[Exception] = []
        listening_service("mine", [], errors, port=port)
        start_and_wait("mine")
    (exc,) = errors
    assert isinstance(exc, PortInUseError) and exc.holder is None
    assert f"127.0.0.1:{port}" in str(exc) and "not a bgloop service" in str(exc)


def test_fixed_free_port_is_used(rundir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    listeners: list[Listener] = []
    listening_service("fixed", listeners, port=port)
    start_and_wait("fixed")
    assert listeners[0].port == port
    assert run(fetch_line(port)) == b"hi\n"


def test_protocol_factory(rundir):
    class Upper(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data.upper())
            self.transport.close()

    listeners: list[Listener] = []

    @bgloop.service("proto", owner="t")
    async def proto(ctx):
        listeners.append(await ctx.listen(protocol=Upper))
        ctx.ready()
        await ctx.stopping.wait()

    start_and_wait("proto")

    async def talk(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"abc\n")
        line = await reader.readline()
        writer.close()
        return line

    assert run(talk(listeners[0].port)) == b"ABC\n"


def test_token_is_written_privately_and_removed_on_stop(rundir):
    listeners: list[Listener] = []
    listening_service("secret", listeners, token=True)
    start_and_wait("secret")
    (listener,) = listeners
    assert listener.token and len(listener.token) >= 32
    token_file = listener.token_file
    assert token_file is not None and token_file.read_text().strip() == listener.token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(listener.discovery_file.read_text())["token_file"] == str(token_file)
    bgloop.stop_services()
    assert not token_file.exists() and not listener.discovery_file.exists()


def test_given_token_is_used(rundir):
    listeners: list[Listener] = []
    listening_service("secret", listeners, token="s3cret-value")
    start_and_wait("secret")
    assert listeners[0].token == "s3cret-value"
    assert listeners[0].token_file.read_text().strip() == "s3cret-value"


def test_close_early_stops_listening_and_unpublishes(rundir):
    listeners: list[Listener] = []
    listening_service("api", listeners)
    start_and_wait("api")
    (listener,) = listeners
    listener.close()
    run(listener.wait_closed())
    assert not listener.discovery_file.exists()
    assert state("api") == "running"
    with pytest.raises(ConnectionRefusedError):
        run(fetch_line(listener.port))


def test_unwritable_runtime_dir_warns_once_and_still_listens(rundir, caplog, monkeypatch):
    rundir.write_text("a file where the directory should be")
    monkeypatch.setattr(ports, "_publications", None)  # this process has not warned yet
    listeners: list[Listener] = []
    caplog.set_level(logging.WARNING, logger="bgloop.ports")
    listening_service("one", listeners)
    listening_service("two", listeners, token=True)
    start_and_wait("one")
    start_and_wait("two")
    assert [listener.discovery_file for listener in listeners] == [None, None]
    assert listeners[1].token and listeners[1].token_file is None
    for listener in listeners:
        assert run(fetch_line(listener.port)) == b"hi\n"
    (warning,) = [r for r in caplog.records if r.name == "bgloop.ports"]
    assert warning.levelno == logging.WARNING and str(rundir) in warning.getMessage()


@pytest.mark.parametrize("port, error", [
    (-1, ValueError), (65536, ValueError), ("8080", TypeError), (80.5, TypeError),
    (True, TypeError), (None, TypeError)])
def test_bad_port_is_refused(port, error):
    with pytest.raises(error, match="port"):
        run(ServiceContext("x", "t", bgloop.ensure_loop(), lambda: None,
                           lambda obj: None).listen(greet, port=port))


@pytest.mark.parametrize("host, error", [
    (None, TypeError), (123, TypeError), (b"127.0.0.1", TypeError), (("127.0.0.1",), TypeError),
    ("", ValueError), ("  ", ValueError)])
def test_bad_host_is_refused(host, error):
    with pytest.raises(error, match="host"):
        run(ServiceContext("x", "t", bgloop.ensure_loop(), lambda: None,
                           lambda obj: None).listen(greet, host=host))


@pytest.mark.parametrize("kwargs, match", [
    ({}, "neither"),
    ({"handler": greet, "protocol": asyncio.Protocol}, "both"),
    ({"handler": "greet"}, "callable"),
    ({"handler": greet, "token": 5}, "token"),
    ({"handler": greet, "token": ""}, "token"),
    ({"handler": greet, "backlog": -1}, "backlog"),
    ({"protocol": asyncio.Protocol, "limit": 1024}, "limit")])
def test_bad_arguments_are_refused(kwargs, match):
    ctx = ServiceContext("x", "t", bgloop.ensure_loop(), lambda: None, lambda obj: None)
    with pytest.raises((TypeError, ValueError), match=match):
        run(ctx.listen(**kwargs))


def test_a_refused_listen_fails_the_service_with_the_reason(rundir):
    @bgloop.service("bad", owner="t")
    async def bad(ctx):
        await ctx.listen(greet, port=70000)

    start_and_wait("bad")
    assert "port 70000 is out of range" in bgloop.status()["bad"]["error"]
    assert not rundir.exists() or not any(rundir.iterdir())
