"""A service that does everything a stop must survive: it ignores
``ctx.stopping``, swallows its cancellation and keeps a pipe readable.

BGLOOP_TEST_STOP says how it is stopped:

* ``quit``: not at all - the script ends, Blender quits, and bgloop's exit
  handler stops it;
* ``disable``: the add-on ``stubborn_addon`` (written by the test) is
  enabled, then disabled: its ``unregister()`` stops its service.

Prints ``BOUND <seconds>`` (the longest the stop may take: the service
manager's bound plus the margin) once the service runs, and ``DISABLED
<seconds>`` after a disable.
"""

import os
import sys
import time

import bgloop
from bgloop import services

MODE = os.environ["BGLOOP_TEST_STOP"]


def wait_running(name):
    end = time.monotonic() + 30
    while bgloop.status().get(name, {}).get("state") != "running":
        if time.monotonic() > end:
            sys.exit(f"{name} never ran: {bgloop.status()}")
        bgloop.kick(0.05, 0.01)


def bound():
    mgr = services.manager()
    return mgr.c.stop_bound(None) + services.STOP_MARGIN


if MODE == "disable":
    import addon_utils

    addon_utils.enable("stubborn_addon", default_set=True)
    wait_running("stubborn_addon.svc")
    print(f"BOUND {bound():.3f}", flush=True)
    t0 = time.monotonic()
    addon_utils.disable("stubborn_addon", default_set=True)
    print(f"DISABLED {time.monotonic() - t0:.3f}", flush=True)
    print("STATE", bgloop.status().get("stubborn_addon.svc", {}).get("state"), flush=True)
else:
    import asyncio

    r, w = os.pipe()
    os.write(w, b"x")

    @bgloop.service("stubborn", owner="stubborn-test", stop_timeout=0.5)
    async def stubborn(ctx):
        asyncio.get_running_loop().add_reader(r, lambda: None)
        ctx.ready()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass

    bgloop.ensure_loop()
    bgloop.start_services("stubborn-test")
    wait_running("stubborn")
    print(f"BOUND {bound():.3f}", flush=True)
print("SCRIPT END", flush=True)
