"""Scheduling costs: a call_soon() storm, timers (call_later() scheduled and
cancelled, scheduled and fired) and an idle step, on the stock asyncio loop,
uvloop (if installed), bgloop.Loop with its C handles (the default) and
bgloop.Loop with asyncio's Python handles (bgloop-py-handles,
BGLOOP_PY_HANDLES=1), in one run.  Times are CPU time of this process per
operation (a shared machine's wall time measures the neighbours); the ratio
is the stock loop's time over the loop's (higher is faster).

    python bench_calls.py [--n 100000] [--repeat 5]
"""
import argparse
import asyncio
import os
import sys
import time

from loops import make_loop


def new_loop(kind):
    if kind.startswith("bgloop"):
        os.environ["BGLOOP_PY_HANDLES"] = "1" if kind == "bgloop-py-handles" else "0"
        kind = "bgloop"
    return make_loop(kind)


def kinds():
    names = ["asyncio", "bgloop", "bgloop-py-handles"]
    try:
        import uvloop  # noqa: F401

        names.insert(1, "uvloop")
    except ImportError:
        pass
    return names


def noop(*args):
    pass


def run_all(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def call_soon_storm(loop, n):
    """n call_soon() of a no-op, then one run that executes them."""
    call_soon = loop.call_soon
    t0 = time.process_time()
    for _ in range(n):
        call_soon(noop)
    run_all(loop)
    return time.process_time() - t0


def call_soon_chain(loop, n):
    """A callback that schedules the next one, n times (a busy task's
    pattern: one ready callback per iteration)."""
    left = [n]

    def step():
        left[0] -= 1
        if left[0]:
            loop.call_soon(step)
        else:
            loop.stop()

    t0 = time.process_time()
    loop.call_soon(step)
    loop.run_forever()
    return time.process_time() - t0


def timers_cancel(loop, n):
    """n call_later() far in the future, each cancelled."""
    call_later = loop.call_later
    t0 = time.process_time()
    handles = [call_later(3600.0 + i * 1e-6, noop) for i in range(n)]
    for h in handles:
        h.cancel()
    run_all(loop)  # asyncio drops cancelled timers from its heap here
    return time.process_time() - t0


def timers_fire(loop, n):
    """n call_later() due at once, then run until all have fired."""
    call_later = loop.call_later
    done = loop.create_future()
    left = [n]

    def fire():
        left[0] -= 1
        if not left[0]:
            done.set_result(None)

    t0 = time.process_time()
    for i in range(n):
        call_later(i * 1e-9, fire)
    loop.run_until_complete(done)
    return time.process_time() - t0


def idle_step(loop, n):
    """One step of a loop with nothing to do: kick() on bgloop, stop();
    run_forever() (one idle iteration) elsewhere."""
    if hasattr(loop, "kick"):
        step = loop.kick
    else:
        def step():
            loop.stop()
            loop.run_forever()
    t0 = time.process_time()
    for _ in range(n):
        step()
    return time.process_time() - t0


BENCHES = [
    ("call_soon storm", call_soon_storm),
    ("call_soon chain", call_soon_chain),
    ("call_later + cancel", timers_cancel),
    ("call_later + fire", timers_fire),
    ("idle kick / iteration", idle_step),
]


def measure(kind, fn, n, repeat):
    best = None
    for _ in range(repeat):
        loop = new_loop(kind)
        try:
            fn(loop, min(n, 2000))  # warm up
            dt = fn(loop, n)
        finally:
            loop.close()
        best = dt if best is None else min(best, dt)
    return best / n * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    names = kinds()
    print(f"Python {sys.version.split()[0]}; CPU us per operation (ratio: stock / loop)")
    print(f"  {'':24s}" + "".join(f"{k:>26s}" for k in names))
    for label, fn in BENCHES:
        us = {k: measure(k, fn, args.n, args.repeat) for k in names}
        stock = us["asyncio"]
        cells = "".join(f"{us[k]:10.3f} us ({stock / us[k]:5.2f}x)".rjust(26) for k in names)
        print(f"  {label:24s}{cells}", flush=True)
    asyncio.set_event_loop(None)


if __name__ == "__main__":
    main()
