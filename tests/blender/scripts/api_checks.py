"""bgloop's Blender-facing API inside a headless Blender (or bpy module).

Run by test_blender_api.py; every check is a plain assert, the script
prints "API CHECKS OK" only if all of them held (and exits non-zero via
--python-exit-code / the exception otherwise).
"""

import asyncio
import concurrent.futures
import sys
import threading

import bpy

import bgloop
import bgloop.blender as bb


def expect(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return str(exc)
    raise AssertionError(f"{fn.__name__}{args} did not raise {exc_type.__name__}")


loop = bgloop.ensure_loop()
assert bgloop.ensure_loop() is loop
info = bb.info()
assert info["background"] is True
assert info["driver_installed"] is False, "no timers driver in background mode"
assert sys.modules["_bgloop_process"].loop is loop
assert sys.modules["_bgloop_process"].package is bgloop

# run_on_main: result and exception cross from a worker to the loop thread.
def on_main(x):
    assert threading.current_thread() is threading.main_thread()
    return x * 2

def boom():
    raise KeyError("boom")

results = {}

def worker():
    results["value"] = bgloop.run_on_main(on_main, 21).result(10)
    try:
        bgloop.run_on_main(boom).result(10)
    except KeyError as exc:
        results["error"] = exc
    cancelled = bgloop.run_on_main(on_main, 1)
    results["cancel"] = cancelled.cancel()
    # ensure_loop() off the main thread: same loop, nothing installed.
    results["loop"] = bgloop.ensure_loop()

async def main():
    t = threading.Thread(target=worker)
    t.start()
    while t.is_alive():
        await asyncio.sleep(0.01)
    t.join()

loop.run_until_complete(main())
assert results["value"] == 42
assert isinstance(results["error"], KeyError)
assert results["cancel"] is True
assert results["loop"] is loop
assert isinstance(bgloop.run_on_main(len, "abc"), concurrent.futures.Future)
msg = expect(TypeError, bgloop.run_on_main, 42)
assert "callable" in msg, msg

# load_pre / load_post subscriptions, sync and async callbacks.
seen = []

async def async_cb(*args):
    seen.append("async-post")

sub_pre = bb.subscribe("load_pre", lambda *a: seen.append("pre"))
sub_post = bb.subscribe("load_post", lambda *a: seen.append("post"))
sub_async = bb.subscribe("load_post", async_cb)
sub_bad = bb.subscribe("load_post", lambda *a: 1 / 0)      # must not break the others
bpy.ops.wm.read_homefile(use_empty=True)
loop.run_until_complete(asyncio.sleep(0))
loop.run_until_complete(asyncio.sleep(0))
assert seen == ["pre", "post", "async-post"], seen
for sub in (sub_pre, sub_post, sub_async):
    sub.close()
sub_bad()                                                   # calling it closes it too
bpy.ops.wm.read_homefile(use_empty=True)
assert seen == ["pre", "post", "async-post"], seen
assert bb.info()["subscribers"] == {"load_pre": 0, "load_post": 0}
handlers = [h for h in bpy.app.handlers.load_post if getattr(h, "__name__", "") == "bgloop_load_post"]
assert len(handlers) == 1, handlers                         # installed once, persistent

assert "unknown event" in expect(ValueError, bb.subscribe, "render_post", print)
assert "callable" in expect(TypeError, bb.subscribe, "load_pre", None)

# configure(): the one driver's settings, with checked input.
assert "budget" in expect(TypeError, bb.configure, budget="2ms")
assert "budget" in expect(ValueError, bb.configure, budget=0)
assert "interval" in expect(ValueError, bb.configure, interval=5)
assert "interval" in expect(TypeError, bb.configure, interval="fast")
bb.configure(budget=None)
assert bb.info()["budget"] is None
bb.configure(budget=0.003, interval=0.02)
assert (bb.info()["budget"], bb.info()["interval"]) == (0.003, 0.02)

# A second loop cannot be driven next to the shared one.
other = bgloop.new_event_loop()
try:
    msg = expect(bb.ClashError, bb._maybe_install_driver, other)
    assert "already drives" in msg, msg
finally:
    other.close()

print("API CHECKS OK", flush=True)
