"""The bgloop service scenario in every bpy of the matrix: a TCP server
under serve(), a client answered, SIGTERM -> exit 0 without a traceback."""

from __future__ import annotations

import re
import signal
import socket
import subprocess

import blenderlib as bl

from conftest import HERE


def test_service_answers_and_sigterm_exits_0(bpy, site, tmp_path):
    series, python = bpy
    version = bl.BPY_RELEASES[series][1]
    env = bl.blender_env(tmp_path, pythonpath=[site])
    proc = subprocess.Popen([str(python), str(HERE / "serve_tcp.py")], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.fullmatch(r"PORT (\d+)\n", line)
        assert m, f"no port line: {line!r}\n{proc.stderr.read() if proc.poll() is not None else ''}"
        with socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=30) as s:
            s.sendall(b"ping\n")
            reply = s.makefile("rb").readline().decode()
        assert reply.startswith(f"{version}") and reply.endswith(" ping\n"), reply
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
