"""Threads flooding call_soon_threadsafe() must not starve timers: a task's
short sleeps keep returning about on time, on bgloop.Loop as on the stock
loop, and every call still runs, in the order each thread made it.

Timing is judged against the stock asyncio loop measured in the same test,
with a large factor, never against a fixed figure."""
import asyncio
import threading
import time

from _loop_util import FACTORIES, exc_log, loop, run  # noqa: F401  (fixtures)

THREADS = 8
SLEEP = 0.02
WINDOW = 1.0       # seconds of sleeps measured under the flood
FLOOD_LIMIT = 15.0  # producers give up after this, so a starved loop still ends


def _flood(lp):
    """Eight threads call lp.call_soon_threadsafe() as fast as they can while
    a task sleeps SLEEP seconds again and again for WINDOW seconds.  Returns
    the sleeps' durations, and per thread the calls made, run and run out of
    order."""
    stop = threading.Event()
    made = [0] * THREADS
    ran = [0] * THREADS
    out_of_order = [0] * THREADS

    def receive(t, i):
        if i != ran[t]:
            out_of_order[t] += 1
        ran[t] = i + 1

    def producer(t):
        give_up = time.monotonic() + FLOOD_LIMIT
        i = 0
        while not stop.is_set() and time.monotonic() < give_up:
            lp.call_soon_threadsafe(receive, t, i)
            i += 1
            made[t] = i

    async def main():
        threads = [threading.Thread(target=producer, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        slept = []
        try:
            end = time.monotonic() + WINDOW
            while time.monotonic() < end:
                t0 = time.monotonic()
                await asyncio.sleep(SLEEP)
                slept.append(time.monotonic() - t0)
        finally:
            stop.set()
            for th in threads:
                th.join()
        # Everything made is queued by now: let it run.
        while ran != made:
            await asyncio.sleep(0)
        return slept

    return run(lp, main(), timeout=120), made, ran, out_of_order


def test_a_flood_of_threadsafe_calls_does_not_starve_a_sleeping_task():
    results = {}
    for name in ("asyncio", "bgloop"):
        lp = FACTORIES[name]()
        try:
            results[name] = _flood(lp)
        finally:
            lp.close()
    for name, (slept, made, ran, out_of_order) in results.items():
        assert slept, name
        assert ran == made, f"{name}: calls lost: made {made}, ran {ran}"
        assert out_of_order == [0] * THREADS, f"{name}: out of per-thread order"
        assert min(made) > 0, f"{name}: a thread made no call: {made}"
    stock = max(results["asyncio"][0])
    worst = max(results["bgloop"][0])
    summary = {n: (round(max(r[0]), 3), len(r[0]), sum(r[1])) for n, r in results.items()}
    # (longest sleep, sleeps, calls) per loop.
    assert worst <= 5 * stock + 0.5, f"sleep({SLEEP}) starved under the flood: {summary}"


def test_threadsafe_calls_from_the_loop_thread_keep_fifo_with_call_soon(loop):
    # More than one iteration's worth of thread-safe calls, then call_soon():
    # asyncio's single FIFO runs them all first.
    got = []
    n = 5000

    def burst():
        for i in range(n):
            loop.call_soon_threadsafe(got.append, i)
        loop.call_soon(got.append, "soon")

    async def main():
        loop.call_soon(burst)
        while len(got) < n + 1:
            await asyncio.sleep(0)

    run(loop, main())
    assert got == list(range(n)) + ["soon"]


def test_a_flood_made_between_iterations_runs_in_order(loop):
    # The backlog is built while the loop is not running, then drained by
    # run_until_complete(): nothing lost, each thread's order kept.
    per_thread = 5000
    got = [[] for _ in range(THREADS)]

    def producer(t):
        for i in range(per_thread):
            loop.call_soon_threadsafe(got[t].append, i)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    async def drain():
        while sum(map(len, got)) < THREADS * per_thread:
            await asyncio.sleep(0)

    run(loop, drain())
    assert all(g == list(range(per_thread)) for g in got)
