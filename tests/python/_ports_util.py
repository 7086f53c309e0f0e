"""Helpers shared by test_ports.py and test_discovery.py: a private runtime
directory, and a child process whose bgloop service listens (the holder
of a port, seen through its discovery file)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# Bounds against hangs only: a child starts in well under a second.
WAIT = 30.0

HOLDER = textwrap.dedent('''
    import sys

    import bgloop

    port, name, owner = int(sys.argv[1]), sys.argv[2], sys.argv[3]


    async def hello(reader, writer):
        writer.write(b"hello from " + name.encode() + b"\\n")
        await writer.drain()
        writer.close()


    @bgloop.service(name, owner=owner)
    async def holder(ctx):
        listener = await ctx.listen(hello, "127.0.0.1", port)
        print(f"LISTENING {listener.port} {listener.discovery_file}", flush=True)
        ctx.ready()
        await ctx.stopping.wait()


    if sys.argv[4:] == ["exit"]:
        # Leave with the service still running: only atexit cleans up.
        loop = bgloop.ensure_loop()
        bgloop.start_services()
        while not bgloop.status()[name]["state"] == "running":
            loop.kick(0.05)
        print("EXITING", flush=True)
        sys.exit(0)
    sys.exit(bgloop.serve())
''')


@pytest.fixture
def rundir(tmp_path, monkeypatch) -> Path:
    """$XDG_RUNTIME_DIR of this test (children inherit it); returns the
    bgloop discovery directory inside it (not created yet)."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    return xdg / "bgloop"


class Holder:
    """A child Python whose bgloop service listens on a port."""

    def __init__(self, tmp_path: Path, port: int = 0, name: str = "holder",
                 owner: str = "holder-owner", exit_early: bool = False):
        script = tmp_path / "holder.py"
        script.write_text(HOLDER)
        self.name, self.owner = name, owner
        self.log_path = tmp_path / f"holder-{name}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        args = [sys.executable, str(script), str(port), name, owner]
        self.proc = subprocess.Popen(args + (["exit"] if exit_early else []),
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.port = 0
        self.discovery_file: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            m = re.search(pattern, self.output())
            if m:
                return m
            if self.proc.poll() is not None:
                m = re.search(pattern, self.output())
                if m:
                    return m
                raise AssertionError(f"holder exited ({self.proc.returncode}) before "
                                     f"{pattern!r}:\n{self.output()}")
            time.sleep(0.02)
        raise AssertionError(f"{pattern!r} not seen within {WAIT} s:\n{self.output()}")

    def listening(self) -> "Holder":
        m = self.wait_for(r"LISTENING (\d+) (\S+)")
        self.port = int(m.group(1))
        self.discovery_file = None if m.group(2) == "None" else Path(m.group(2))
        return self

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(WAIT)

    def kill(self) -> None:
        """SIGKILL and reap: the pid is gone, its discovery file stays."""
        self.proc.kill()
        self.proc.wait(WAIT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        self._log.close()


@pytest.fixture
def holders(tmp_path):
    """Start holders with ``holders(port=..., name=...)``; all are killed
    at the end of the test."""
    made: list[Holder] = []

    def start(**kwargs) -> Holder:
        h = Holder(tmp_path, **kwargs)
        made.append(h)
        return h

    yield start
    for h in made:
        h.close()
