#!/usr/bin/env python3
"""Runs examples/two_services (the README's service example): db starts,
then web; SIGINT stops web first, then db, and the exit status is 0.

Usage: test_two_services.py PATH/TO/two_services.  Exit status 0 on success.
BGLOOP_RUN_PREFIX, if set, is a command the example runs under (e.g.
"qemu-aarch64 -L SYSROOT" for a cross-built one).
Waits are bounded only to catch hangs; nothing asserts on durations.
"""
import os
import select
import shlex
import signal
import subprocess
import sys
import time

TIMEOUT = 60.0
RUN_PREFIX = shlex.split(os.environ.get("BGLOOP_RUN_PREFIX", ""))


def read_lines(proc, count, deadline):
    """The first `count` lines of output.  Reads the descriptor directly:
    a buffered reader could hold lines that select() no longer reports."""
    data = b""
    while data.count(b"\n") < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for output, got {data!r}")
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise SystemExit(f"output ended early: {data!r}")
            data += chunk
    return data.decode().split("\n")[:count], data.decode().split("\n", count)[count]


def main():
    proc = subprocess.Popen(RUN_PREFIX + [sys.argv[1]], stdout=subprocess.PIPE)
    try:
        lines, early = read_lines(proc, 2, time.monotonic() + TIMEOUT)
        want = ["db: up", "web: db is running, serving"]
        if lines != want:
            raise SystemExit(f"start: got {lines}, expected {want}")
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=TIMEOUT)
        got = (early + rest.decode()).split("\n")[:-1]
        want = ["web: stopping", "db: stopping"]
        if got != want:
            raise SystemExit(f"stop: got {got}, expected {want}")
        if proc.returncode != 0:
            raise SystemExit(f"exit status {proc.returncode}, expected 0")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print("two_services: ok")


if __name__ == "__main__":
    main()
