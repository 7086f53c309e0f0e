"""Soak of bgloop inside a real Blender in the background.

    blender -b --factory-startup --python soak_blender.py -- \
        --seconds 60 --addons soak_addon_1,soak_addon_2 [--leak KIND]

The add-ons (tests/soak/soak_addon.py, installed in the user scripts
directory) register an echo server and a crashing, restarting service on
enable and stop and forget them on disable.  Each cycle enables them all,
drives the shared loop with bgloop.kick() as a host does while client
threads connect, echo and hang up (one client stays connected across the
disable on odd cycles) and worker threads keep calling
call_soon_threadsafe(), disables them, and samples the process at that
quiet point (tests/soak/flat.py).  Exit status 0 when every series is flat.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402

import bgloop  # noqa: E402

import flat  # noqa: E402
import leaks  # noqa: E402

WORKERS = 2
CLIENTS_PER_ADDON = 6


class _QuietCrashes(logging.Filter):
    """The crashing service's failures are expected: keep them out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return "deliberate crash" not in record.getMessage() + repr(exc)


class Soak:
    def __init__(self, args):
        self.seconds = args.seconds
        self.addons = args.addons.split(",")
        self.leak = args.leak
        self.leaked: list = []
        self.loop = bgloop.ensure_loop()
        self.samples: list[dict[str, int]] = []
        self.cycles = 0
        self.clients = 0
        self.client_errors: list[str] = []
        self.ts_made = [0] * WORKERS
        self.ts_ran = [0] * WORKERS
        self.ts_out_of_order = 0
        self.stop_workers = threading.Event()

    def kick_until(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"cycle {self.cycles}: {what} within {timeout} s: "
                                   f"{bgloop.status()}")
            bgloop.kick(timeout=0.005, budget=0.01)

    # ---- threads -------------------------------------------------------------

    def _ts_receive(self, w: int, i: int) -> None:
        if self.ts_ran[w] != i:
            self.ts_out_of_order += 1
        self.ts_ran[w] = i + 1

    def worker(self, w: int) -> None:
        i = 0
        while not self.stop_workers.is_set():
            for _ in range(100):
                self.loop.call_soon_threadsafe(self._ts_receive, w, i)
                i += 1
            self.ts_made[w] = i
            time.sleep(0.002)

    def client(self, port: int, n: int) -> None:
        payload = b"ping %d\n" % n * (1 + n % 5)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(payload)
                got = b""
                while len(got) < len(payload):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            if got != payload:
                self.client_errors.append(f"client {n}: echo mismatch")
        except OSError as exc:
            self.client_errors.append(f"client {n}: {exc!r}")

    @staticmethod
    def _at_eof(sock: socket.socket) -> bool:
        try:
            return sock.recv(1) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True     # reset: the connection is gone too

    # ---- a cycle -------------------------------------------------------------

    def cycle(self) -> None:
        for name in self.addons:
            bpy.ops.preferences.addon_enable(module=name)
        mods = [sys.modules[name] for name in self.addons]
        self.kick_until(lambda: all(m.port for m in mods), 10, "echo servers not listening")
        threads = [threading.Thread(target=self.client, args=(m.port, i * 10 + k))
                   for i, m in enumerate(mods) for k in range(CLIENTS_PER_ADDON)]
        for th in threads:
            th.start()
        self.clients += len(threads)
        self.kick_until(lambda: not any(th.is_alive() for th in threads), 30, "clients not done")
        for th in threads:
            th.join()
        lingering = None
        if self.cycles % 2:
            lingering = socket.create_connection(("127.0.0.1", mods[0].port), timeout=10)
            lingering.setblocking(False)
            self.clients += 1
            for _ in range(5):
                bgloop.kick(timeout=0.01)     # accepted, its handler waiting
        for name in self.addons:
            bpy.ops.preferences.addon_disable(module=name)
        if lingering is not None:
            with lingering:
                try:
                    self.kick_until(lambda: self._at_eof(lingering), 5, "")
                except RuntimeError:
                    self.client_errors.append("an idle client never saw EOF after disable")
        leaks.leak(self.leak, self.leaked, self.loop)
        # Closed transports finish closing in the next iterations.
        for _ in range(5):
            bgloop.kick(timeout=0.01)
        self.samples.append(flat.sample(self.loop))
        self.cycles += 1

    def run(self) -> list[str]:
        workers = [threading.Thread(target=self.worker, args=(w,), daemon=True)
                   for w in range(WORKERS)]
        for th in workers:
            th.start()
        error = None
        try:
            end = time.monotonic() + self.seconds
            while time.monotonic() < end:
                self.cycle()
        except Exception as exc:  # noqa: BLE001 - reported, and the soak fails
            error = repr(exc)
        finally:
            self.stop_workers.set()
            for th in workers:
                th.join()
            self.kick_until(lambda: self.ts_ran == self.ts_made, 30, "thread-safe calls run")
        problems = flat.judge(self.samples)
        if error:
            problems.append(error)
        if self.ts_out_of_order:
            problems.append(f"{self.ts_out_of_order} thread-safe calls ran out of order")
        crashes = sum(getattr(sys.modules.get(n), "crashes", 0) for n in self.addons)
        if crashes < self.cycles:
            problems.append(f"the crashing services crashed {crashes} times in "
                            f"{self.cycles} cycles")
        self.crashes = crashes
        return problems + sorted(set(self.client_errors))[:10]


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    ap = argparse.ArgumentParser(prog="soak_blender.py")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--addons", default="soak_addon_1,soak_addon_2")
    ap.add_argument("--leak", choices=leaks.KINDS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietCrashes())

    soak = Soak(args)
    t0 = time.monotonic()
    problems = soak.run()
    print(f"soak-blender: Blender {bpy.app.version_string}, {soak.cycles} cycles of "
          f"{len(soak.addons)} add-ons enabled and disabled in {time.monotonic() - t0:.0f} s, "
          f"{soak.crashes} crashes restarted, {sum(soak.ts_made)} thread-safe calls, "
          f"{soak.clients} clients")
    print(flat.summary(soak.samples))
    for p in problems:
        print(f"soak-blender: FAIL: {p}")
    if not problems:
        print("soak-blender: OK: flat")
    sys.stdout.flush()
    return 1 if problems else 0


sys.exit(main())
