"""examples/python/demo_service.py against hostile HTTP clients.

The demo runs in a subprocess on 127.0.0.1 (any free port) with a short
header timeout; after the hostile clients it must still answer, stop with
exit status 0 on SIGTERM and have written no traceback to stderr.
"""

from __future__ import annotations

import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import urllib.request

import pytest

import hostile_http as hh

REPO = pathlib.Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "python" / "demo_service.py"
HEADER_TIMEOUT = 1.0
GUARD = 60.0


@pytest.fixture(scope="module")
def demo():
    env = dict(os.environ, BGLOOP_DEMO_PORT="0", BGLOOP_DEMO_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
               BGLOOP_LOG_LEVEL="info", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(DEMO)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], GUARD)
        line = proc.stdout.readline().decode() if ready else ""
        if "serving on http://127.0.0.1:" not in line:
            proc.kill()
            raise AssertionError(f"no address line: {line!r}\n{proc.communicate()[1].decode()}")
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=hh.TIMEOUT) as resp:
        return resp.status, json.loads(resp.read())


def test_routes(demo):
    _, port = demo
    status, root = _get(port, "/")
    assert status == 200 and root["service"] == "bgloop demo"
    assert _get(port, "/hello?name=h11") == (200, {"hello": "h11"})
    status, services = _get(port, "/status")
    assert {n: s["state"] for n, s in services.items()} == \
        {"store": "running", "ticker": "running", "http": "running"}
    assert hh.status_of(hh.exchange(port, b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")) == 404
    answer = hh.exchange(port, b"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert hh.status_of(answer) == 405


def test_malformed_requests(demo):
    hh.check_malformed(demo[1], "/")


def test_slow_headers_get_408(demo):
    waited = hh.check_slow_headers(demo[1], HEADER_TIMEOUT, "/")
    assert waited >= HEADER_TIMEOUT * 0.9, waited


def test_early_close(demo):
    hh.check_early_close(demo[1], "/")


def test_pipelined_keep_alive(demo):
    hh.check_pipelined(demo[1], "/")


def test_still_serving_then_clean_stop(demo):
    """Last in this module: after everything above, the demo still answers,
    stops with status 0 and logged no traceback."""
    proc, port = demo
    status, root = _get(port, "/")
    assert status == 200 and root["requests"] > 10
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"no exit after SIGTERM:\n{proc.communicate()[1].decode()}")
    text = err.decode(errors="replace")
    assert proc.returncode == 0, text
    hh.check_log_clean(text)
