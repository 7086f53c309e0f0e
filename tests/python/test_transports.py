"""Socket transports, one body per behaviour, run on the stock loop, on
bgloop.Loop (its C transport) and on bgloop.Loop with BGLOOP_PY_TRANSPORTS=1
(asyncio's transport): the three must agree."""
import asyncio
import os
import re
import socket
import ssl
import sys
import tempfile
from asyncio import trsock

import pytest

import bgloop
from bgloop import config, transports
from _loop_util import CERTS, TRANSPORT_KINDS, _close, exc_log, run, transport_loop  # noqa: F401

@pytest.fixture(params=TRANSPORT_KINDS)
def loop(request, exc_log, monkeypatch):
    lp = transport_loop(request.param, monkeypatch)
    lp.set_exception_handler(exc_log)
    lp.kind = request.param
    try:
        yield lp
    finally:
        _close(lp)
    assert not exc_log.contexts, f"unexpected exception handler calls: {exc_log.contexts}"


def check_kind(loop, transport):
    """The transport is the one this run is about."""
    is_c = transports.AVAILABLE and isinstance(transport, transports.SocketTransport)
    assert is_c == (loop.kind == "bgloop"), (loop.kind, type(transport))


class Recorder(asyncio.Protocol):
    """Records every callback in order; `lost` resolves at connection_lost."""

    def __init__(self, loop, keep_open=False):
        self.events = []
        self.data = bytearray()
        self.keep_open = keep_open
        self.transport = None
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.eof = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data):
        assert isinstance(data, bytes)
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)


async def pair(loop, server_proto, client_proto, family=socket.AF_INET):
    """A connected (server transport, client transport) over TCP or a Unix
    socket, made by create_server/create_connection."""
    accepted = loop.create_future()

    def factory():
        p = server_proto()
        accepted.set_result(p)
        return p

    if family == socket.AF_UNIX:
        d = tempfile.mkdtemp()
        path = os.path.join(d, "s")
        server = await loop.create_unix_server(factory, path)
        ct, cp = await loop.create_unix_connection(client_proto, path)
    else:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ct, cp = await loop.create_connection(client_proto, "127.0.0.1", port)
    sp = await accepted
    await sp.made
    server.close()
    return server, sp, cp


async def finish(server, *protos):
    for p in protos:
        if p.transport is not None and not p.transport.is_closing():
            p.transport.close()
    for p in protos:
        await p.lost
    await server.wait_closed()


def test_echo_and_order_of_callbacks(loop):
    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        check_kind(loop, cp.transport)
        check_kind(loop, sp.transport)
        cp.transport.write(b"hello ")
        cp.transport.writelines([b"wor", bytearray(b"ld"), memoryview(b"!!")])
        while len(sp.data) < 13:
            await asyncio.sleep(0.001)
        cp.transport.close()
        await sp.eof
        await asyncio.wait_for(sp.lost, 10)
        await cp.lost
        await server.wait_closed()
        return bytes(sp.data), sp.events, cp.events

    data, sev, cev = run(loop, main())
    assert data == b"hello world!!"
    assert sev == ["made", "data", "eof", ("lost", None)]
    assert cev == ["made", ("lost", None)]


def test_connection_lost_is_scheduled_not_called(loop):
    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        cp.transport.close()
        assert cp.transport.is_closing()
        assert cp.events == ["made"]  # connection_lost comes through call_soon
        cp.transport.close()  # a second close is a no-op
        await cp.lost
        await finish(server, sp)
        return cp.events

    assert run(loop, main()) == ["made", ("lost", None)]


def test_close_sends_the_queue_first(loop):
    payload = os.urandom(3 * 1024 * 1024)

    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        cp.transport.write(payload)
        cp.transport.close()  # more than the socket takes at once: queued
        await sp.eof
        await finish(server, sp, cp)
        return bytes(sp.data)

    assert run(loop, main()) == payload


def test_flow_control(loop):
    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        t = cp.transport
        assert t.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        t.set_write_buffer_limits(high=4096)
        assert t.get_write_buffer_limits() == (1024, 4096)
        with pytest.raises(ValueError, match="must be >= low"):
            t.set_write_buffer_limits(high=1, low=2)
        sp.transport.pause_reading()
        assert not sp.transport.is_reading()
        chunk = b"x" * 65536
        sent = 0
        while "pause" not in cp.events:
            t.write(chunk)
            sent += len(chunk)
            await asyncio.sleep(0)
        assert t.get_write_buffer_size() > 4096
        assert cp.events == ["made", "pause"]
        sp.transport.resume_reading()
        assert sp.transport.is_reading()
        while "resume" not in cp.events:
            await asyncio.sleep(0.001)
        assert t.get_write_buffer_size() <= 1024
        while len(sp.data) < sent:
            await asyncio.sleep(0.001)
        await finish(server, sp, cp)
        return cp.events, len(sp.data) == sent

    events, all_there = run(loop, main())
    assert events == ["made", "pause", "resume", ("lost", None)]
    assert all_there


def test_set_limits_below_buffer_pauses_at_once(loop):
    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        sp.transport.pause_reading()
        t = cp.transport
        while t.get_write_buffer_size() == 0:
            t.write(b"y" * 65536)
            await asyncio.sleep(0)
        assert "pause" not in cp.events or t.get_write_buffer_size() > 65536
        t.set_write_buffer_limits(high=0)
        assert "pause" in cp.events
        sp.transport.resume_reading()
        await finish(server, sp, cp)

    run(loop, main())


def test_eof_received_true_keeps_the_write_side(loop):
    async def main():
        server, sp, cp = await pair(
            loop, lambda: Recorder(loop, keep_open=True), lambda: Recorder(loop)
        )
        assert cp.transport.can_write_eof()
        cp.transport.write(b"question")
        cp.transport.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            cp.transport.write(b"more")
        await sp.eof
        assert not sp.transport.is_closing()
        assert sp.transport.is_reading()  # as asyncio: only the reader is removed
        sp.transport.write(b"answer")
        sp.transport.close()
        await cp.eof
        await finish(server, sp, cp)
        return bytes(sp.data), bytes(cp.data), sp.events

    q, a, events = run(loop, main())
    assert (q, a) == (b"question", b"answer")
    assert events == ["made", "data", "eof", ("lost", None)]


def test_eof_received_false_closes(loop):
    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        cp.transport.write_eof()
        await sp.eof
        assert sp.transport.is_closing()
        exc = await sp.lost
        await finish(server, cp)
        return exc

    assert run(loop, main()) is None


def test_abort_drops_the_queue(loop):
    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        sp.transport.pause_reading()
        t = cp.transport
        while "pause" not in cp.events:
            t.write(b"z" * 65536)
            await asyncio.sleep(0)
        t.abort()
        assert t.is_closing()
        assert t.get_write_buffer_size() == 0
        t.write(b"dropped")  # after the connection is lost: ignored
        exc = await cp.lost
        sp.transport.resume_reading()
        await finish(server, sp)
        return exc, cp.events

    exc, events = run(loop, main())
    assert exc is None
    assert events == ["made", "pause", ("lost", None)]


def test_peer_reset_reports_connection_lost(loop):
    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        sock = cp.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        cp.transport.abort()  # RST
        exc = await sp.lost
        await finish(server, cp)
        return exc

    exc = run(loop, main())
    assert exc is None or isinstance(exc, ConnectionResetError)


def test_protocol_error_goes_to_the_exception_handler(loop, exc_log):
    class Failing(Recorder):
        def data_received(self, data):
            raise ValueError("bad data")

    async def main():
        server, sp, cp = await pair(loop, lambda: Failing(loop), lambda: Recorder(loop))
        cp.transport.write(b"boom")
        exc = await sp.lost
        await finish(server, cp)
        return exc

    exc = run(loop, main())
    assert isinstance(exc, ValueError)
    (ctx,) = exc_log.expect(1)
    assert ctx["message"] == "Fatal error: protocol.data_received() call failed."
    assert isinstance(ctx["exception"], ValueError)
    assert ctx["protocol"].__class__ is Failing


def test_pause_writing_error_is_reported(loop, exc_log):
    class BadPause(Recorder):
        def pause_writing(self):
            raise ValueError("no pause")

    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: BadPause(loop))
        sp.transport.pause_reading()
        cp.transport.set_write_buffer_limits(high=0)
        while not cp.transport.get_write_buffer_size():
            cp.transport.write(b"a" * 65536)
            await asyncio.sleep(0)
        sp.transport.resume_reading()
        await finish(server, sp, cp)

    run(loop, main())
    (ctx,) = exc_log.expect(1)
    assert ctx["message"] == "protocol.pause_writing() failed"


def test_write_rejects_non_bytes(loop):
    # asyncio's wording on this Python (3.14 changed it).
    what = ("a bytes, bytearray, or memoryview object" if sys.version_info >= (3, 14)
            else "a bytes-like object")

    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        with pytest.raises(TypeError, match=re.escape(f"data argument must be {what}, not 'str'")):
            cp.transport.write("text")
        await finish(server, sp, cp)

    run(loop, main())


def test_extra_info(loop):
    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        t = cp.transport
        sock = t.get_extra_info("socket")
        assert isinstance(sock, trsock.TransportSocket)
        assert t.get_extra_info("sockname") == sock.getsockname()
        assert t.get_extra_info("peername") == sp.transport.get_extra_info("sockname")
        assert t.get_extra_info("nothing", 42) == 42
        assert t.get_protocol() is cp
        assert "fd=" in repr(t)
        await finish(server, sp, cp)

    run(loop, main())


def test_unix_socket(loop):
    async def main():
        server, sp, cp = await pair(
            loop, lambda: Recorder(loop), lambda: Recorder(loop), socket.AF_UNIX
        )
        check_kind(loop, cp.transport)
        cp.transport.write(b"over unix")
        cp.transport.write_eof()
        await sp.eof
        await finish(server, sp, cp)
        return bytes(sp.data)

    assert run(loop, main()) == b"over unix"


class Buffered(asyncio.BufferedProtocol):
    def __init__(self, loop, size):
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.got = bytearray()
        self.transport = None
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.got += self.buf[:nbytes]

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.lost.set_result(exc)


class BufferedView(Buffered):
    def get_buffer(self, sizehint):
        return self.view


@pytest.mark.parametrize("proto", [Buffered, BufferedView])
def test_buffered_protocol(loop, proto):
    payload = os.urandom(300_000)

    async def main():
        made = loop.create_future()

        def factory():
            p = proto(loop, 1000)
            made.set_result(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        writer.write_eof()
        p = await made
        await p.lost
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return bytes(p.got)

    assert run(loop, main()) == payload


def test_ssl_echo(loop):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(os.path.join(CERTS, "cert.pem"), os.path.join(CERTS, "key.pem"))
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE

    async def handler(reader, writer):
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=cctx)
        raw = writer.transport.get_extra_info("socket")
        assert raw is not None
        out = []
        for i in range(20):
            writer.write(b"%d abc\n" % i)
            out.append(await reader.readline())
        big = os.urandom(30_000).hex().encode() + b"\n"
        writer.write(big)
        out.append(await reader.readline())
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return out, big

    out, big = run(loop, main())
    assert out[:20] == [b"%d ABC\n" % i for i in range(20)]
    assert out[20] == big.upper()


@pytest.mark.skipif(not hasattr(asyncio.StreamWriter, "start_tls"),
                    reason="StreamWriter.start_tls() is new in Python 3.11")
def test_start_tls_upgrades_a_connection(loop):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(os.path.join(CERTS, "cert.pem"), os.path.join(CERTS, "key.pem"))
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE

    async def handler(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        await writer.start_tls(sctx)
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        check_kind(loop, writer.transport)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        await writer.start_tls(cctx)
        writer.write(b"secret\n")
        got = await reader.readline()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == b"SECRET\n"


def test_sendfile(loop):
    data = os.urandom(1 << 20)

    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            cp.transport.write(b"head:")
            n = await loop.sendfile(cp.transport, f)
        cp.transport.write(b":tail")
        cp.transport.write_eof()
        await sp.eof
        await finish(server, sp, cp)
        return n, bytes(sp.data)

    n, got = run(loop, main())
    assert n == len(data)
    assert got == b"head:" + data + b":tail"


def test_connect_accepted_socket(loop):
    async def main():
        a, b = socket.socketpair()
        ta, pa = await loop.connect_accepted_socket(lambda: Recorder(loop), a)
        check_kind(loop, ta)
        b.sendall(b"from the peer")
        b.shutdown(socket.SHUT_WR)
        await pa.eof
        await pa.lost
        b.close()
        return bytes(pa.data)

    assert run(loop, main()) == b"from the peer"


def test_bad_py_transports_value(monkeypatch):
    monkeypatch.setenv("BGLOOP_PY_TRANSPORTS", "maybe")
    with pytest.raises(config.ConfigError, match="BGLOOP_PY_TRANSPORTS='maybe'"):
        bgloop.Loop()


def test_an_unreferenced_connection_stays_open(loop):
    # Nothing but the loop refers to the transport and its protocol (as for
    # a server's idle connection): a garbage collection must not end it.
    import gc

    async def main():
        received = []
        lost = loop.create_future()

        class Sink(asyncio.Protocol):
            def data_received(self, data):
                received.append(data)

            def connection_lost(self, exc):
                lost.set_result(exc)

        a, b = socket.socketpair()
        await loop.connect_accepted_socket(Sink, a)
        del a
        await asyncio.sleep(0)
        gc.collect()
        b.sendall(b"still there")
        b.shutdown(socket.SHUT_WR)
        await lost
        b.close()
        return b"".join(received)

    assert run(loop, main()) == b"still there"


def test_debug_mode_logs_reading_changes(loop, caplog):
    async def main():
        server, sp, cp = await pair(loop, lambda: Recorder(loop), lambda: Recorder(loop))
        loop.set_debug(True)
        with caplog.at_level("DEBUG", logger="asyncio"):
            sp.transport.pause_reading()
            sp.transport.resume_reading()
            cp.transport.write_eof()
            await sp.eof
        loop.set_debug(False)
        await finish(server, sp, cp)
        return [r.getMessage() for r in caplog.records if r.name == "asyncio"]

    messages = run(loop, main())
    for what in ("pauses reading", "resumes reading", "received EOF"):
        assert any(m.endswith(what) for m in messages), (what, messages)
