"""Test harness loaded into a GUI Blender with ``--python``.

It gives pytest a remote control that does not depend on bgloop: a
loopback socket polled by its own ``bpy.app.timers`` callback, so commands
(enable/disable add-ons, screenshots, counting fds...) run on the main
thread between window-manager passes, exactly like a user's click would.
A second timer is "the UI's own timer": a heartbeat counter the tests use
to see that Blender keeps its cadence while bgloop services are busy.

Protocol: one JSON line per connection, ``{"exec": code, "eval": expr}``;
the answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
traceback}``.  Code runs in one persistent namespace (``NS``).
"""

import json
import socket
import time
import traceback

import bpy

CONTROL_INTERVAL = 0.02
HEARTBEAT_INTERVAL = 0.02

NS = {"bpy": bpy, "__name__": "harness"}
heartbeat = {"ticks": 0, "last": time.monotonic(), "max_gap": 0.0}

_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
_sock.bind(("127.0.0.1", 0))
_sock.listen(8)
_sock.setblocking(False)
NS["heartbeat"] = heartbeat


def _heartbeat():
    now = time.monotonic()
    heartbeat["ticks"] += 1
    heartbeat["max_gap"] = max(heartbeat["max_gap"], now - heartbeat["last"])
    heartbeat["last"] = now
    return HEARTBEAT_INTERVAL


def _serve_one(conn):
    conn.settimeout(10)
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    req = json.loads(data)
    try:
        if req.get("exec"):
            exec(req["exec"], NS)
        result = eval(req["eval"], NS) if req.get("eval") else None
        resp = {"ok": True, "result": result}
    except Exception:
        resp = {"ok": False, "error": traceback.format_exc()}
    conn.sendall(json.dumps(resp, default=repr).encode() + b"\n")


def _control():
    while True:
        try:
            conn, _ = _sock.accept()
        except BlockingIOError:
            return CONTROL_INTERVAL
        with conn:
            try:
                _serve_one(conn)
            except Exception:
                traceback.print_exc()


bpy.context.preferences.view.show_splash = False
bpy.app.timers.register(_heartbeat, first_interval=0.0, persistent=True)
bpy.app.timers.register(_control, first_interval=0.0, persistent=True)
print(f"HARNESS control port {_sock.getsockname()[1]}", flush=True)
