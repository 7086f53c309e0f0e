"""Real protocols on the stock loop and on bgloop.Loop: streams, TLS, UDP,
Unix sockets, subprocesses, aiohttp and websockets."""
import asyncio
import os
import socket
import ssl
import sys
import tempfile

from _loop_util import CERTS, exc_log, loop, run  # noqa: F401  (fixtures)


async def _echo_server_handler(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_streams_tcp(loop):
    async def main():
        server = await asyncio.start_server(_echo_server_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        replies = []
        for i in range(50):
            writer.write(f"line {i}\n".encode())
            await writer.drain()
            replies.append(await reader.readline())
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return replies

    assert run(loop, main()) == [f"LINE {i}\n".encode() for i in range(50)]


def test_streams_large_transfer(loop):
    payload = os.urandom(4 * 1024 * 1024)

    async def handler(reader, writer):
        data = await reader.readexactly(len(payload))
        writer.write(data)
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)  # larger than the socket buffers: flow control
        await writer.drain()
        got = await reader.readexactly(len(payload))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == payload


async def _line_round_trip(server, reader, writer, line):
    """Send one line, read the echo, close client and server cleanly."""
    writer.write(line)
    reply = await reader.readline()
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return reply


def test_unix_socket_streams(loop):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "sock")

        async def main():
            server = await asyncio.start_unix_server(_echo_server_handler, path)
            reader, writer = await asyncio.open_unix_connection(path)
            return await _line_round_trip(server, reader, writer, b"unix\n")

        assert run(loop, main()) == b"UNIX\n"


def test_tls_streams(loop):
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(os.path.join(CERTS, "cert.pem"), os.path.join(CERTS, "key.pem"))
    client_ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "cert.pem"))

    async def main():
        server = await asyncio.start_server(_echo_server_handler, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("peercert") is not None
        return await _line_round_trip(server, reader, writer, b"secret\n")

    assert run(loop, main()) == b"SECRET\n"


def test_udp_echo(loop):
    class Server(asyncio.DatagramProtocol):
        def connection_made(self, tr):
            self.tr = tr

        def datagram_received(self, data, addr):
            self.tr.sendto(data[::-1], addr)

    class Client(asyncio.DatagramProtocol):
        def __init__(self):
            self.got = asyncio.Queue()

        def datagram_received(self, data, addr):
            self.got.put_nowait(data)

    async def main():
        stransport, _ = await loop.create_datagram_endpoint(Server, local_addr=("127.0.0.1", 0))
        addr = stransport.get_extra_info("sockname")
        ctransport, client = await loop.create_datagram_endpoint(Client, remote_addr=addr)
        got = []
        for msg in (b"abc", b"hello", b"xyz"):
            ctransport.sendto(msg)
            got.append(await client.got.get())
        ctransport.close()
        stransport.close()
        return got

    assert run(loop, main()) == [b"cba", b"olleh", b"zyx"]


def test_subprocess_pipes(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate(b"from the parent")
        return proc.returncode, out

    assert run(loop, main()) == (0, b"FROM THE PARENT")


def test_subprocess_exit_code_and_shell(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo out; echo err >&2; exit 3",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode, out, err

    assert run(loop, main()) == (3, b"out\n", b"err\n")


def test_sock_api(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        csock = socket.socket()
        csock.setblocking(False)
        accept = loop.create_task(loop.sock_accept(lsock))
        await loop.sock_connect(csock, lsock.getsockname())
        conn, _ = await accept
        conn.setblocking(False)
        await loop.sock_sendall(csock, b"x" * 100000)
        got = b""
        while len(got) < 100000:
            got += await loop.sock_recv(conn, 65536)
        for s in (conn, csock, lsock):
            s.close()
        return len(got)

    assert run(loop, main()) == 100000


def test_aiohttp_server_and_client(loop):
    import aiohttp  # tests/python/requirements.txt
    from aiohttp import web

    async def hello(request):
        return web.json_response({"path": request.path, "q": request.query.get("q")})

    async def main():
        app = web.Application()
        app.router.add_get("/{tail:.*}", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        site = web.SockSite(runner, sock)
        await site.start()
        try:
            async with aiohttp.ClientSession() as session:
                results = []
                for i in range(20):  # keep-alive: one connection, many requests
                    async with session.get(f"http://127.0.0.1:{port}/x/{i}?q=v{i}") as resp:
                        assert resp.status == 200
                        results.append(await resp.json())
                return results
        finally:
            await runner.cleanup()

    got = run(loop, main())
    assert got == [{"path": f"/x/{i}", "q": f"v{i}"} for i in range(20)]


def test_websockets_server_and_client(loop):
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message[::-1])

    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                got = []
                for msg in ("hello", "bgloop", "x" * 100000):
                    await ws.send(msg)
                    got.append(await ws.recv())
                return got

    assert run(loop, main()) == ["olleh", "poolgb", "x" * 100000]


def test_transport_repr_shows_polling_state(loop):
    # asyncio's transport repr asks the loop's selector about the fd.
    async def main():
        server = await asyncio.start_server(_echo_server_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        text = repr(writer.transport)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return text

    text = run(loop, main())
    assert "read=polling" in text and "write=<idle" in text
