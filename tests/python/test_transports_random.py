"""Randomized pairs of socket transports on bgloop.Loop: each end is the C
transport or asyncio's Python one, over a Unix socketpair or TCP.  Both ends
write random amounts in random pieces (bytes, bytearray, memoryview,
writelines), pause and resume reading at random, and end with write_eof,
close or abort.  Checks: every byte arrives once and in order (all of it
where the protocol promises it, a prefix where an abort or an early close
may cut it), and nothing leaks (transports, protocols, queued buffers,
file descriptors, fd watchers)."""
import asyncio
import gc
import os
import random
import socket
import sys
import weakref
from asyncio import selector_events

import pytest

import bgloop
from bgloop import transports

pytestmark = pytest.mark.skipif(not transports.AVAILABLE, reason="no C transport on this platform")

SEEDS = range(24)
TIMEOUT = 30.0


def open_fds():
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


class Peer(asyncio.Protocol):
    def __init__(self, loop, rnd):
        self.loop = loop
        self.rnd = rnd
        self.got = bytearray()
        self.transport = None
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.writable = loop.create_future()
        self.writable.set_result(None)
        self.lost_calls = 0

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        assert not self.eof.done(), "data after eof"
        self.got += data
        t = self.transport
        if self.rnd.random() < 0.2 and t.is_reading():
            t.pause_reading()
            assert not t.is_reading()
            self.loop.call_later(self.rnd.random() * 0.002, t.resume_reading)

    def eof_received(self):
        self.eof.set_result(None)
        return True  # keep the write side: this end may still be sending

    def pause_writing(self):
        assert self.writable.done()
        self.writable = self.loop.create_future()

    def resume_writing(self):
        self.writable.set_result(None)

    def connection_lost(self, exc):
        self.lost_calls += 1
        self.lost.set_result(exc)


def sock_pair(rnd):
    if rnd.random() < 0.5:
        return socket.socketpair()
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        a = socket.create_connection(lsock.getsockname())
        b, _ = lsock.accept()
    return a, b


def make_transport(loop, kind, sock, proto):
    sock.setblocking(False)
    if kind == "c":
        t = transports.make(loop, sock, proto)
        assert isinstance(t, transports.SocketTransport)
    else:
        t = selector_events._SelectorSocketTransport(loop, sock, proto)
    return t


async def send(rnd, peer, payload, end, held, kind):
    t = peer.transport
    i = 0
    while i < len(payload) and not t.is_closing():
        n = rnd.choice([1, rnd.randint(1, 200), rnd.randint(200, 70_000)])
        chunk = payload[i:i + n]
        i += len(chunk)
        how = rnd.randrange(4)
        if how == 0:
            piece = bytes(chunk)
            # An identical object never written: its reference count is what
            # piece's must come back to.
            held.append((piece, bytes(chunk)))
            t.write(piece)
        elif how == 1:
            buf = bytearray(chunk)
            t.write(buf)
            if kind == "c":  # it copies what it keeps (asyncio's may keep a view)
                buf[:] = b"\0" * len(buf)
        elif how == 2:
            t.write(memoryview(chunk))
        elif len(chunk) > 1:
            # No empty piece: asyncio 3.12+'s writelines() then never finishes
            # sending (an empty entry stays queued).
            cut = rnd.randint(1, len(chunk) - 1)
            t.writelines([chunk[:cut], bytearray(chunk[cut:])])
        else:
            t.write(chunk)
        if not peer.writable.done():
            await asyncio.wait([peer.writable, peer.lost], return_when=asyncio.FIRST_COMPLETED)
        elif rnd.random() < 0.3:
            await asyncio.sleep(0)
    if t.is_closing():
        return
    if end == "eof":
        t.write_eof()
        with pytest.raises(RuntimeError):
            t.write(b"after eof")
    elif end == "close":
        t.close()
    else:
        t.abort()


async def one_pair(loop, rnd, held):
    kinds = [rnd.choice(["c", "py"]), rnd.choice(["c", "py"])]
    ends = [rnd.choice(["eof", "eof", "close", "abort"]) for _ in range(2)]
    payloads = [os.urandom(rnd.choice([0, 1, rnd.randint(1, 5000), rnd.randint(5000, 400_000)]))
                for _ in range(2)]
    socks = sock_pair(rnd)
    peers = [Peer(loop, rnd), Peer(loop, rnd)]
    ts = [make_transport(loop, k, s, p) for k, s, p in zip(kinds, socks, peers)]
    if rnd.random() < 0.5:
        for t in ts:
            t.set_write_buffer_limits(high=rnd.choice([0, 1, 1000, 100_000]))
    await asyncio.sleep(0)  # connection_made
    await asyncio.gather(*(send(rnd, peers[i], payloads[i], ends[i], held, kinds[i]) for i in range(2)))
    # An end that only shut its write side down reads until the peer is done.
    for p in peers:
        if not p.lost.done():
            await asyncio.wait([p.eof, p.lost], return_when=asyncio.FIRST_COMPLETED)
            p.transport.close()
    for p in peers:
        await p.lost
    await asyncio.sleep(0)
    for i in range(2):
        me, other = peers[i], peers[1 - i]
        sent = payloads[1 - i]
        got = bytes(me.got)
        assert me.lost_calls == 1
        assert ts[i].get_write_buffer_size() == 0
        assert sent[:len(got)] == got, f"end {i} ({kinds[i]}) got bytes out of order or twice"
        # All of it unless the peer aborted, or closed while this end was
        # still sending (then the peer's kernel resets the connection and
        # this end stops reading at the write error).
        peer_end = ends[1 - i]
        if ends[i] == "eof" and (peer_end == "eof" or (peer_end == "close" and not payloads[i])):
            assert len(got) == len(sent), (kinds, ends, len(got), len(sent))
    return [weakref.ref(x) for x in ts + peers]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_pairs(seed):
    rnd = random.Random(seed)
    fds = open_fds()
    loop = bgloop.Loop()
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    held = []
    refs = []
    try:
        for _ in range(3):
            refs += loop.run_until_complete(
                asyncio.wait_for(one_pair(loop, rnd, held), TIMEOUT)
            )
        assert loop.stats()["io_watchers"] <= 1, loop.stats()  # asyncio's self-pipe only
    finally:
        loop.close()
    gc.collect()
    assert [r for r in refs if r() is not None] == []
    for piece, twin in held:
        assert sys.getrefcount(piece) == sys.getrefcount(twin), "a queued buffer was not released"
    assert open_fds() == fds
    # Write errors after a peer's abort are OSErrors: asyncio only logs them
    # in debug mode, so nothing reaches the handler.
    assert errors == []
