"""A minimal HTTP/1.1 keep-alive server (an asyncio Protocol, or streams)
for wrk.

    python http_server.py LOOP PORT [protocol|streams]

Every request (GET, no body) gets the same small response; parsing is the
least an HTTP/1.1 server must do (find the end of each request), so the
benchmark measures the event loop, not a framework.
"""
import asyncio
import sys

from loops import make_loop, serve_until_killed

BODY = b"Hello from the loop benchmark\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\nConnection: keep-alive\r\n\r\n" + BODY)


class HttpProtocol(asyncio.Protocol):
    __slots__ = ("transport", "buf")

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        n = buf.count(b"\r\n\r\n")  # pipelined requests answered in one write
        if n:
            self.transport.write(RESPONSE * n)
            buf = buf[buf.rfind(b"\r\n\r\n") + 4:]
        self.buf = buf

    def connection_lost(self, exc):
        self.transport = None


async def http_streams(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def main():
    loop = make_loop(sys.argv[1])
    port = int(sys.argv[2])
    if (sys.argv[3:] or ["protocol"])[0] == "streams":
        coro = asyncio.start_server(http_streams, "127.0.0.1", port, reuse_address=True,
                                    backlog=1024)
    else:
        coro = loop.create_server(HttpProtocol, "127.0.0.1", port, reuse_address=True,
                                  backlog=1024)
    serve_until_killed(loop, coro)


if __name__ == "__main__":
    main()
