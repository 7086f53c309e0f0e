"""systemd notifications from serve(): a real AF_UNIX datagram socket plays
systemd, the child runs ``bgloop.serve()`` with ``NOTIFY_SOCKET`` (and
``WATCHDOG_USEC``/``WATCHDOG_PID``) pointing at it.  Plus the binding
itself: ``_bgloop.Notifier`` and a malformed environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

import bgloop
from bgloop import _bgloop

GUARD = 30.0  # against hangs only

CHILD = """
    import asyncio, sys, time
    import bgloop

    @bgloop.service("db", owner="child")
    async def db(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    @bgloop.service("web", owner="child", depends_on=["db"])
    async def web(ctx):
        ctx.ready()
        print("web ready", flush=True)
        {web_body}
        await ctx.stopping.wait()

    sys.exit(bgloop.serve())
"""


class Systemd:
    """The receiving end of NOTIFY_SOCKET."""

    def __init__(self, tmp_path, abstract: bool):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"bgloop-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = str(tmp_path / "notify")
            self.sock.bind(self.address)
        self.messages: list[tuple[float, str]] = []

    def close(self):
        self.sock.close()

    def collect(self, until, timeout=GUARD):
        """Receive until until(messages) is true; returns the messages."""
        end = time.monotonic() + timeout
        while not until(self.messages):
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"not received in time; got {self.texts()}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append((time.monotonic(), data.decode()))
        return self.messages

    def drain(self, seconds):
        """Receive whatever comes within `seconds`."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            self.messages.append((time.monotonic(), data.decode()))

    def texts(self, pings=False):
        return [t for _, t in self.messages if pings or t != "WATCHDOG=1"]

    def index(self, prefix):
        for i, text in enumerate(self.texts()):
            if text.startswith(prefix):
                return i
        raise AssertionError(f"no {prefix!r} in {self.texts()}")


def has(prefix):
    return lambda msgs: any(t.startswith(prefix) for _, t in msgs)


@pytest.fixture(params=["path", "abstract"])
def systemd(request, tmp_path):
    s = Systemd(tmp_path, request.param == "abstract")
    yield s
    s.close()


def spawn(tmp_path, env, web_body="pass"):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(web_body=web_body)))
    full = {k: v for k, v in os.environ.items()
            if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "BGLOOP_LOG_LEVEL",
                         "JOURNAL_STREAM")}
    full.update(env)
    return subprocess.Popen([sys.executable, str(script)], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc):
    try:
        out, err = proc.communicate(timeout=GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"child did not exit; stderr={err!r}")
    assert "Traceback" not in err, err
    return proc.returncode, err


def test_ready_status_stopping_in_order(systemd, tmp_path):
    proc = spawn(tmp_path, {"NOTIFY_SOCKET": systemd.address})
    systemd.collect(has("READY=1"))
    ready = systemd.texts()[systemd.index("READY=1")]
    assert ready == "READY=1\nSTATUS=2/2 services running"
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    systemd.drain(0.2)
    texts = systemd.texts()
    i_ready, i_stop = systemd.index("READY=1"), systemd.index("STOPPING=1")
    assert i_ready < i_stop
    # The stop's bound comes with STOPPING=1; the summary follows the stop.
    assert texts[i_stop + 1].startswith("EXTEND_TIMEOUT_USEC=")
    assert int(texts[i_stop + 1].split("=")[1]) > 0
    assert texts[-1] == "STATUS=0/0 services running"
    assert any(t.startswith("STATUS=") and "stopping" in t for t in texts[i_stop:])
    assert "WATCHDOG=1" not in systemd.texts(pings=True), "no WATCHDOG_USEC: no pings"


def test_watchdog_pings_stop_while_blocked(tmp_path):
    systemd = Systemd(tmp_path, abstract=True)
    try:
        proc = spawn(tmp_path, {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "100000"},
                     web_body="await asyncio.sleep(0.3); print('blocking', flush=True); "
                              "time.sleep(0.6)")
        assert proc.stdout.readline().strip() == "web ready"
        assert proc.stdout.readline().strip() == "blocking"
        systemd.drain(1.2)
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
    finally:
        systemd.close()
    assert code == 0, err
    pings = [t for t, text in systemd.messages if text == "WATCHDOG=1"]
    assert len(pings) >= 4, systemd.texts(pings=True)
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    # Every 50 ms while the loop runs; one gap spans the blocking call.
    assert max(gaps) >= 0.4, gaps
    i = gaps.index(max(gaps))
    assert i + 1 < len(pings) - 1, "pings resumed after the loop was free again"


def test_no_pings_for_another_pid(tmp_path):
    systemd = Systemd(tmp_path, abstract=False)
    try:
        proc = spawn(tmp_path, {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "20000",
                                "WATCHDOG_PID": str(os.getpid())})
        assert proc.stdout.readline().strip() == "web ready"
        systemd.collect(has("READY=1"))
        systemd.drain(0.3)
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
    finally:
        systemd.close()
    assert code == 0, err
    assert "WATCHDOG=1" not in systemd.texts(pings=True)
    assert f"WATCHDOG_PID={os.getpid()} is not this process" in err


@pytest.mark.parametrize("env, named", [
    ({"NOTIFY_SOCKET": "relative/path"}, "NOTIFY_SOCKET='relative/path'"),
    ({"NOTIFY_SOCKET": "vsock:2:999"}, "NOTIFY_SOCKET='vsock:2:999'"),
    ({"NOTIFY_SOCKET": "/" + "x" * 300}, "longer than a unix socket address"),
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "soon"}, "WATCHDOG_USEC='soon'"),
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "0"}, "WATCHDOG_USEC='0'"),
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "9" * 30}, "too large"),
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "me"},
     "WATCHDOG_PID='me'"),
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "100000", "WATCHDOG_PID": ""},
     "WATCHDOG_PID=''"),
])
def test_malformed_environment_is_logged_and_services_run(tmp_path, env, named):
    proc = spawn(tmp_path, env)
    assert proc.stdout.readline().strip() == "web ready"
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert "systemd notifications off" in err and named in err, err


def test_nobody_listening_does_not_matter(tmp_path):
    proc = spawn(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "nobody"), "WATCHDOG_USEC": "20000"})
    assert proc.stdout.readline().strip() == "web ready"
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err


# ---- the binding ---------------------------------------------------------------------

@pytest.fixture
def services():
    loop = bgloop.Loop()
    svcs = _bgloop.Services(loop._core)
    yield svcs
    del svcs
    loop.close()


def test_notifier_arguments(services, monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with pytest.raises(TypeError, match="must be a Services object, not int"):
        _bgloop.Notifier(42)
    with pytest.raises(FileNotFoundError, match="NOTIFY_SOCKET is not set"):
        _bgloop.Notifier(services)
    assert bgloop.notify.attach(services) is None
    monkeypatch.setenv("NOTIFY_SOCKET", "nope")
    with pytest.raises(OSError, match="NOTIFY_SOCKET='nope'") as info:
        _bgloop.Notifier(services)
    assert info.value.errno == 22
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "sock"))
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "sock"))
    try:
        n = _bgloop.Notifier(services)
        with pytest.raises(OSError, match="already has a notifier"):
            _bgloop.Notifier(services)
        assert n.address == str(tmp_path / "sock") and n.note == "" and not n.closed
        n.send("STATUS=hello")
        assert receiver.recv(100) == b"STATUS=hello"
        with pytest.raises(ValueError, match="must not be empty"):
            n.send("")
        with pytest.raises(TypeError, match="message must be a str, not bytes"):
            n.send(b"READY=1")
        with pytest.raises(ValueError, match="NUL"):
            n.send("READY=1\0")
        stats = n.stats()
        assert stats["sent"] == 1 and stats["failed"] == 0 and stats["watchdog_usec"] == 0
        n.close()
        n.close()
        assert n.closed
        with pytest.raises(RuntimeError, match="closed"):
            n.send("READY=1")
        # Closed, it no longer holds the manager: another may attach.
        _bgloop.Notifier(services).close()
    finally:
        receiver.close()


# ---- the example unit ----------------------------------------------------------------

UNIT = Path(__file__).resolve().parents[2] / "examples" / "blender" / "bgloop-blender.service"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's unit syntax: [Section], Key=Value (repeatable), '#'
    comments, a trailing backslash continues the line."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    logical = text.replace("\\\n", " ")
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"not a unit line: {raw!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_example_unit_matches_the_code(monkeypatch):
    from bgloop import config
    monkeypatch.delenv("BGLOOP_STOP_TIMEOUT", raising=False)
    svc = parse_unit(UNIT.read_text())["Service"]
    one = {key: values[-1] for key, values in svc.items()}
    assert one["Type"] == "notify"
    # Blender (ExecStart's process) is the one that sends.
    assert one["NotifyAccess"] == "main"
    assert one["ExecStart"].split()[0].endswith("blender")
    assert "keep_alive.py" in one["ExecStart"]
    watchdog = float(one["WatchdogSec"])
    assert watchdog >= 2, "pings every WatchdogSec/2 must leave the loop room"
    # serve() stops gracefully on SIGTERM (and exits 0): the stop signal.
    assert one["KillSignal"] == "SIGTERM"
    # A service's stop timeout and its cancel grace fit in the stop timeout.
    assert float(one["TimeoutStopSec"]) > 2 * config.stop_timeout()
    assert one["Restart"] == "on-failure"


def test_unit_parser_rejects_garbage():
    with pytest.raises(AssertionError, match="not a unit line"):
        parse_unit("[Service]\nType notify\n")
