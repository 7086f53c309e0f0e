"""bgloop meets a registry it cannot share, inside a headless Blender.

Run by test_blender_api.py before anything imported bgloop.  A protocol-1
bgloop (an add-on with an older vendored copy, enabled first) left its
registry: a module used as a bag of attributes.  Importing this bgloop must
fail with ClashError naming both copies and both protocols, and leave the
old copy's state alone.  Prints "REGISTRY CLASH CHECKS OK" if all held.
"""

import os
import sys
import types

import bpy

OLD_ORIGIN = "bgloop (/opt/old_addon/vendor/bgloop)"
old = types.ModuleType("_bgloop_process", "bgloop process-wide state shared by all copies")
old.protocol = 1
old.origin = OLD_ORIGIN
old.budget = "default"
old.loop = None
old.driver = None
sys.modules["_bgloop_process"] = old
handlers_before = {e: list(getattr(bpy.app.handlers, e)) for e in ("load_pre", "load_post")}

try:
    import bgloop  # noqa: F401
except Exception as exc:
    error = exc
else:
    raise AssertionError("bgloop imported next to a protocol-1 registry")

bb = sys.modules["bgloop.blender"]              # left behind by the failed import
assert type(error) is bb.ClashError, repr(error)
msg = str(error)
mine = os.path.dirname(bb.__file__)
for part in (OLD_ORIGIN, "protocol 1", mine, f"protocol {bb.PROTOCOL}"):
    assert part in msg, f"{part!r} not in {msg!r}"
assert sys.modules["_bgloop_process"] is old and old.budget == "default"
assert "bgloop" not in sys.modules
for event, before in handlers_before.items():
    assert list(getattr(bpy.app.handlers, event)) == before, event

# Anything else under that name (no protocol at all) is refused too, and
# the callbacks that must never raise just find no registry.
sys.modules["_bgloop_process"] = object()
msg = None
try:
    bb._registry()
except bb.ClashError as exc:
    msg = str(exc)
assert msg is not None and "protocol ?" in msg and mine in msg, msg
assert bb._driver() is None and bb.driver_installed() is False
bb._dispatch("load_post", ())

print("REGISTRY CLASH CHECKS OK", flush=True)
