"""Echo server, protocol or streams flavour, for bench_echo.py.

    python echo_server.py LOOP {protocol,streams} PORT
"""
import asyncio
import sys

from loops import make_loop


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
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(coro)
    print("ready", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        loop.close()


if __name__ == "__main__":
    main()
