"""bgloop's Blender-facing API inside a headless Blender (or bpy module).

Run by test_blender_api.py; every check is a plain assert, the script
prints "API CHECKS OK" only if all of them held (and exits non-zero via
--python-exit-code / the exception otherwise).
"""

import asyncio
import collections.abc
import concurrent.futures
import dataclasses
import sys
import threading
import types
import typing

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

# The process-wide registry: one typed, slotted object, no string sentinels.
def conforms(value, hint):
    """value fits the annotation (outer types only: dict, list, callable)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint) or hint
    if origin is collections.abc.Callable:
        return callable(value)
    return isinstance(value, origin)


def check_registry(reg):
    hints = typing.get_type_hints(bb.Registry, localns={"Loop": bgloop.Loop})
    assert set(hints) == {f.name for f in dataclasses.fields(reg)} == set(bb.Registry.__slots__)
    for name, hint in hints.items():
        value = getattr(reg, name)
        if name == "lock":              # threading.RLock is a factory, not a class
            assert hasattr(value, "acquire") and hasattr(value, "release"), value
            continue
        assert conforms(value, hint), f"registry.{name} = {value!r} is not {hint}"
    assert isinstance(reg.budget, (float, type(None))), reg.budget
    assert isinstance(reg.budget_decided, bool)


reg = sys.modules["_bgloop_process"]
assert type(reg) is bb.Registry and bb._registry() is reg
assert reg.protocol == bb.PROTOCOL == 2 and info["protocol"] == 2
assert not isinstance(reg, types.ModuleType) and not hasattr(reg, "__dict__")
assert "no attribute" in expect(AttributeError, setattr, reg, "bugdet", 0.001)
assert reg.loop is loop and reg.package is bgloop
assert reg.origin == reg.loop_origin == bb._origin()
# Background: no driver, so the budget is not decided yet (distinct from None = no limit).
assert (reg.budget, reg.budget_decided, info["budget_decided"]) == (None, False, False)
assert reg.driver is None and reg.ticks == 0 and reg.errors == 0
check_registry(reg)

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
assert not reg.budget_decided, "a rejected configure() changed the budget"
bb.configure(budget=None)
assert (bb.info()["budget"], bb.info()["budget_decided"]) == (None, True)
bb.configure(interval=0.05)                                 # leaves the budget alone
assert (reg.budget, reg.interval) == (None, 0.05)
bb.configure(budget=0.003, interval=0.02)
assert (bb.info()["budget"], bb.info()["interval"]) == (0.003, 0.02)
check_registry(reg)

# A second loop cannot be driven next to the shared one.
other = bgloop.new_event_loop()
try:
    msg = expect(bb.ClashError, bb._maybe_install_driver, other)
    assert "already drives" in msg, msg
finally:
    other.close()

print("API CHECKS OK", flush=True)
