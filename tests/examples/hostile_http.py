"""Hostile HTTP clients for the demo servers, shared by this directory's test
of examples/python/demo_service.py and tests/blender's test of the Blender
demo add-on (both serve through bgloop.httpd).

Raw sockets send what a well-behaved client never would; h11 (client side)
parses the answers.  Each ``check_*`` raises AssertionError with the payload
and the answer when a server misbehaves.
"""

from __future__ import annotations

import http.client
import socket
import struct
import time

import h11

TIMEOUT = 10.0                  # any single socket wait; reached only on a hang
MAX_BODY = 1024 * 1024          # httpd.Limits' defaults
MAX_HEADER_BYTES = 64 * 1024
HOST = b"Host: test\r\n"


def connect(port: int, timeout: float = TIMEOUT) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def exchange(port: int, payload: bytes, *, timeout: float = TIMEOUT) -> bytes:
    """Send raw bytes, half-close, read until the server closes."""
    with connect(port, timeout) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return read_all(s)


def parse_responses(data: bytes, methods: list[str]) -> list[tuple[int, dict, bytes]]:
    """Split DATA into one (status, headers, body) per request method, in
    order; everything in DATA must be used up."""
    out = []
    for method in methods:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "test")]))
        conn.send(h11.EndOfMessage())
        conn.receive_data(data)
        conn.receive_data(b"")
        status, headers, body = None, {}, b""
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise AssertionError(f"not HTTP ({exc}) in answer to {method}: "
                                     f"{data[:300]!r}") from None
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"incomplete answer to {method}: {data[:300]!r}")
        out.append((status, headers, body))
        data = conn.trailing_data[0]
    assert data == b"", f"unexpected bytes after {len(methods)} answers: {data[:300]!r}"
    return out


def status_of(answer: bytes, method: str = "GET") -> int:
    assert answer, "the server closed without answering"
    status, headers, body = parse_responses(answer, [method])[0]
    assert b"Traceback" not in body, body
    return status


def malformed_requests(path: str) -> list[tuple[bytes, int]]:
    """(payload, expected status) for requests aimed at GET PATH."""
    p = path.encode()
    get = b"GET " + p + b" HTTP/1.1\r\n" + HOST
    chunk = b"%x\r\n" % (MAX_BODY // 2) + b"a" * (MAX_BODY // 2) + b"\r\n"
    return [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET " + p + b"\r\n\r\n", 400),                          # no version
        (b"GET " + p + b" HTTP/1.1 extra\r\n" + HOST + b"\r\n", 400),
        (b"GET " + p + b" HTTP/1.1\r\n\r\n", 400),                 # HTTP/1.1 needs Host
        (b"GET " + p + b" HTTP/2.0\r\n" + HOST + b"\r\n", 505),
        (b"HEAD " + p + b" HTTP/2.0\r\n" + HOST + b"\r\n", 505),      # no body: HEAD
        (b"GET relative HTTP/1.1\r\n" + HOST + b"\r\n", 400),
        (get + b"no colon here\r\n\r\n", 400),
        (get + b"Bad Name: x\r\n\r\n", 400),
        (get + b"X: a\x00b\r\n\r\n", 400),
        (get + b"Content-Length: -5\r\n\r\n", 400),
        (get + b"Content-Length: abc\r\n\r\n", 400),
        (get + b"Content-Length: 0x10\r\n\r\n", 400),
        (get + b"Content-Length: 1, 2\r\n\r\n", 400),
        (get + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
        (get + b"Content-Length: " + b"9" * 30 + b"\r\n\r\n", 400),  # beyond any integer h11 takes
        (get + b"Transfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST " + p + b" HTTP/1.1\r\n" + HOST + b"Content-Length: 999999999\r\n\r\n", 413),
        (b"HEAD " + p + b" HTTP/1.1\r\n" + HOST + b"Content-Length: 999999999\r\n\r\n", 413),
        (b"POST " + p + b" HTTP/1.1\r\n" + HOST + b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1),
         413),
        (b"POST " + p + b" HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
         + chunk * 3 + b"0\r\n\r\n", 413),
        (get + b"X-Long: " + b"a" * (3 * MAX_HEADER_BYTES) + b"\r\n\r\n", 431),
        (get + b"".join(b"X-%d: y\r\n" % i for i in range(20000)) + b"\r\n", 431),
    ]


def check_malformed(port: int, path: str) -> None:
    for payload, expected in malformed_requests(path):
        answer = exchange(port, payload)
        got = status_of(answer, "HEAD" if payload.startswith(b"HEAD ") else "GET")
        assert got == expected, (payload[:80], expected, answer[:300])


def check_slow_headers(port: int, header_timeout: float, path: str) -> float:
    """Half a request then silence gets 408 after about ``header_timeout``
    seconds; meanwhile other clients are served.  Returns the wait."""
    with connect(port, header_timeout + TIMEOUT) as stuck:
        t0 = time.monotonic()
        stuck.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: te")
        answer = exchange(port, b"GET " + path.encode() + b" HTTP/1.1\r\n" + HOST
                          + b"Connection: close\r\n\r\n")
        assert status_of(answer) == 200, answer[:300]
        # Trickling a byte at a time must not buy more time either.
        for _ in range(3):
            time.sleep(header_timeout / 4)
            stuck.sendall(b"s")
        answer = read_all(stuck)
        waited = time.monotonic() - t0
    assert status_of(answer) == 408, answer[:300]
    assert waited < header_timeout + TIMEOUT / 2, waited
    return waited


def check_early_close(port: int, path: str) -> None:
    """Clients that leave mid-request, politely or with a RST; the server
    must go on serving."""
    p = path.encode()
    partials = [b"", b"GET " + p, b"GET " + p + b" HTTP/1.1\r\n" + HOST,
                b"POST " + p + b" HTTP/1.1\r\n" + HOST + b"Content-Length: 100\r\n\r\n0123456789"]
    for payload in partials:
        for reset in (False, True):
            s = connect(port)
            if payload:
                s.sendall(payload)
            if reset:           # close() then sends a RST instead of a FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
    # A half-closed client with a partial request gets a 400 (not a hang).
    answer = exchange(port, b"GET " + p + b" HTTP/1.1\r\n" + HOST)
    assert status_of(answer) == 400, answer[:300]


def check_pipelined(port: int, path: str) -> None:
    """Several requests in one send on one keep-alive connection are all
    answered, in order, and ``Connection: close`` on the last one ends it."""
    p = path.encode()
    one = b"GET " + p + b" HTTP/1.1\r\n" + HOST + b"\r\n"
    head = b"HEAD " + p + b" HTTP/1.1\r\n" + HOST + b"\r\n"
    last = b"GET " + p + b" HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
    with connect(port) as s:
        s.sendall(one + head + one + last)
        data = read_all(s)
    answers = parse_responses(data, ["GET", "HEAD", "GET", "GET"])
    assert [a[0] for a in answers] == [200] * 4, data[:500]
    assert answers[1][2] == b"" and int(answers[1][1]["content-length"]) > 0
    assert answers[3][1].get("connection", "").lower() == "close"
    # Keep-alive across separate requests: one connection serves them all.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        local = set()
        for _ in range(3):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200 and not resp.will_close, resp.getheaders()
            local.add(conn.sock.getsockname())
        assert len(local) == 1, local
    finally:
        conn.close()


def check_log_clean(text: str) -> None:
    for bad in ("Traceback", "Unhandled exception", "Exception in callback",
                "exception was never retrieved", "Task was destroyed"):
        assert bad not in text, f"{bad!r} in the server's output:\n{text[-3000:]}"
