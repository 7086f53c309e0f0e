"""Services registered by a script (``--python``) next to the demo add-on.

``test.db`` <- ``test.api`` (api depends on db): on a graceful stop, api
must stop first, and each closes its resource.  Each also spawns a child
task that would run forever, to show children are cancelled cleanly.  With
BGLOOP_TEST_CRASH=1 there is instead a single service that fails for good
after starting (serve() keeps serving healthy services, so it is alone).
"""

import asyncio
import os

import bgloop


def _closer(what):
    def close():
        print(f"CLOSE {what}", flush=True)
    return close


async def _forever():
    await asyncio.Event().wait()


def _make(name):
    async def run(ctx):
        ctx.resources.push(_closer(f"{name}-resource"))
        asyncio.get_running_loop().create_task(_forever())
        ctx.ready()
        print(f"READY {name}", flush=True)
        await ctx.stopping.wait()
        print(f"STOP {name}", flush=True)
    return run


if os.environ.get("BGLOOP_TEST_CRASH") != "1":
    bgloop.service("test.db", owner="test-script", stop_timeout=3.0)(_make("db"))
    bgloop.service("test.api", owner="test-script", depends_on=("test.db",),
                   stop_timeout=3.0)(_make("api"))
else:
    @bgloop.service("test.crash", owner="test-script", restart="no")
    async def crash(ctx):
        ctx.ready()
        await asyncio.sleep(0.2)
        raise RuntimeError("deliberate crash of test.crash")
