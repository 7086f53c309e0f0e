"""Discovery files and ``python -m bgloop ls`` / ``status``: where the
directory is and that it is private, atomic records, stale files of dead
processes pruned, files removed at exit, the command line's output and exit
codes."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import tempfile
import time
from pathlib import Path

import bgloop.log
import pytest
from bgloop import discovery
from bgloop.__main__ import main
from bgloop.discovery import Directory, DiscoveryError, Record

from _ports_util import Holder, holders, rundir  # noqa: F401


def record(**overrides) -> Record:
    fields = dict(pid=os.getpid(), owner="me", service="svc", host="127.0.0.1", port=4242,
                  started=time.time())
    fields.update(overrides)
    return Record(**fields)


def dead_pid() -> int:
    """The pid of a child that has exited and been reaped."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the directory -------------------------------------------------------------

def test_runtime_dir_is_under_xdg_runtime_dir(tmp_path):
    assert discovery.runtime_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "bgloop"


@pytest.mark.parametrize("xdg", [None, "", "relative/dir", "/no/such/dir"])
def test_runtime_dir_falls_back_to_a_per_user_temp_dir(xdg):
    env = {} if xdg is None else {"XDG_RUNTIME_DIR": xdg}
    expected = Path(tempfile.gettempdir()) / f"bgloop-{os.getuid()}"
    assert discovery.runtime_dir(env) == expected


def test_directory_is_created_private(rundir):
    Directory().ensure()
    assert rundir.is_dir() and stat.S_IMODE(rundir.stat().st_mode) == 0o700


def test_group_or_world_writable_directory_is_refused(rundir):
    rundir.mkdir(mode=0o700)
    rundir.chmod(0o777)
    with pytest.raises(DiscoveryError, match="writable by group or others"):
        Directory().ensure()
    with pytest.raises(DiscoveryError):
        Directory().write(record())
    assert list(rundir.iterdir()) == []


def test_directory_of_another_user_is_refused(tmp_path):
    if os.getuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
    else:
        foreign = Path("/")  # root's
    with pytest.raises(DiscoveryError, match="belongs to uid"):
        Directory(foreign).ensure()


def test_a_file_in_the_way_is_a_clear_error(rundir):
    rundir.write_text("")
    with pytest.raises(DiscoveryError, match="not a directory"):
        Directory().ensure()


# ---- records -----------------------------------------------------------------------

def test_write_then_read_back(rundir):
    rec = record(token_file="/somewhere/x.token")
    path = Directory().write(rec)
    assert path.parent == rundir and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"schema": 1, **rec.__dict__}
    assert Directory().records() == [rec]
    assert [p.name for p in rundir.iterdir()] == [path.name]  # no temporary file left


def test_service_names_are_made_safe_for_file_names(rundir):
    path = Directory().write(record(service="../../etc/x y"))
    assert path.parent == rundir and "/" not in path.name.replace(str(rundir), "")
    assert Directory().records()[0].service == "../../etc/x y"


def test_malformed_files_are_skipped_and_kept(rundir):
    d = Directory()
    good = record()
    d.write(good)
    (rundir / "garbage.json").write_text("{not json")
    (rundir / "other.json").write_text(json.dumps({"schema": 99, "pid": 1}))
    (rundir / "types.json").write_text(json.dumps({**record().to_json(), "port": "80"}))
    (rundir / "missing.json").write_text(json.dumps({"schema": 1, "pid": os.getpid()}))
    assert d.records() == [good]
    assert len(list(rundir.glob("*.json"))) == 5


def test_files_of_a_killed_process_are_pruned_when_listed(rundir, holders):
    h = holders().listening()
    assert h.discovery_file is not None and h.discovery_file.exists()
    h.kill()  # SIGKILL: no atexit, no serve() exit; the file stays behind
    assert h.discovery_file.exists()
    assert Directory().records() == []
    assert not h.discovery_file.exists()


def test_files_of_dead_processes_are_pruned_when_writing(rundir):
    d = Directory()
    stale = d.write(record(pid=dead_pid(), service="gone"))
    d.write(record())
    assert not stale.exists() and len(list(rundir.iterdir())) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_a_zombie_counts_as_dead(rundir):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped
    try:
        Directory().write(record(pid=pid, service="zombie"))
        assert not discovery.pid_alive(pid)
        assert Directory().records() == []
    finally:
        os.waitpid(pid, 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_a_reused_pid_is_not_taken_for_the_writer(rundir):
    d = Directory()
    me = record(service="me", port=1, process_start=discovery.process_start())
    d.write(me)
    earlier = me.process_start - 60 * os.sysconf("SC_CLK_TCK")  # a minute before this one
    d.write(record(service="before", port=2, process_start=earlier))
    assert d.records() == [me]
    assert [p.name for p in rundir.iterdir()] == [d.file_for(me).name]


def test_find_by_service_owner_service_and_pid(rundir):
    d = Directory()
    a, b = record(service="a", port=1), record(service="b", owner="suite", port=2)
    d.write(a)
    d.write(b)
    assert d.find("a") == [a]
    assert d.find("suite/b") == [b]
    assert d.find(str(os.getpid())) == [a, b]
    assert d.find("nope") == []


@pytest.mark.parametrize("held, asked, found", [
    ("127.0.0.1", "127.0.0.1", True), ("0.0.0.0", "127.0.0.1", True),
    ("127.0.0.1", "0.0.0.0", True), ("127.0.0.1", "127.0.0.2", False),
    ("::", "::1", True)])
def test_holder_matches_wildcard_addresses(rundir, held, asked, found):
    d = Directory()
    rec = record(host=held, port=5000)
    d.write(rec)
    assert d.holder(asked, 5000) == (rec if found else None)
    assert d.holder(asked, 5001) is None


# ---- process exit ----------------------------------------------------------------

def test_file_removed_when_serve_returns(rundir, holders):
    h = holders().listening()
    assert h.terminate() == 0
    assert not h.discovery_file.exists()


def test_file_removed_at_exit_without_a_stop(rundir, holders):
    h = holders(exit_early=True)
    h.listening().wait_for("EXITING")
    assert h.proc.wait(30) == 0
    assert not h.discovery_file.exists()
    assert list(rundir.iterdir()) == []


# ---- the command line -------------------------------------------------------------

@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two listening services in one runtime directory, shared by the
    read-only tests of the command line: 'alpha' in a child process,
    'beta' a socket of this one with its record (children are slow to
    start under emulation)."""
    tmp = tmp_path_factory.mktemp("pair")
    xdg = tmp / "xdg"
    xdg.mkdir(mode=0o700)
    with pytest.MonkeyPatch.context() as mp, socket.socket() as sock:
        mp.setenv("XDG_RUNTIME_DIR", str(xdg))
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        alpha = Holder(tmp, name="alpha", owner="suite")
        try:
            alpha.listening()
            beta = record(owner="suite", service="beta", port=sock.getsockname()[1],
                          process_start=discovery.process_start())
            Directory().write(beta)
            yield alpha, beta
        finally:
            alpha.close()


@pytest.fixture
def cli(monkeypatch, capsys):
    """``python -m bgloop ARGS`` in this process: (exit status, stdout,
    stderr).  The process-wide logging set-up is left out."""
    monkeypatch.setattr(bgloop.log, "setup_process", lambda level: None)

    def call(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_ls_lists_live_services(pair, cli):
    a, b = pair
    code, out, _ = cli("ls")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["PID", "OWNER", "SERVICE", "ADDRESS", "UPTIME"]
    rows = sorted(line.split() for line in lines[1:])
    assert [row[:4] for row in rows] == sorted(
        [[str(a.pid), "suite", "alpha", f"127.0.0.1:{a.port}"],
         [str(b.pid), "suite", "beta", f"127.0.0.1:{b.port}"]])


def test_ls_json(pair, cli):
    a, b = pair
    code, out, _ = cli("ls", "--json")
    listed = json.loads(out)
    assert code == 0
    assert {(r["pid"], r["owner"], r["service"], r["port"]) for r in listed} == \
        {(a.pid, "suite", "alpha", a.port), (b.pid, "suite", "beta", b.port)}
    assert all(r["uptime"] >= 0 for r in listed)


def test_ls_with_nothing_listening(rundir, cli):
    code, out, _ = cli("ls")
    assert code == 0 and out.split() == ["PID", "OWNER", "SERVICE", "ADDRESS", "UPTIME"]
    assert json.loads(cli("ls", "--json")[1]) == []


def test_status_of_a_live_service(pair, cli):
    a, _ = pair
    for name in ("alpha", "suite/alpha", str(a.pid)):
        code, out, err = cli("status", name)
        assert code == 0, err
        assert f"port:       {a.port}" in out and "answering:  yes" in out
        assert out.count("answering:") == 1
    code, out, _ = cli("status", "alpha", "--json")
    (entry,) = json.loads(out)
    assert code == 0 and entry["answering"] is True and entry["pid"] == a.pid
    assert entry["error"] is None


def test_status_without_a_name_shows_all(pair, cli):
    a, b = pair
    code, out, err = cli("status")
    assert code == 0, err
    assert out.count("answering:  yes") == 2
    assert f"port:       {a.port}" in out and f"port:       {b.port}" in out


def test_status_of_an_unknown_name_exits_1(pair, cli):
    code, _, err = cli("status", "nope")
    assert code == 1 and "no live bgloop service named 'nope'" in err


def test_status_with_nothing_listening_exits_1(rundir, cli):
    code, _, err = cli("status")
    assert code == 1 and "no live bgloop service listening" in err and str(rundir) in err


def test_status_of_a_service_not_answering_exits_1(rundir, cli):
    # A live pid (this test's) whose recorded port nobody listens on.
    Directory().write(record(service="deaf", port=free_port()))
    code, out, _ = cli("status", "deaf")
    assert code == 1 and "answering:  no (" in out
    code, out, _ = cli("status", "deaf", "--json")
    (entry,) = json.loads(out)
    assert code == 1 and entry["answering"] is False and entry["error"]


def test_a_directory_that_is_not_private_is_not_read(rundir, cli):
    Directory().write(record())
    rundir.chmod(0o770)
    with pytest.raises(DiscoveryError, match="writable by group"):
        Directory().records()
    for command in ("ls", "status"):
        code, out, err = cli(command)
        assert code == 2 and "writable by group or others" in err and not out


@pytest.mark.parametrize("value", ["abc", "0", "-1", "inf", "nan"])
def test_status_bad_timeout_is_a_usage_error(rundir, cli, value):
    code, _, err = cli("status", "--timeout", value)
    assert code == 2 and "--timeout" in err


def test_ls_prunes_what_a_dead_process_left(rundir, cli):
    stale = Directory().write(record(pid=dead_pid(), service="gone"))
    code, out, _ = cli("ls")
    assert code == 0 and "gone" not in out
    assert not stale.exists()
