"""systemd notifications from ``blender --background`` running
``bgloop.serve()``: a real unix datagram socket plays systemd and receives
READY=1, the status, watchdog pings, then STOPPING=1 on SIGTERM, in order."""

from __future__ import annotations

import signal
import socket
import textwrap
import time

import blenderlib as bl

SCRIPT = """
    import asyncio
    import bgloop

    @bgloop.service("db", owner="t")
    async def db(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    @bgloop.service("web", owner="t", depends_on=["db"])
    async def web(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    print("SERVE RETURNED", bgloop.serve(), flush=True)
"""


def _receive(sock, until, timeout):
    got = []
    end = time.monotonic() + timeout
    while not until(got):
        left = end - time.monotonic()
        assert left > 0, f"not received in time: {got}"
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
    return got


def test_ready_watchdog_stopping(tmp_path, artifacts):
    script = tmp_path / "notify_services.py"
    script.write_text(textwrap.dedent(SCRIPT))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    env = bl.blender_env(tmp_path, pythonpath=[artifacts["site"]],
                         NOTIFY_SOCKET=tmp_path / "notify", WATCHDOG_USEC=200000)
    proc = bl.start_background(tmp_path, python=[script], env=env, name="notify")
    try:
        got = _receive(sock, lambda m: any(x.startswith("READY=1") for x in m), 90)
        got += _receive(sock, lambda m: m.count("WATCHDOG=1") >= 2, 30)
        proc.signal(signal.SIGTERM)
        proc.wait_for(r"SERVE RETURNED 0", timeout=60)
        assert proc.wait(60) == 0, proc.tail()
        sock.settimeout(0.5)
        try:
            while True:
                got.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
    finally:
        proc.stop()
        sock.close()
    texts = [m for m in got if m != "WATCHDOG=1"]
    ready = texts.index("READY=1\nSTATUS=2/2 services running")
    stopping = texts.index("STOPPING=1")
    assert ready < stopping, texts
    assert texts[stopping + 1].startswith("EXTEND_TIMEOUT_USEC="), texts
    assert texts[-1] == "STATUS=0/0 services running", texts
    assert "systemd notifications to" in proc.output()
