"""Echo server, protocol or streams flavour, for bench_echo.py.

    python echo_server.py LOOP {protocol,streams} PORT
"""
import asyncio
import sys

from loops import make_loop, serve_until_killed


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def echo_streams(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def main():
    loop = make_loop(sys.argv[1])
    kind, port = sys.argv[2], int(sys.argv[3])
    if kind == "protocol":
        coro = loop.create_server(EchoProtocol, "127.0.0.1", port, reuse_address=True)
    else:
        coro = asyncio.start_server(echo_streams, "127.0.0.1", port, reuse_address=True)
    serve_until_killed(loop, coro)


if __name__ == "__main__":
    main()
