"""The Windows build's programs under wine (scripts/test.d/27-windows.sh).

BGLOOP_WINDOWS_BUILD names the Meson build directory of the Windows cross
build (default build/windows).  Programs run under tests/windows/wine, and
through ctrl_event.exe (built here with mingw-w64), which starts them in a
console of their own and sends the console control event a test asks for.
"""
import os
import pathlib
import queue
import shutil
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WINE = ROOT / "tests" / "windows" / "wine"
BUILD = pathlib.Path(os.environ.get("BGLOOP_WINDOWS_BUILD", ROOT / "build" / "windows"))
CC = "x86_64-w64-mingw32-gcc"
TIMEOUT = 60.0  # any single wait; only reached if something hangs


@pytest.fixture(scope="session")
def ctrl_event(tmp_path_factory):
    if not shutil.which(CC):
        pytest.skip(f"{CC} missing (apt mingw-w64: scripts/setup)")
    exe = tmp_path_factory.mktemp("ctrl_event") / "ctrl_event.exe"
    subprocess.run([CC, "-O2", "-Wall", "-Werror", str(ROOT / "tests/windows/ctrl_event.c"),
                    "-o", str(exe)], check=True)
    return exe


@pytest.fixture(scope="session")
def example():
    def path(name):
        exe = BUILD / "examples" / (name + ".exe")
        if not exe.is_file():
            pytest.skip(f"{exe} is not built (scripts/test.d/27-windows.sh builds it)")
        return exe
    return path


class Console:
    """A program in a console of its own under wine: its output line by line,
    console control events on request, its exit status."""

    def __init__(self, ctrl_event, event, argv):
        # libbgloop's DLL is in the build's lib/.
        env = dict(os.environ, WINEPATH=";".join(
            filter(None, ["Z:" + str(BUILD / "lib"), os.environ.get("WINEPATH")])))
        self.proc = subprocess.Popen([str(WINE), str(ctrl_event), event] + [str(a) for a in argv],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.lines = queue.Queue()
        self.seen = []
        self.err = []
        threading.Thread(target=self._read, daemon=True).start()
        self.err_reader = threading.Thread(target=lambda: self.err.append(self.proc.stderr.read()),
                                           daemon=True)
        self.err_reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode(errors="replace").rstrip("\r\n"))
        self.lines.put(None)

    def readline(self):
        """The next line of output; None at its end."""
        try:
            line = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no output within {TIMEOUT} s; so far: {self.seen}")
        if line is not None:
            self.seen.append(line)
        return line

    def wait_for(self, text):
        while (line := self.readline()) is not None:
            if text in line:
                return line
        raise AssertionError(f"output ended without {text!r}: {self.seen}")

    def send_event(self):
        self.proc.stdin.write(b"\n")
        self.proc.stdin.close()

    def finish(self):
        """Exit status, the rest of stdout, stderr."""
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"did not exit within {TIMEOUT} s; output: {self.seen}")
        rest = []
        while (line := self.readline()) is not None:
            rest.append(line)
        self.err_reader.join(TIMEOUT)
        return self.proc.returncode, rest, b"".join(self.err).decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            # The program itself is a process of the wine prefix, not a child.
            subprocess.run([str(WINE), "-k"], check=False)


@pytest.fixture
def console(ctrl_event):
    started = []

    def start(event, argv):
        c = Console(ctrl_event, event, argv)
        started.append(c)
        return c
    yield start
    for c in started:
        c.kill()
