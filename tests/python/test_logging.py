"""bgloop's log lines reach stderr without any logging set-up, once, at
BGLOOP_LOG_LEVEL; a host's own set-up gets them exactly once in its format;
under journald they carry <N> priorities and no timestamps.  Each case runs
serve() (or ``python -m bgloop``) in a subprocess with a clean logging
state."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bgloop

GUARD = 30.0
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")

SERVICES = """
    import logging, sys
    import bgloop

    {host_setup}

    @bgloop.service("ok", owner="t")
    async def ok(ctx):
        ctx.ready()
        ctx.log.info("ok is up")

    @bgloop.service("bad", owner="t")
    async def bad(ctx):
        raise RuntimeError("boom")

    sys.exit(bgloop.serve())
"""


def run(tmp_path, *, host_setup="", env=None, args=None, journal=None) -> tuple[int, str]:
    """Run the services script (or `args`); stderr goes to a file so that
    JOURNAL_STREAM can name it.  journal: "match" sets JOURNAL_STREAM to
    that file's device:inode, any other string is used as is."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(SERVICES.format(host_setup=host_setup)))
    full = {k: v for k, v in os.environ.items()
            if k not in ("BGLOOP_LOG_LEVEL", "JOURNAL_STREAM", "NOTIFY_SOCKET")}
    full.update(env or {})
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        if journal == "match":
            st = os.fstat(err.fileno())
            full["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        elif journal is not None:
            full["JOURNAL_STREAM"] = journal
        proc = subprocess.run(args or [sys.executable, str(script)], env=full, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=err, text=True, timeout=GUARD)
    return proc.returncode, err_path.read_text()


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_default_shows_warnings_and_errors_once(tmp_path):
    code, err = run(tmp_path)
    assert code == 1, err
    failed = lines_with(err, "service 'bad'")
    assert failed and all("bgloop.services" in line for line in failed), err
    assert len(lines_with(err, "Traceback (most recent call last)")) == 1, err
    assert TIMESTAMP.match(failed[0]), failed[0]
    # WARNING is the default level: no INFO line.
    assert " INFO: " not in err, err
    assert not lines_with(err, "ok is up"), err


def test_log_level_info_shows_info_once(tmp_path):
    code, err = run(tmp_path, env={"BGLOOP_LOG_LEVEL": "INFO"})
    assert code == 1, err
    assert len(lines_with(err, "bgloop.serve INFO: serve: 2 service(s)")) == 1, err
    assert len(lines_with(err, "bgloop.service.ok INFO: ok is up")) == 1, err
    assert len(lines_with(err, "Traceback (most recent call last)")) == 1, err


def test_host_logging_config_is_used_not_duplicated(tmp_path):
    host = ('logging.basicConfig(level=logging.INFO, '
            'format="HOST %(levelname)s %(name)s %(message)s")')
    code, err = run(tmp_path, host_setup=host, env={"BGLOOP_LOG_LEVEL": "INFO"})
    assert code == 1, err
    assert lines_with(err, "serve: 2 service(s)") == [
        "HOST INFO bgloop.serve serve: 2 service(s): ok, bad; waiting for SIGINT/SIGTERM or "
        "their end"], err
    assert len(lines_with(err, "ok is up")) == 1, err
    assert len(lines_with(err, "Traceback (most recent call last)")) == 1, err
    assert not TIMESTAMP.search(err), err


def test_host_handler_on_the_bgloop_logger(tmp_path):
    host = textwrap.dedent("""\
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("MINE %(name)s %(message)s"))
        logging.getLogger("bgloop").addHandler(h)""").replace("\n", "\n    ")
    code, err = run(tmp_path, host_setup=host)
    assert code == 1, err
    failed = lines_with(err, "service 'bad'")
    assert failed and all(line.startswith("MINE bgloop.services") for line in failed), err
    assert len(lines_with(err, "Traceback (most recent call last)")) == 1, err


def test_journald_priorities_without_timestamps(tmp_path):
    code, err = run(tmp_path, env={"BGLOOP_LOG_LEVEL": "INFO"}, journal="match")
    assert code == 1, err
    assert not TIMESTAMP.search(err), err
    assert lines_with(err, "serve: 2 service(s)")[0].startswith("<6>bgloop.serve INFO: "), err
    assert lines_with(err, "ok is up")[0].startswith("<6>bgloop.service.ok INFO: "), err
    failed = lines_with(err, "service 'bad'")
    assert any(line.startswith("<3>bgloop.services ERROR: ") for line in failed), err
    # A traceback is several lines; each is its own journal entry.
    assert lines_with(err, "Traceback (most recent call last)")[0].startswith("<3>"), err


@pytest.mark.parametrize("value", ["1:2", "garbage", ""])
def test_journal_stream_of_another_file_is_not_journald(tmp_path, value):
    code, err = run(tmp_path, env={"BGLOOP_LOG_LEVEL": "INFO"}, journal=value)
    assert code == 1, err
    line = lines_with(err, "serve: 2 service(s)")[0]
    assert TIMESTAMP.match(line) and not line.startswith("<"), err


def test_python_m_bgloop_serve_logs_once_and_journald(tmp_path):
    (tmp_path / "mod.py").write_text(textwrap.dedent("""\
        import logging
        import bgloop
        log = logging.getLogger("mod")

        @bgloop.service("ok", owner="t")
        async def ok(ctx):
            ctx.ready()
            log.info("module logger")
    """))
    args = [sys.executable, "-m", "bgloop", "serve", "mod"]
    code, err = run(tmp_path, env={"BGLOOP_LOG_LEVEL": "INFO"}, args=args, journal="match")
    assert code == 0, err
    assert lines_with(err, "serve: 1 service(s)") == [
        "<6>bgloop.serve INFO: serve: 1 service(s): ok; waiting for SIGINT/SIGTERM or their "
        "end"], err
    assert lines_with(err, "module logger") == ["<6>mod INFO: module logger"], err


def test_version(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bgloop", "--version"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=GUARD)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"bgloop {bgloop._bgloop.version()}"
    # The one definition: meson.build's project version (when the tree is here).
    meson = Path(__file__).resolve().parents[2] / "meson.build"
    if meson.exists():
        declared = re.search(r"version\s*:\s*'([^']+)'", meson.read_text()).group(1)
        assert out.stdout.strip() == f"bgloop {declared}"
