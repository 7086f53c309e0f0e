"""examples/echo_server.c built for Windows, under wine: a client on the Linux
side talks to it over 127.0.0.1, and Ctrl+C stops it with exit status 0."""
import re
import socket

from conftest import TIMEOUT


def start(console, example):
    server = console("ctrl-c", [example("echo_server"), "0"])
    line = server.readline()
    m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", line or "")
    assert m, f"first line {line!r}, not 'listening on 127.0.0.1:PORT'"
    return server, int(m.group(1))


def echo(port, payloads):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        for data in payloads:
            s.sendall(data)
            back = b""
            while len(back) < len(data):
                chunk = s.recv(1 << 16)
                assert chunk, f"connection closed after {len(back)} of {len(data)} bytes"
                back += chunk
            assert back == data


def test_answers_a_loopback_client(console, example):
    server, port = start(console, example)
    echo(port, [b"hello\n", bytes(range(256)) * 64, b"x" * 300000])
    # A second connection: the server still accepts after the first closed.
    echo(port, [b"again\n"])


def test_ctrl_c_stops_it_with_status_0(console, example):
    server, port = start(console, example)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
        server.send_event()
        status, _, err = server.finish()
        assert status == 0, f"exit status {status}; stderr: {err}"
        # Shut down cleanly: the client's connection is closed, not left open.
        assert s.recv(1) == b""
