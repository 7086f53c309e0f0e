"""Bytes received for asyncio's streams (StreamReaderProtocol over a
StreamReader), which bgloop's C transport appends to the reader itself: one
body per behaviour on the stock loop, bgloop.Loop and bgloop.Loop with
asyncio's Python transports; all three must agree."""
import asyncio
import gc
import socket

import pytest

from _loop_util import TRANSPORT_KINDS, _close, exc_log, run, transport_loop  # noqa: F401

@pytest.fixture(params=TRANSPORT_KINDS)
def loop(request, exc_log, monkeypatch):
    lp = transport_loop(request.param, monkeypatch)
    lp.set_exception_handler(exc_log)
    try:
        yield lp
    finally:
        _close(lp)


def payload(n):
    return bytes(i * 7 % 251 for i in range(n))


async def connected(loop, reader_factory=None, limit=2**16):
    """A socket pair: (our end's reader and transport, the peer socket)."""
    a, b = socket.socketpair()
    reader = reader_factory() if reader_factory else asyncio.StreamReader(limit=limit, loop=loop)
    transport, _ = await loop.connect_accepted_socket(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), a)
    b.setblocking(False)
    return reader, transport, b


def test_bytes_arrive_in_order_across_many_reads(loop, exc_log):
    data = payload(300_000)

    async def main():
        reader, transport, peer = await connected(loop)
        await loop.sock_sendall(peer, data)
        got = await reader.readexactly(len(data))
        peer.close()
        assert await reader.read() == b""
        transport.close()
        return got

    assert run(loop, main()) == data
    assert not exc_log.contexts


def test_reading_pauses_above_twice_the_limit_and_resumes(loop, exc_log):
    data = payload(50_000)

    async def main():
        reader, transport, peer = await connected(loop, limit=1000)
        await loop.sock_sendall(peer, data)
        for _ in range(200):
            if reader._paused:
                break
            await asyncio.sleep(0.005)
        paused = reader._paused and not transport.is_reading()
        assert len(reader._buffer) > 2000
        got = await reader.readexactly(len(data))
        resumed = transport.is_reading()
        peer.close()
        transport.close()
        return paused, resumed, got

    paused, resumed, got = run(loop, main())
    assert (paused, resumed, got == data) == (True, True, True)
    assert not exc_log.contexts


def test_a_reader_subclass_gets_its_own_feed_data(loop, exc_log):
    fed = []

    class Counting(asyncio.StreamReader):
        def feed_data(self, data):
            fed.append(bytes(data))
            super().feed_data(data)

    async def main():
        reader, transport, peer = await connected(loop, lambda: Counting(loop=loop))
        peer.send(b"hello\n")
        line = await reader.readline()
        peer.close()
        transport.close()
        return line

    assert run(loop, main()) == b"hello\n"
    assert b"".join(fed) == b"hello\n"
    assert not exc_log.contexts


def test_a_replaced_feed_data_is_called(loop, exc_log, monkeypatch):
    fed = []
    original = asyncio.StreamReader.feed_data

    def feed_data(self, data):
        fed.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(asyncio.StreamReader, "feed_data", feed_data)

    async def main():
        reader, transport, peer = await connected(loop)
        peer.send(b"patched\n")
        line = await reader.readline()
        peer.close()
        transport.close()
        return line

    assert run(loop, main()) == b"patched\n"
    assert b"".join(fed) == b"patched\n"
    assert not exc_log.contexts


def test_data_for_a_collected_reader_is_dropped(loop, exc_log):
    async def main():
        a, b = socket.socketpair()
        transport, protocol = await loop.connect_accepted_socket(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop), a)
        gc.collect()
        assert protocol._stream_reader is None
        b.send(b"nobody reads this")
        await asyncio.sleep(0.05)
        closing = transport.is_closing()
        b.close()
        await asyncio.sleep(0.05)
        transport.close()
        return closing

    assert run(loop, main()) is False
    assert not exc_log.contexts


def test_data_after_feed_eof_is_a_fatal_error(loop, exc_log):
    async def main():
        reader, transport, peer = await connected(loop)
        reader.feed_eof()
        peer.send(b"late")
        for _ in range(200):
            if transport.is_closing():
                break
            await asyncio.sleep(0.005)
        peer.close()
        return transport.is_closing()

    assert run(loop, main()) is True
    (ctx,) = exc_log.expect(1)
    assert ctx["message"] == "Fatal error: protocol.data_received() call failed."
    assert isinstance(ctx["exception"], AssertionError)
    assert str(ctx["exception"]) == "feed_data after feed_eof"


def test_a_cancelled_read_leaves_the_bytes_for_the_next(loop, exc_log):
    async def main():
        reader, transport, peer = await connected(loop)
        task = asyncio.ensure_future(reader.readexactly(4))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        peer.send(b"abcd")
        got = await reader.readexactly(4)
        peer.close()
        transport.close()
        return got

    assert run(loop, main()) == b"abcd"
    assert not exc_log.contexts
