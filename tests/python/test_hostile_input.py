"""Hostile arguments to the service manager's binding: each must give a clear
exception naming the problem and leave nothing registered - never a silently
altered value."""

from __future__ import annotations

import gc

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
