"""Channels in a real Blender 3.4 ``--background``: two add-ons, one on the
shared bgloop and one with its own vendored copy, talk through channels
(publish/subscribe and request/reply); reloading either one (disable, its
file changed, enable: the module is re-executed) ends its old subscription
and responder with its owner, and the channel works again afterwards."""

from __future__ import annotations

import json
import shutil

import blenderlib as bl

TEMPLATE = bl.HERE / "channels_addon.py"

SCRIPT = """
import addon_utils, json, os, sys, time

# The vendored copy is imported first: it becomes the bgloop every add-on
# (and this script) shares.
addon_utils.enable("chan_vend", default_set=False, handle_error=None)
import bgloop

loop = bgloop.ensure_loop()

def kick_until(cond):
    end = time.monotonic() + 30
    while not cond():
        assert time.monotonic() < end, "the loop did not get there in 30 s"
        loop.kick(timeout=0.05)

def run(coro):
    task = loop.create_task(coro)
    kick_until(task.done)
    return task.result()

def enable(name):
    addon_utils.enable(name, default_set=False, handle_error=None)
    kick_until(lambda: bgloop.status()[name + ".idle"]["state"] == "running")

def reload(name):
    addon_utils.disable(name, default_set=False, handle_error=None)
    mod = sys.modules[name]
    # Its file changed: enable() re-executes the module, as after an edit.
    t = os.path.getmtime(mod.__file__) + 2
    os.utime(mod.__file__, (t, t))

def ask(sender, target, msg):
    ch = sender.bgloop.channel(target + ".ask", owner=sender.__name__)
    try:
        return run(ch.request(msg, timeout=10))
    except sender.bgloop.NoResponder as exc:
        return "NoResponder: " + str(exc)

def talk(sender, receiver, tag):
    n = sender.HANDLES["news"].publish(tag)
    kick_until(lambda: tag in receiver.RECEIVED)
    return {"subscribers": n, "received": list(receiver.RECEIVED),
            "reply": ask(sender, receiver.__name__, tag)}

out = {"shared": bgloop.__name__}
enable("chan_vend")
enable("chan_inst")
vend, inst = sys.modules["chan_vend"], sys.modules["chan_inst"]
out["first"] = talk(vend, inst, "hello")
out["back_first"] = talk(inst, vend, "hi")

for name, other in (("chan_inst", vend), ("chan_vend", inst)):
    reload(name)
    away = {"subscribers": other.HANDLES["news"].publish("away " + name),
            "reply": ask(other, name, "anyone?")}
    enable(name)
    mod = sys.modules[name]
    out["reload " + name] = {"away": away, "after": talk(other, mod, "back " + name)}

print("CHANNELS " + json.dumps(out), flush=True)
"""


def _addon(name: str, scripts, vendor_from=None) -> None:
    dst = scripts / "addons" / name
    dst.mkdir(parents=True)
    text = TEMPLATE.read_text()
    if vendor_from is not None:
        text = text.replace("import bgloop  # BGLOOP_IMPORT", "from ._vendor import bgloop")
        (dst / "_vendor").mkdir()
        (dst / "_vendor" / "__init__.py").write_text("")
        shutil.copytree(vendor_from / "bgloop", dst / "_vendor" / "bgloop",
                        ignore=shutil.ignore_patterns("__pycache__"))
    (dst / "__init__.py").write_text(text)


def test_two_addons_talk_through_channels_across_reloads(tmp_path, artifacts):
    scripts = tmp_path / "scripts"
    _addon("chan_inst", scripts)
    _addon("chan_vend", scripts, vendor_from=artifacts["site"])
    script = tmp_path / "channels.py"
    script.write_text(SCRIPT)
    proc = bl.start_background(tmp_path, python=[script],
                               env=bl.blender_env(tmp_path, pythonpath=[artifacts["site"]]))
    try:
        assert proc.wait(120) == 0, proc.tail()
        out = json.loads(proc.wait_for(r"CHANNELS (.*)", timeout=5).group(1))
    finally:
        proc.stop()
    assert out["shared"] == "chan_vend._vendor.bgloop", out
    # Both add-ons subscribe to blend.news; each answers on NAME.ask.
    assert out["first"] == {"subscribers": 2, "received": ["hello"],
                            "reply": {"echo": "hello", "by": "chan_inst"}}
    assert out["back_first"] == {"subscribers": 2, "received": ["hello", "hi"],
                                 "reply": {"echo": "hi", "by": "chan_vend"}}
    for name, others in (("chan_inst", ["hello", "hi"]), ("chan_vend", ["hello", "hi"])):
        step = out["reload " + name]
        # While disabled: only the other add-on's subscription is left, and
        # nobody answers on its channel.
        assert step["away"]["subscribers"] == 1, step
        assert step["away"]["reply"].startswith("NoResponder:"), step
        assert name + ".ask" in step["away"]["reply"], step
        # Enabled again (module re-executed): one subscription each, no
        # leftover of the old module, and its responder answers.
        back = "back " + name
        assert step["after"] == {"subscribers": 2, "received": [back],
                                 "reply": {"echo": back, "by": name}}, step
    assert "Traceback" not in proc.output(), proc.tail()
