"""Idle costs: the CPU price of a kick() that finds nothing to do, next to one
idle iteration of the stock asyncio loop (`loop.stop(); loop.run_forever()`),
and how often an idle process wakes up while it waits in a blocked kick() /
serve() / stock run_forever() (voluntary context switches of all its
threads, read from /proc, over a quiet interval).

    python bench_idle.py [--seconds 3]
"""
import argparse
import glob
import os
import subprocess
import sys
import textwrap
import time
import timeit


def idle_kick_us():
    import bgloop
    from loops import make_loop

    loop = bgloop.ensure_loop()
    bgloop.kick()
    res = {}

    def cost(fn, n=200000):
        # CPU time of this process: on a shared machine wall time mostly
        # measures the neighbours.
        t = timeit.Timer(fn, timer=time.process_time)
        return min(t.repeat(number=n, repeat=5)) / n * 1e6

    def one_iteration(lp):
        def step():
            lp.stop()
            lp.run_forever()

        return step

    stock = make_loop("asyncio")
    res["stock asyncio: stop(); run_forever()"] = cost(one_iteration(stock), 50000)
    stock.close()
    res["bgloop.kick()"] = cost(bgloop.kick)
    res["loop.kick()"] = cost(loop.kick)
    h = loop.call_later(3600, print)  # an armed timer costs a clock read
    res["loop.kick() with a timer armed"] = cost(loop.kick)
    h.cancel()
    own = make_loop("bgloop")
    res["bgloop.Loop: stop(); run_forever()"] = cost(one_iteration(own), 50000)
    own.close()
    return res


CHILDREN = {
    "blocked bgloop.kick(timeout=None)": """
        import asyncio, bgloop
        loop = bgloop.ensure_loop()
        srv = loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", 0))
        print("ready", flush=True)
        while True:
            bgloop.kick(timeout=None)
    """,
    "bgloop.serve() with an idle TCP service": """
        import asyncio, bgloop
        @bgloop.service("idle")
        async def idle(ctx):
            srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
            ctx.resources.push(srv)
            ctx.ready()
            print("ready", flush=True)
            await ctx.stopping.wait()
        raise SystemExit(bgloop.serve())
    """,
    "stock asyncio run_forever()": """
        import asyncio
        loop = asyncio.new_event_loop()
        srv = loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", 0))
        print("ready", flush=True)
        loop.run_forever()
    """,
}


def ctx_switches(pid):
    total = 0
    for status in glob.glob(f"/proc/{pid}/task/*/status"):
        with open(status) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches"):
                    total += int(line.split()[1])
    return total


def idle_wakeups(code, seconds):
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            return None
        time.sleep(0.5)  # let start-up settle
        before = ctx_switches(proc.pid)
        time.sleep(seconds)
        return (ctx_switches(proc.pid) - before) / seconds
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    print(f"Python {sys.version.split()[0]}")
    costs = idle_kick_us()
    stock = costs["stock asyncio: stop(); run_forever()"]
    for label, us in costs.items():
        print(f"  idle {label:38s} {us:7.3f} us  {us / stock:5.2f}x stock")
    for label, code in CHILDREN.items():
        rate = idle_wakeups(code, args.seconds)
        shown = "n/a (child failed)" if rate is None else f"{rate:.2f} wakeups/s"
        print(f"  {label:42s} {shown}")


if __name__ == "__main__":
    main()
