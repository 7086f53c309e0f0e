"""Soak of a plain Python process under bgloop.serve().

    python soak_python.py --seconds 90 [--leak fd|task|thread|rss]

A conductor service runs cycles until the time is up.  Each cycle starts
the churn owners - an echo server pushed as a resource, a service that
crashes and is restarted, a pair of dependent services that spawn tasks,
pipe readers and executor jobs - lets clients connect and disconnect
while worker threads keep calling call_soon_threadsafe(), then stops the
owners and samples the process at that quiet point (tests/soak/flat.py).
At the end it stops serve() with SIGTERM; serve()'s exit code and the
flatness of every series decide the result.  ``--leak`` adds a small
deliberate leak per cycle, to show the soak catches one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bgloop  # noqa: E402

import flat  # noqa: E402
import leaks  # noqa: E402

OWNERS = ("soak-net", "soak-crash", "soak-pair")
WORKERS = 4
CLIENTS_PER_CYCLE = 24


class Soak:
    def __init__(self, seconds: float, leak: str | None):
        self.seconds = seconds
        self.leak = leak
        self.leaked: list = []
        self.samples: list[dict[str, int]] = []
        self.cycles = 0
        self.echo_port: int | None = None
        self.port_ready: asyncio.Event | None = None
        self.crashes = 0
        self.ts_calls = 0
        self.ts_made = [0] * WORKERS
        self.ts_ran = [0] * WORKERS
        self.ts_out_of_order = 0
        self.clients = 0
        self.client_errors: list[str] = []
        self.stop_workers = threading.Event()
        self.error: str | None = None

    # ---- worker threads: thread-safe calls all the time ---------------------

    def _ts_receive(self, w: int, i: int) -> None:
        if self.ts_ran[w] != i:
            self.ts_out_of_order += 1
        self.ts_ran[w] = i + 1

    def worker(self, w: int, loop: asyncio.AbstractEventLoop) -> None:
        i = 0
        while not self.stop_workers.is_set():
            for _ in range(200):
                loop.call_soon_threadsafe(self._ts_receive, w, i)
                i += 1
            self.ts_made[w] = i
            time.sleep(0.002)

    # ---- the churn services ------------------------------------------------

    def register(self) -> None:
        soak = self

        async def echo(reader, writer):
            try:
                while data := await reader.read(4096):
                    writer.write(data)
                    await writer.drain()
            except asyncio.CancelledError:
                pass    # the owner's stop: hang up
            finally:
                writer.close()

        @bgloop.service("echo", owner="soak-net", restart="on-failure", stop_timeout=1.0)
        async def echo_service(ctx):
            server = ctx.resources.push(await asyncio.start_server(echo, "127.0.0.1", 0))
            soak.echo_port = server.sockets[0].getsockname()[1]
            ctx.ready()
            soak.port_ready.set()
            await ctx.stopping.wait()

        @bgloop.service("crasher", owner="soak-crash", restart="on-failure",
                        restart_delay=0.01, restart_max_delay=0.02, stop_timeout=0.5,
                        start_limit_burst=10000, start_limit_interval=1.0)
        async def crasher(ctx):
            a, b = socket.socketpair()
            ctx.resources.push(a)
            ctx.resources.push(b)
            asyncio.get_running_loop().create_task(asyncio.sleep(3600))
            ctx.ready()
            await asyncio.sleep(0.05)
            soak.crashes += 1
            raise RuntimeError("deliberate crash")

        @bgloop.service("pair.db", owner="soak-pair", stop_timeout=1.0)
        async def db(ctx):
            loop = asyncio.get_running_loop()
            r, w = os.pipe()
            ctx.resources.push(lambda: (os.close(r), os.close(w)))
            got = []
            loop.add_reader(r, lambda: got.append(os.read(r, 64)))
            ctx.resources.push(lambda: loop.remove_reader(r))
            os.write(w, b"x")
            ctx.ready()
            await ctx.stopping.wait()

        @bgloop.service("pair.api", owner="soak-pair", depends_on=("pair.db",),
                        stop_timeout=0.5)
        async def api(ctx):
            loop = asyncio.get_running_loop()
            # Executor jobs and tasks that never end on their own.
            await asyncio.gather(*(loop.run_in_executor(None, time.sleep, 0.001)
                                   for _ in range(8)))
            for _ in range(5):
                loop.create_task(asyncio.Event().wait())
            loop.call_later(3600, lambda: None).cancel()
            ctx.ready()
            await ctx.stopping.wait()

    # ---- clients -------------------------------------------------------------

    async def client(self, n: int) -> None:
        self.clients += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.echo_port)
            try:
                payload = b"ping %d\n" % n * (1 + n % 7)
                writer.write(payload)
                await writer.drain()
                echoed = await reader.readexactly(len(payload))
                if echoed != payload:
                    self.client_errors.append(f"client {n}: echo mismatch")
            finally:
                writer.close()
                await writer.wait_closed()
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.client_errors.append(f"client {n}: {exc!r}")

    # ---- the conductor -------------------------------------------------------

    async def quiet_sample(self) -> dict[str, int]:
        # Closed transports finish closing in the next iterations.
        for _ in range(5):
            await asyncio.sleep(0.01)
        return flat.sample()

    async def cycle(self) -> None:
        self.port_ready = asyncio.Event()
        bgloop.start_services(owner="soak-net")
        bgloop.start_services(owner="soak-crash")
        bgloop.start_services(owner="soak-pair")
        await asyncio.wait_for(self.port_ready.wait(), 10)
        # Clients in waves, while the crasher restarts and workers post.
        for wave in range(3):
            await asyncio.gather(*(self.client(wave * 100 + i)
                                   for i in range(CLIENTS_PER_CYCLE // 3)))
            await asyncio.sleep(0.05)
        # Half of the time, an open client outlives the stop: the server's
        # close must take its connection down too.
        lingering = None
        if self.cycles % 2:
            lingering = await asyncio.open_connection("127.0.0.1", self.echo_port)
            self.clients += 1
        for owner in OWNERS:
            await bgloop.stop_services_async(owner=owner)
        if lingering is not None:
            reader, writer = lingering
            try:
                await asyncio.wait_for(reader.read(), 5)   # EOF once the server closed it
            except asyncio.TimeoutError:
                self.client_errors.append("an idle client never saw EOF after the stop")
            writer.close()
            await writer.wait_closed()
        leaks.leak(self.leak, self.leaked, asyncio.get_running_loop())
        self.cycles += 1

    async def conduct(self, ctx) -> None:
        ctx.ready()
        loop = asyncio.get_running_loop()
        threads = [threading.Thread(target=self.worker, args=(w, loop), daemon=True)
                   for w in range(WORKERS)]
        for th in threads:
            th.start()
        try:
            end = time.monotonic() + self.seconds
            while time.monotonic() < end and not ctx.stopping.is_set():
                await self.cycle()
                self.samples.append(await self.quiet_sample())
        except Exception as exc:  # noqa: BLE001 - reported, and the soak fails
            self.error = f"cycle {self.cycles}: {exc!r}"
        finally:
            self.stop_workers.set()
            for th in threads:
                await loop.run_in_executor(None, th.join)
            # The workers' last calls, then serve() stops everything.
            while self.ts_ran != self.ts_made:
                await asyncio.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)
        await ctx.stopping.wait()


class _QuietCrashes(logging.Filter):
    """The crasher's failures are expected: keep them out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return "deliberate crash" not in record.getMessage() + repr(exc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--leak", choices=leaks.KINDS)
    args = ap.parse_args()

    logging.basicConfig(level=logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietCrashes())
    soak = Soak(args.seconds, args.leak)
    soak.register()
    bgloop.service("conductor", owner="soak", stop_timeout=5.0)(soak.conduct)
    t0 = time.monotonic()
    code = bgloop.serve()
    took = time.monotonic() - t0

    print(f"soak-python: {soak.cycles} cycles in {took:.0f} s, {soak.crashes} crashes "
          f"restarted, {sum(soak.ts_made)} thread-safe calls, {soak.clients} clients, "
          f"serve() -> {code}")
    print(flat.summary(soak.samples))
    problems = flat.judge(soak.samples)
    if code != 0:
        problems.append(f"serve() returned {code}")
    if soak.error:
        problems.append(soak.error)
    if soak.ts_out_of_order:
        problems.append(f"{soak.ts_out_of_order} thread-safe calls ran out of order")
    if soak.ts_ran != soak.ts_made:
        problems.append(f"thread-safe calls lost: made {soak.ts_made}, ran {soak.ts_ran}")
    if soak.crashes < soak.cycles:
        problems.append(f"the crasher crashed {soak.crashes} times in {soak.cycles} cycles")
    problems += sorted(set(soak.client_errors))[:10]
    for p in problems:
        print(f"soak-python: FAIL: {p}")
    if not problems:
        print("soak-python: OK: flat")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
