"""Two ``blender --background`` on one machine, each with an add-on whose
service listens on an automatic port (``ctx.listen()``): different ports,
both answer, and ``python -m bgloop ls`` (same runtime directory) lists
both; after SIGTERM their discovery files are gone."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import blenderlib as bl

ADDON = "ports_probe"
ADDON_SOURCE = '''
bl_info = {"name": "bgloop ports test add-on", "blender": (3, 4, 0), "category": "System"}

import bgloop


async def echo(reader, writer):
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()


async def api(ctx):
    listener = await ctx.listen(echo)  # port 0: a free one
    print(f"ports_probe: listening on {listener.port}", flush=True)
    ctx.ready()
    await ctx.stopping.wait()


def register():
    bgloop.service("ports_probe.api", owner=__package__, stop_timeout=2.0)(api)


def unregister():
    bgloop.stop_services(owner=__package__)
    bgloop.forget_services(owner=__package__)
'''
WAIT = 60.0  # bounds against hangs: Blender starts in a few seconds


def _echo(port: int, text: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(text)
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(1024)
            if not chunk:
                break
            got += chunk
        return got


def _bgloop(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bgloop", *args], env=env, text=True,
                          capture_output=True, timeout=WAIT)


def test_two_blenders_get_their_own_ports_and_are_listed(tmp_path, artifacts):
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    procs = []
    try:
        for i in (1, 2):
            home = tmp_path / f"blender{i}"
            addon = home / "scripts" / "addons" / ADDON
            addon.mkdir(parents=True)
            (addon / "__init__.py").write_text(ADDON_SOURCE)
            env = bl.blender_env(home, pythonpath=[artifacts["site"]], XDG_RUNTIME_DIR=runtime)
            procs.append(bl.start_background(home, args=["--addons", ADDON],
                                             python=[bl.KEEP_ALIVE], env=env, name=f"ports{i}"))
        ports = [int(p.wait_for(r"ports_probe: listening on (\d+)", WAIT).group(1))
                 for p in procs]
        assert ports[0] != ports[1]
        for port in ports:
            assert _echo(port, b"ping %d\n" % port) == b"ping %d\n" % port

        env = {k: v for k, v in os.environ.items() if not k.startswith(("BGLOOP_", "PYTHON"))}
        env.update(PYTHONPATH=str(artifacts["site"]), XDG_RUNTIME_DIR=str(runtime))
        listed = _bgloop(env, "ls", "--json")
        assert listed.returncode == 0, listed.stderr
        records = json.loads(listed.stdout)
        assert sorted((r["pid"], r["owner"], r["service"], r["port"]) for r in records) == \
            sorted((p.pid, ADDON, "ports_probe.api", port) for p, port in zip(procs, ports))

        table = _bgloop(env, "ls")
        for p, port in zip(procs, ports):
            assert f"127.0.0.1:{port}" in table.stdout and str(p.pid) in table.stdout
        status = _bgloop(env, "status", "ports_probe.api")
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("answering:  yes") == 2

        for p in procs:
            p.signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(WAIT) == 0, p.tail()
        assert json.loads(_bgloop(env, "ls", "--json").stdout) == []
        assert list((runtime / "bgloop").iterdir()) == []
        assert _bgloop(env, "status", "ports_probe.api").returncode == 1
    finally:
        for p in procs:
            p.stop()
