"""bgloop's log lines in a real ``blender --background``: visible on stderr
with no logging set-up, at BGLOOP_LOG_LEVEL, each line once; journald
priorities when JOURNAL_STREAM names Blender's stderr."""

from __future__ import annotations

import os
import re
import textwrap

import blenderlib as bl

SCRIPT = """
    import bgloop

    @bgloop.service("ok", owner="t")
    async def ok(ctx):
        ctx.ready()
        ctx.log.info("ok is up")

    @bgloop.service("bad", owner="t")
    async def bad(ctx):
        raise RuntimeError("boom")

    print("SERVE RETURNED", bgloop.serve(), flush=True)
"""
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", re.M)


def _run(tmp_path, artifacts, level: str, journal: bool = False) -> str:
    script = tmp_path / "log_services.py"
    script.write_text(textwrap.dedent(SCRIPT))
    extra = {}
    if journal:
        # Blender's stdout and stderr go to this file (opened for writing,
        # same inode): name it, as systemd names the journal's stream.
        log = tmp_path / "log.log"
        log.touch()
        st = os.stat(log)
        extra["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    env = bl.blender_env(tmp_path, pythonpath=[artifacts["site"]], BGLOOP_LOG_LEVEL=level,
                         **extra)
    proc = bl.start_background(tmp_path, python=[script], env=env, name="log")
    try:
        proc.wait_for(r"SERVE RETURNED 1", timeout=60)
        assert proc.wait(60) == 0, proc.tail()
        return proc.output()
    finally:
        proc.stop()


def _lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_warnings_visible_without_setup(tmp_path, artifacts):
    out = _run(tmp_path, artifacts, "WARNING")
    failed = _lines(out, "service 'bad'")
    assert failed and all(" bgloop.services " in line for line in failed), out
    assert TIMESTAMP.search(out), out
    assert len(_lines(out, "Traceback (most recent call last)")) == 1, out
    assert not _lines(out, "ok is up"), out


def test_info_level_once(tmp_path, artifacts):
    out = _run(tmp_path, artifacts, "INFO")
    assert len(_lines(out, "bgloop.service.ok INFO: ok is up")) == 1, out
    assert len(_lines(out, "bgloop.serve INFO: serve: 2 service(s)")) == 1, out
    assert len(_lines(out, "Traceback (most recent call last)")) == 1, out


def test_journald_prefixes(tmp_path, artifacts):
    out = _run(tmp_path, artifacts, "INFO", journal=True)
    assert _lines(out, "ok is up") == ["<6>bgloop.service.ok INFO: ok is up"], out
    assert any(line.startswith("<3>bgloop.services ERROR: ")
               for line in _lines(out, "service 'bad'")), out
    assert not TIMESTAMP.search(out), out
