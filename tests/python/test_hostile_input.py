"""Hostile arguments to the service manager's binding: each must give a clear
exception naming the problem and leave nothing registered - never a silently
altered value."""

from __future__ import annotations

import gc
import os
import signal

import bgloop
import pytest
from bgloop import _bgloop
from bgloop import services as _services


def _nop(*args):
    return None


@pytest.fixture
def svcs():
    """A raw Services on a private loop, torn down after the test."""
    loop = bgloop.Loop()
    s = _bgloop.Services(loop._core)
    s.set_hooks(start=_nop, stop=_nop, cancel=_nop, close=_nop)
    try:
        yield s
    finally:
        s.remove_owner(None)
        del s
        gc.collect()
        loop.close()


# ---- text: NUL characters and lone surrogates --------------------------------

@pytest.mark.parametrize("field", ["name", "owner", "dependency"])
def test_a_nul_character_is_refused_not_cut_off(svcs, field):
    args = {"name": "svc", "owner": "o", "dependency": "dep"}
    args[field] = args[field][:1] + "\0" + args[field][1:]
    with pytest.raises(ValueError, match="NUL character"):
        svcs.add(args["name"], args["owner"], None, depends_on=(args["dependency"],))
    # Before: "s\0vc" was registered as "s", owner "o\0wner" as "o".
    assert svcs.names() == []


@pytest.mark.parametrize("field", ["name", "owner", "dependency"])
def test_a_lone_surrogate_is_a_value_error_naming_the_field(svcs, field):
    args = {"name": "svc", "owner": "o", "dependency": "dep"}
    args[field] = "caf\udce9"
    label = {"name": "service name", "owner": "owner", "dependency": "dependency name"}[field]
    with pytest.raises(ValueError, match=label):
        svcs.add(args["name"], args["owner"], None, depends_on=(args["dependency"],))
    assert svcs.names() == []


def test_queries_refuse_a_nul_rather_than_answer_for_a_prefix(svcs):
    svcs.add("a", "o", None)
    with pytest.raises(ValueError, match="NUL"):
        svcs.names("o\0ther")
    with pytest.raises(ValueError, match="NUL"):
        svcs.info("a\0b")
    svcs.remove("a")


def test_restart_policy_with_a_nul_is_refused(svcs):
    with pytest.raises(ValueError, match="NUL"):
        svcs.add("r", "o", None, restart="no\0always")
    assert svcs.names() == []


# ---- numbers -------------------------------------------------------------------

@pytest.mark.parametrize("value", [2**32 + 1, -(2**32) + 1, 2**64, 10**30])
def test_restart_int_beyond_the_enum_is_unknown_not_wrapped(svcs, value):
    # 2**32 + 1 was cast to 1 and registered as "on-failure".
    with pytest.raises(bgloop.ServiceError, match="unknown restart policy"):
        svcs.add("r", "o", None, restart=value)
    assert svcs.names() == []


def test_a_huge_int_duration_is_no_limit_like_inf(svcs):
    svcs.add("big", "o", None, stop_timeout=10**400)
    svcs.add("inf", "o", None, stop_timeout=float("inf"))
    assert svcs.names() == ["big", "inf"]
    with pytest.raises(ValueError, match="negative"):
        svcs.add("neg", "o", None, stop_timeout=-(10**400))
    svcs.remove_owner("o")


def test_kick_budget_accepts_a_huge_int():
    loop = bgloop.Loop()
    try:
        assert loop._core.kick(0, 10**400) == 0
        with pytest.raises(ValueError, match="negative"):
            loop._core.kick(-(10**400), None)
    finally:
        loop.close()


@pytest.mark.parametrize("value", [2**31, 2**32 - 1, 10_001])
def test_a_start_limit_burst_beyond_what_the_manager_keeps_is_refused(svcs, value):
    # 2**32 - 1 was a MemoryError, 2**31 a 16 GiB allocation.
    with pytest.raises(bgloop.ServiceError, match=r"start_limit_burst .* is above 10000"):
        svcs.add("b", "o", None, start_limit_burst=value)
    assert svcs.names() == []
    svcs.add("b", "o", None, start_limit_burst=10_000)
    assert svcs.names() == ["b"]


def test_a_manager_text_cut_inside_a_character_still_reads(svcs):
    # The manager's refusals are cut to a fixed size; a name of two-byte
    # characters was cut inside one and the refusal became a UnicodeDecodeError.
    for name in ("x" + "\u00e9" * 300, "\u00e9" * 300):
        with pytest.raises(bgloop.ServiceError) as err:
            svcs.add(name, "o", None, restart_delay=5, restart_delay_max=1)
        assert name[:200] in str(err.value)


@pytest.mark.parametrize("query", ["stop_bound", "abandoned", "active", "names"])
def test_an_empty_owner_is_refused_by_every_query_as_by_stop(svcs, query):
    # stop_bound("") and abandoned("") were an OSError (errno 22) naming a C
    # function, so stop_services("") did not say what was wrong.
    with pytest.raises(bgloop.ServiceError, match="non-empty"):
        svcs.stop("")
    try:
        getattr(svcs, query)("")
    except bgloop.ServiceError as exc:
        assert "non-empty" in str(exc)


def test_stop_services_of_an_empty_owner_is_a_service_error():
    _services.manager()  # the shared manager exists
    with pytest.raises(bgloop.ServiceError, match="non-empty"):
        bgloop.stop_services("")


# ---- descriptors, events, signal numbers, times ----------------------------------

@pytest.fixture
def core():
    loop = bgloop.Loop()
    try:
        yield loop._core
    finally:
        loop.close()


@pytest.mark.parametrize("fd, error", [(-1, ValueError), (-(2**70), OverflowError),
                                       (2**31, OverflowError), (2**70, OverflowError)])
def test_watch_refuses_a_descriptor_out_of_range(core, fd, error):
    with pytest.raises(error, match="file descriptor|fd out of range"):
        core.watch(fd, 1, (None, None))


@pytest.mark.parametrize("events", [-1, 4, 2**32 + 1, 2**64 + 1, 2**70])
def test_watch_and_modify_refuse_events_beyond_read_and_write(core, events):
    r, w = os.pipe()
    try:
        with pytest.raises(ValueError, match="Invalid events"):
            core.watch(r, events, (None, None))
        watcher = core.watch(r, 1, (None, None))
        with pytest.raises(ValueError, match="Invalid events"):
            watcher.modify(events, (None, None))
        assert watcher.events == 1
        watcher.close()
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("signo, error", [(2**64 + signal.SIGINT, ValueError),
                                          (-(2**64), ValueError), (0, ValueError),
                                          (True, TypeError), (2.0, TypeError),
                                          ("2", TypeError)])
def test_sigaction_save_refuses_what_is_not_a_signal_number(signo, error):
    # 2**64 + SIGINT was an OverflowError naming no argument; True was SIGHUP.
    with pytest.raises(error, match="signal number"):
        _bgloop._sigaction_save(signo)


@pytest.mark.parametrize("when, runs", [(10**400, False), (-(10**400), True)])
def test_call_at_an_int_beyond_a_double_is_never_or_now(when, runs):
    loop = bgloop.Loop()
    try:
        ran = []
        handle = loop.call_at(when, ran.append, 1)
        loop.kick(timeout=0)
        loop.kick(timeout=0)
        assert ran == ([1] if runs else [])
        handle.cancel()
        loop.call_soon(ran.append, 2)
        loop.kick(timeout=0)
        assert ran[-1] == 2
    finally:
        loop.close()


# ---- error texts reported by the host -------------------------------------------

def test_exited_takes_any_text(svcs):
    svcs.add("t", "o", None)
    # Not running: the report is ignored (negative), but not refused.
    assert svcs.exited("t", True, "caf\udce9 \0 end") < 0
    with pytest.raises(TypeError, match="error must be a str or None"):
        svcs.exited("t", True, 42)
    svcs.remove("t")


# ---- a manager whose loop was closed -------------------------------------------

async def _idle(ctx):
    ctx.ready()
    await ctx.stopping.wait()


@pytest.mark.parametrize("call", ["start", "register", "forget", "request_stop",
                                  "set_keepalive"])
def test_a_manager_on_a_closed_loop_says_so(call):
    loop = bgloop.Loop()
    mgr = _services.Manager(loop)
    mgr.register("z", _idle, owner="o")
    loop.close()
    calls = {
        "start": lambda: mgr.start(),
        "register": lambda: mgr.register("w", _idle, owner="o"),
        "forget": lambda: mgr.forget(),
        "request_stop": lambda: mgr.request_stop(),
        "set_keepalive": lambda: mgr.set_keepalive(True),
    }
    # Before: start() was accepted and never carried out, leaving "z" wanted
    # for good (forget then refused it as still wanted).
    with pytest.raises(RuntimeError, match="event loop is closed"):
        calls[call]()
    assert mgr.status()["z"]["wanted"] is False
    assert mgr.stop() is None  # stopping what cannot run is a no-op


def test_tasks_add_refuses_what_is_not_a_task():
    reg = _bgloop.Tasks()
    with pytest.raises(TypeError, match="task must be an asyncio task or future, not int"):
        reg.add("o", "n", 5)
    with pytest.raises(ValueError, match="NUL"):
        reg.add("o\0", "n", None)
    assert reg.active() == 0
