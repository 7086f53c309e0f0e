"""bgloop services: pushed resources closed LIFO when a service ends."""

from __future__ import annotations

import asyncio

import bgloop
import pytest

from _services_util import clean, drive, run, settle, state  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean")


class Closable:
    def __init__(self, log, name, fail=False):
        self.log, self.name, self.fail = log, name, fail

    def close(self):
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} refuses")


class AsyncClosable:
    def __init__(self, log, name):
        self.log, self.name = log, name

    async def aclose(self):
        await asyncio.sleep(0)
        self.log.append(self.name)


class WaitClosable:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def close(self):
        self.log.append(f"{self.name}.close")

    async def wait_closed(self):
        await asyncio.sleep(0)
        self.log.append(f"{self.name}.wait_closed")


def test_resources_close_lifo_past_a_failing_close():
    log = []

    @bgloop.service("res", owner="t")
    async def res(ctx):
        ctx.resources.push(Closable(log, "first"))
        ctx.resources.push(AsyncClosable(log, "async"))
        ctx.resources.push(Closable(log, "broken", fail=True))
        ctx.resources.push(WaitClosable(log, "server"))
        ctx.resources.push(lambda: log.append("callable"))

        async def acall():
            log.append("async callable")
        ctx.resources.push(acall)
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("res") == "running")
    assert bgloop.status()["res"]["resources"] == 6
    bgloop.stop_services()
    assert log == ["async callable", "callable", "server.close", "server.wait_closed",
                   "broken", "async", "first"]
    st = bgloop.status()["res"]
    assert st["resources"] == 0
    report = bgloop.services.manager().report("res")
    assert report["failed"] == 1 and report["closed"] == 5
    assert "broken refuses" in report["errors"]


def test_resources_close_when_service_fails_on_its_own():
    log = []

    @bgloop.service("crash", owner="t")
    async def crash(ctx):
        ctx.resources.push(Closable(log, "a"))
        ctx.resources.push(Closable(log, "b"))
        ctx.ready()
        raise KeyError("gone")

    bgloop.start_services()
    drive(lambda: state("crash") == "failed")
    assert log == ["b", "a"]
    assert bgloop.status()["crash"]["error"] == "KeyError: 'gone'"


def test_push_rejects_what_cannot_be_closed():
    errors = []

    @bgloop.service("pusher", owner="t")
    async def pusher(ctx):
        for bad in (None, 42, object()):
            try:
                ctx.resources.push(bad)
            except TypeError as exc:
                errors.append(str(exc))
        ctx.ready()

    bgloop.start_services()
    drive(lambda: state("pusher") == "exited")
    assert len(errors) == 3 and "int" in errors[1] and "object" in errors[2]


def test_push_after_the_service_ended_closes_at_once():
    log, kept = [], []

    @bgloop.service("ended", owner="t")
    async def ended(ctx):
        kept.append(ctx)
        ctx.ready()

    bgloop.start_services()
    drive(lambda: state("ended") == "exited")
    with pytest.raises(RuntimeError, match="has ended"):
        kept[0].resources.push(Closable(log, "late"))
    assert log == ["late"]


def _port_is_free(port: int) -> bool:
    """Can a new server listen there (with SO_REUSEADDR, as asyncio's
    servers do, so connections in TIME_WAIT do not count)?"""
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_server_and_writers_closed_and_port_free_right_after_stop():
    info = {}

    async def handle(reader, writer):
        try:
            writer.write(await reader.readline())
            await writer.drain()
            await reader.read()  # keep the connection open until cancelled
        except asyncio.CancelledError:
            # Python 3.11/3.12's start_server reports a cancelled handler as
            # an unhandled error (fixed in 3.13): end quietly instead.
            pass
        finally:
            writer.close()

    @bgloop.service("srv", owner="t", stop_timeout=2)
    async def srv(ctx):
        server = ctx.resources.push(await asyncio.start_server(handle, "127.0.0.1", 0))
        info["port"] = server.sockets[0].getsockname()[1]
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("srv") == "running")

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", info["port"])
        writer.write(b"ping\n")
        line = await reader.readline()
        return reader, writer, line

    reader, writer, line = run(client())
    assert line == b"ping\n"
    assert not _port_is_free(info["port"])
    bgloop.stop_services()
    assert state("srv") == "stopped"
    assert _port_is_free(info["port"])
    # The connection handler was cancelled with its service: the client sees EOF.
    assert run(reader.read()) == b""
    writer.close()


def test_stream_writers_pushed_are_closed():
    peer = {}

    async def accept(reader, writer):
        peer["eof"] = await reader.read()  # until the service's writer closes
        writer.close()

    async def make_server():
        return await asyncio.start_server(accept, "127.0.0.1", 0)

    server = run(make_server())
    port = server.sockets[0].getsockname()[1]

    @bgloop.service("client", owner="t")
    async def client(ctx):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        ctx.resources.push(writer)
        writer.write(b"hello")
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("client") == "running")
    bgloop.stop_services()
    drive(lambda: "eof" in peer)
    assert peer["eof"] == b"hello"
    server.close()
    run(server.wait_closed())


def test_a_close_that_hangs_is_abandoned_and_the_rest_still_closed():
    log = []
    release = asyncio.Event()

    class Hangs:
        async def aclose(self):
            log.append("hangs: started")
            await release.wait()
            log.append("hangs: finished late")

    @bgloop.service("hang", owner="t", stop_timeout=0.05)  # closes get max(0.05, 1) s
    async def hang(ctx):
        ctx.resources.push(Closable(log, "below"))
        ctx.resources.push(Hangs())
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("hang") == "running")
    bgloop.stop_services()
    assert state("hang") == "stopped"
    assert log == ["hangs: started", "below"]
    report = bgloop.services.manager().report("hang")
    assert report["timed_out"] == 1 and report["closed"] == 1
    release.set()
    drive(lambda: len(log) == 3)


class _Idle(asyncio.Protocol):
    """A server-side connection that never does anything by itself."""


@pytest.mark.parametrize("kind", ["protocol", "streams"])
def test_a_pushed_server_closes_its_idle_client_connections(kind):
    info = {}

    async def leave_open(reader, writer):
        return None  # the connection outlives its handler

    @bgloop.service("srv", owner="t", stop_timeout=2)
    async def srv(ctx):
        if kind == "protocol":
            server = await ctx.loop.create_server(_Idle, "127.0.0.1", 0)
        else:
            server = await asyncio.start_server(leave_open, "127.0.0.1", 0)
        ctx.resources.push(server)
        info["port"] = server.sockets[0].getsockname()[1]
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.start_services()
    drive(lambda: state("srv") == "running")

    async def connect():
        return await asyncio.open_connection("127.0.0.1", info["port"])

    clients = [run(connect()) for _ in range(3)]
    settle()
    bgloop.stop_services()
    assert state("srv") == "stopped"
    # Every close completed (none waited for its timeout, none failed), and
    # every client was hung up on.
    report = bgloop.services.manager().report("srv")
    assert report == {"closed": 1, "failed": 0, "timed_out": 0, "errors": None}
    for reader, writer in clients:
        assert run(asyncio.wait_for(reader.read(), 5)) == b""
        writer.close()
    assert _port_is_free(info["port"])
