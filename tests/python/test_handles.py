"""Handle and TimerHandle behaviour, each test run against the stock asyncio
loop, bgloop.Loop with its C handles (the default) and bgloop.Loop with
asyncio's Python handles (BGLOOP_PY_HANDLES=1)."""
import asyncio
import contextvars
import gc
import logging
import re
import sys
import threading
import weakref
from asyncio import events

import pytest

import bgloop
from _loop_util import FACTORIES, ExceptionLog, _close, run

KINDS = ["asyncio", "bgloop", "bgloop-py-handles"]
# asyncio 3.13 shows a callback's arguments in reprs and messages in debug
# mode only.
ARGS_SHOWN = sys.version_info < (3, 13)


@pytest.fixture(params=KINDS)
def hloop(request, monkeypatch):
    monkeypatch.delenv("BGLOOP_PY_HANDLES", raising=False)
    if request.param == "bgloop-py-handles":
        monkeypatch.setenv("BGLOOP_PY_HANDLES", "1")
        lp = bgloop.Loop()
    else:
        lp = FACTORIES[request.param]()
    log = ExceptionLog()
    lp.set_exception_handler(log)
    lp.exc_log = log
    lp.kind = request.param
    try:
        yield lp
    finally:
        _close(lp)
    assert not log.contexts, f"unexpected exception handler calls: {log.contexts}"


def spin(loop, n=3):
    """Run a few iterations."""
    for _ in range(n):
        loop.call_soon(loop.stop)
        loop.run_forever()


def cb(*args):
    pass


def test_handle_types(hloop):
    made = [hloop.call_soon(cb), hloop.call_soon_threadsafe(cb),
            hloop.call_later(10, cb), hloop.call_at(hloop.time() + 10, cb)]
    if hloop.kind == "bgloop":
        # Like uvloop's: asyncio's API, not asyncio's classes (a C type
        # cannot extend them).
        assert [type(h) for h in made] == [bgloop._bgloop.Handle] * 2 + [
            bgloop._bgloop.TimerHandle] * 2
        assert not any(isinstance(h, events.Handle) for h in made)
    else:
        assert [type(h) for h in made[2:]] == [events.TimerHandle] * 2
        assert type(made[0]) is events.Handle and isinstance(made[1], events.Handle)
    for h in made:
        h.cancel()
    spin(hloop)


def test_c_handles_are_made_by_the_loop_only():
    with pytest.raises(TypeError, match="made by the loop"):
        bgloop._bgloop.Handle(cb, (), None)


def test_cancel_before_run(hloop):
    out = []
    h = hloop.call_soon(out.append, 1)
    t = hloop.call_later(0, out.append, 2)
    h.cancel()
    t.cancel()
    assert h.cancelled() and t.cancelled()
    run(hloop, asyncio.sleep(0.01))
    assert out == []


def test_cancel_twice_is_harmless(hloop):
    t = hloop.call_later(10, cb)
    t.cancel()
    t.cancel()
    assert t.cancelled()
    spin(hloop)


def test_cancel_from_another_callback(hloop):
    out = []
    later = hloop.call_soon(out.append, "later")
    timer = hloop.call_later(0, out.append, "timer")

    def canceller():
        later.cancel()
        timer.cancel()
        out.append("canceller")

    hloop.call_soon(canceller)
    hloop.call_soon(later.cancel)  # after `later` ran: a no-op
    run(hloop, asyncio.sleep(0.01))
    assert out == ["later", "canceller"]


@pytest.mark.parametrize("how", ["call_soon", "call_soon_threadsafe"])
def test_cancel_itself_while_running(hloop, how):
    out = []
    holder = []

    def me(arg):
        holder[0].cancel()
        out.append((arg, holder[0].cancelled()))

    holder.append(getattr(hloop, how)(me, "ran"))
    spin(hloop)
    assert out == [("ran", True)] and holder[0].cancelled()


def test_cancel_from_another_thread_before_run(hloop):
    out = []
    go = threading.Event()
    hloop.call_soon(go.wait, 30)  # the loop is busy until the other thread is done

    def other():
        try:
            h = hloop.call_soon_threadsafe(out.append, "ran")
            h.cancel()
            out.append(h.cancelled())
        finally:
            go.set()
            hloop.call_soon_threadsafe(hloop.stop)

    t = threading.Thread(target=other)
    t.start()
    hloop.run_forever()
    t.join(30)
    spin(hloop)
    assert out == [True]


@pytest.mark.skipif(not hasattr(events, "_ThreadSafeHandle"),
                    reason="asyncio's thread-safe handles lock out other threads from 3.14 on")
def test_cancel_from_another_thread_waits_for_the_running_callback(hloop):
    started, cancelling, returned = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def callback():
        started.set()
        cancelling.wait(30)
        # A cancel() that did not wait for this callback would return now.
        seen.append(("cancel returned while running", returned.wait(0.2)))

    def other():
        try:
            h = hloop.call_soon_threadsafe(callback)
            started.wait(30)
            cancelling.set()
            h.cancel()
            returned.set()
            seen.append(("cancelled", h.cancelled()))
        finally:
            hloop.call_soon_threadsafe(hloop.stop)

    t = threading.Thread(target=other)
    t.start()
    hloop.run_forever()
    t.join(30)
    assert seen == [("cancel returned while running", False), ("cancelled", True)]


def test_contextvars(hloop):
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "given")
    out = []
    h = hloop.call_soon(lambda: out.append(var.get()), context=ctx)
    assert h._context is ctx
    if hasattr(h, "get_context"):  # asyncio's since 3.12
        assert h.get_context() is ctx
    token = var.set("current")  # copied by call_soon without context=
    try:
        hloop.call_soon(lambda: out.append(var.get()))
        hloop.call_later(0, lambda: out.append(var.get()))
    finally:
        var.reset(token)
    # Changes a callback makes stay in its handle's context.
    hloop.call_soon(var.set, "changed", context=ctx)
    run(hloop, asyncio.sleep(0.01))
    assert out == ["given", "current", "current"]
    assert ctx.run(var.get) == "changed" and var.get() == "default"


def boom(arg):
    raise ValueError(arg)


@pytest.mark.parametrize("debug", [False, True])
def test_exception_goes_to_the_handler(hloop, debug):
    hloop.set_debug(debug)
    h = hloop.call_soon(boom, "soon")
    spin(hloop)
    (ctx,) = hloop.exc_log.expect(1)
    want = {"message", "exception", "handle"} | ({"source_traceback"} if debug else set())
    assert set(ctx) == want
    assert ctx["handle"] is h
    assert type(ctx["exception"]) is ValueError and ctx["exception"].args == ("soon",)
    assert ctx["exception"].__traceback__ is not None
    args = r"\('soon'\)" if debug or ARGS_SHOWN else r"\(\)"
    assert re.fullmatch(rf"Exception in callback boom{args} at .*test_handles\.py:\d+",
                        ctx["message"]), ctx["message"]
    if debug:
        assert ctx["source_traceback"] is h._source_traceback
        assert ctx["source_traceback"][-1].name == "test_exception_goes_to_the_handler"


def test_timer_exception_goes_to_the_handler(hloop):
    t = hloop.call_later(0, boom, "timer")
    run(hloop, asyncio.sleep(0.01))
    (ctx,) = hloop.exc_log.expect(1)
    assert ctx["handle"] is t and ctx["exception"].args == ("timer",)


def test_keyboard_interrupt_escapes(hloop):
    def interrupt():
        raise KeyboardInterrupt

    out = []
    hloop.call_soon(interrupt)
    hloop.call_soon(out.append, "after")
    with pytest.raises(KeyboardInterrupt):
        hloop.run_forever()
    spin(hloop)
    assert out == ["after"]


def _line_after():
    return sys._getframe(1).f_lineno + 1


def test_repr(hloop):
    def f(a):
        pass

    where = rf"at {re.escape(__file__)}:\d+"
    one, two = (r"\(1\)", r"\(2\)") if ARGS_SHOWN else (r"\(\)", r"\(\)")
    h = hloop.call_soon(f, 1)
    t = hloop.call_at(12345.5, f, 2)
    assert re.fullmatch(rf"<Handle test_repr\.<locals>\.f{one} {where}>", repr(h)), repr(h)
    assert re.fullmatch(rf"<TimerHandle when=12345\.5 test_repr\.<locals>\.f{two} {where}>",
                        repr(t)), repr(t)
    assert str(h) == repr(h)
    h.cancel()
    t.cancel()
    assert repr(h) == "<Handle cancelled>"
    assert repr(t) == "<TimerHandle cancelled when=12345.5>"
    spin(hloop)


def test_repr_debug(hloop):
    hloop.set_debug(True)
    line = _line_after()
    h = hloop.call_soon(cb)
    created = rf"created at {re.escape(__file__)}:{line}"
    assert re.fullmatch(rf"<Handle cb\(\) at \S+:\d+ {created}>", repr(h)), repr(h)
    line = _line_after()
    t = hloop.call_later(100, cb)
    created = rf"created at {re.escape(__file__)}:{line}"
    assert re.fullmatch(rf"<TimerHandle when=[\d.]+ cb\(\) at \S+:\d+ {created}>", repr(t)), repr(t)
    # Debug mode keeps the callback in the repr of a cancelled handle.
    t.cancel()
    assert re.fullmatch(rf"<TimerHandle cancelled when=[\d.]+ cb\(\) at \S+:\d+ {created}>",
                        repr(t)), repr(t)
    assert t._callback is None and t._args is None
    spin(hloop)


def test_threadsafe_source_traceback(hloop):
    hloop.set_debug(True)
    line = _line_after()
    h = hloop.call_soon_threadsafe(cb)
    assert h._source_traceback[-1].lineno == line
    spin(hloop)


def test_when(hloop):
    t = hloop.call_at(1000, cb)
    assert t.when() == 1000 and t._when == 1000
    now = hloop.time()
    t2 = hloop.call_later(5.0, cb)
    assert now + 5.0 <= t2.when() <= hloop.time() + 5.0
    t.cancel()
    t2.cancel()
    spin(hloop)


def test_scheduled_flag(hloop):
    t = hloop.call_later(0, cb)
    c = hloop.call_later(10, cb)
    assert t._scheduled and c._scheduled
    run(hloop, asyncio.sleep(0.01))
    assert not t._scheduled and c._scheduled
    c.cancel()
    spin(hloop)


def test_timer_handle_ordering_and_equality(hloop):
    a = hloop.call_at(100.0, cb, 1)
    b = hloop.call_at(200.0, cb, 1)
    same = hloop.call_at(100.0, cb, 1)
    other_args = hloop.call_at(100.0, cb, 2)
    assert a < b and b > a and a <= b and b >= a and not b < a
    assert a == same and a <= same and a >= same and not a != same
    assert hash(a) == hash(same) == hash(100.0)
    assert a != other_args and not (a <= other_args) and not (a < other_args)
    assert sorted([b, a]) == [a, b]
    assert a.__eq__(hloop.call_soon(cb)) is NotImplemented
    same.cancel()
    assert a != same  # the cancelled state differs
    for t in (a, b, other_args):
        t.cancel()
    spin(hloop)


def test_handle_compares_by_identity(hloop):
    h1 = hloop.call_soon(cb)
    h2 = hloop.call_soon(cb)
    assert h1 == h1 and h1 != h2 and len({h1, h2}) == 2
    spin(hloop)


def test_call_soon_threadsafe_from_threads(hloop):
    out = []
    per_thread = 200
    done = threading.Barrier(5)

    def producer(n):
        for i in range(per_thread):
            hloop.call_soon_threadsafe(out.append, (n, i))
        done.wait(30)

    async def main():
        threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
        for th in threads:
            th.start()
        await hloop.run_in_executor(None, done.wait, 30)
        for th in threads:
            th.join(30)
        while len(out) < 4 * per_thread:
            await asyncio.sleep(0.001)

    run(hloop, main())
    assert len(out) == 4 * per_thread
    for n in range(4):  # each thread's calls run in its order
        assert [i for m, i in out if m == n] == list(range(per_thread))


def test_slow_callback_warning_in_debug_mode(hloop, caplog):
    import time

    hloop.set_debug(True)
    hloop.slow_callback_duration = 0.001

    def slow():
        time.sleep(0.01)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        hloop.call_soon(slow)
        spin(hloop)
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any(re.match(r"Executing <Handle \S*slow\(\) .*> took \d+\.\d+ seconds", m) for m in msgs), msgs


class Arg:
    pass


def test_args_released_after_run(hloop):
    arg = Arg()
    ref = weakref.ref(arg)
    href = weakref.ref(hloop.call_soon(cb, arg))
    tref = weakref.ref(hloop.call_later(0, cb, arg))
    del arg
    run(hloop, asyncio.sleep(0.01))
    assert href() is None and tref() is None
    assert ref() is None


def test_args_released_after_cancel(hloop):
    arg = Arg()
    ref = weakref.ref(arg)
    h = hloop.call_soon(cb, arg)
    t = hloop.call_later(10, cb, arg)
    del arg
    h.cancel()
    t.cancel()
    assert ref() is None  # released at cancel(), while the handles live
    assert h._callback is None and h._args is None
    spin(hloop)


def test_args_released_after_exception(hloop):
    arg = Arg()
    ref = weakref.ref(arg)
    hloop.call_soon(boom, arg)
    del arg
    spin(hloop)
    hloop.exc_log.expect(1)
    gc.collect()  # asyncio's _run: exception -> traceback -> frame -> exception
    assert ref() is None


def test_py_handles_setting_is_checked(monkeypatch):
    monkeypatch.setenv("BGLOOP_PY_HANDLES", "maybe")
    with pytest.raises(bgloop.config.ConfigError, match="BGLOOP_PY_HANDLES='maybe'"):
        bgloop.Loop()
