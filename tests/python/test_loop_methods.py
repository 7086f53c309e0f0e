"""bgloop.Loop's kick(), _run_once(), call_soon(), call_later(), call_at(),
create_future() and get_debug() run in C (bound per loop); each behaves as
the stock loop's method, and a subclass's own method or debug mode keeps
the Python path."""
import asyncio
import threading

import pytest

import bgloop
from _loop_util import _close, bgl, exc_log, loop, run  # noqa: F401  (fixtures)


def test_call_soon_runs_in_order_with_args_and_context(loop):
    import contextvars

    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    seen = []
    loop.call_soon(seen.append, 1)
    loop.call_soon(lambda *a: seen.append(a), 2, 3)
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [1, (2, 3), "inner", "outer"]


def test_call_soon_returns_a_cancellable_handle(loop):
    seen = []
    h = loop.call_soon(seen.append, "no")
    assert not h.cancelled()
    h.cancel()
    assert h.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == []


def test_call_soon_argument_errors_match_asyncio(loop):
    with pytest.raises(TypeError, match="callback"):
        loop.call_soon()
    with pytest.raises(TypeError, match="unexpected keyword argument 'ctx'"):
        loop.call_soon(print, ctx=None)


def test_call_soon_takes_its_callback_by_keyword(loop):
    seen = []
    loop.call_soon(callback=lambda: seen.append("kw"))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["kw"]
    with pytest.raises(TypeError, match="multiple values for argument 'callback'"):
        loop.call_soon(print, callback=print)


def test_call_soon_on_a_closed_loop_raises(loop):
    _close(loop)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(print)


def test_call_later_and_call_at_fire_in_order_with_args_and_context(loop):
    import contextvars

    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    seen = []
    now = loop.time()
    h1 = loop.call_later(0.02, lambda *a: seen.append(a), 1, 2)
    h2 = loop.call_at(now + 0.01, lambda: seen.append(var.get()), context=ctx)
    h3 = loop.call_later(delay=0, callback=seen.append, context=None)  # callback gets no args
    h4 = loop.call_at(when=h1.when() + 0.01, callback=loop.stop)  # after h1, however slow
    assert now + 0.02 <= h1.when() <= loop.time() + 0.02
    assert h2.when() == now + 0.01 and h4.when() == h1.when() + 0.01
    h3.cancel()
    loop.run_forever()
    assert seen == ["inner", (1, 2)]
    assert not (h1.cancelled() or h2.cancelled()) and h3.cancelled()


def test_call_later_and_call_at_argument_errors_match_asyncio(loop):
    with pytest.raises(TypeError, match="missing 2 required positional arguments: "
                                        "'delay' and 'callback'"):
        loop.call_later()
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'callback'"):
        loop.call_at(loop.time())
    with pytest.raises(TypeError, match="unsupported operand"):
        loop.call_later("soon", print)
    with pytest.raises(TypeError, match="multiple values for argument 'delay'"):
        loop.call_later(1, print, delay=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'ctx'"):
        loop.call_at(loop.time(), print, ctx=None)


def test_none_as_the_time_is_a_type_error_on_every_python(bgl):
    # asyncio's own words from 3.11 on; 3.10's loop fails the addition
    # (call_later) or an assert (call_at).
    with pytest.raises(TypeError, match="delay must not be None"):
        bgl.call_later(None, print)
    with pytest.raises(TypeError, match="when cannot be None"):
        bgl.call_at(None, print)


def test_call_later_and_call_at_on_a_closed_loop_raise(loop):
    _close(loop)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_later(0, print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_at(0, print)


def test_run_once_blocks_for_the_next_timer_unless_stopping(loop):
    seen = []
    later = loop.call_later(5, seen.append, "later")
    loop.call_soon(loop.stop)
    loop.run_forever()  # stopping: one iteration that does not wait
    assert seen == [] and loop.time() < later.when()
    later.cancel()
    loop.call_later(0.02, seen.append, "timer")
    loop.call_later(0.03, loop.stop)
    loop.run_forever()  # each iteration blocks until the next timer
    assert seen == ["timer"]


def test_create_future_and_get_debug(loop):
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future) and fut.get_loop() is loop and not fut.done()
    fut.cancel()
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_debug_mode_checks_the_thread_of_call_soon(loop):
    async def main():
        loop.set_debug(True)
        errors = []

        def other():
            try:
                loop.call_soon(print)
            except RuntimeError as exc:
                errors.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        loop.set_debug(False)
        return errors

    errors = run(loop, main())
    assert len(errors) == 1 and "thread" in errors[0], errors


def test_debug_mode_gives_handles_a_source_traceback(loop):
    loop.set_debug(True)
    try:
        h = loop.call_soon(print)
        assert h._source_traceback and h._source_traceback[-1].name.startswith("test_debug")
        h.cancel()
    finally:
        loop.set_debug(False)
    h = loop.call_soon(print)
    assert h._source_traceback is None
    h.cancel()


def test_bound_methods_are_the_c_ones(bgl):
    core = bgl._core
    assert bgl.kick == core.loop_kick
    assert bgl.create_future == core.loop_create_future
    assert bgl.get_debug == core.loop_get_debug
    assert bgl._run_once == core.loop_run_once
    timers = ("call_soon", "call_later", "call_at")
    assert [getattr(bgl, n) for n in timers] == [getattr(core, "loop_" + n) for n in timers]
    bgl.set_debug(True)
    for name in timers:
        assert name not in vars(bgl)  # asyncio's, with its debug checks
    bgl.set_debug(False)
    assert [getattr(bgl, n) for n in timers] == [getattr(core, "loop_" + n) for n in timers]


def test_methods_kept_across_set_debug_take_the_debug_path(bgl):
    call_soon, call_later, call_at = bgl.call_soon, bgl.call_later, bgl.call_at
    bgl.set_debug(True)
    try:
        for h in (call_soon(print), call_later(10, print), call_at(bgl.time() + 10, print)):
            assert h._source_traceback  # made by asyncio's debug-mode method
            h.cancel()
        with pytest.raises(TypeError, match="callback"):
            call_later(1)
    finally:
        bgl.set_debug(False)


def test_a_subclass_keeps_its_own_methods(exc_log):
    calls = []

    class Traced(bgloop.Loop):
        def call_soon(self, callback, *args, context=None):
            calls.append(callback)
            return super().call_soon(callback, *args, context=context)

        def create_future(self):
            calls.append("future")
            return super().create_future()

        def call_at(self, when, callback, *args, context=None):
            calls.append("at")
            return super().call_at(when, callback, *args, context=context)

    lp = Traced()
    lp.set_exception_handler(exc_log)
    try:
        fut = lp.create_future()
        lp.call_soon(fut.set_result, 7)
        assert lp.run_until_complete(fut) == 7
        assert calls[:2] == ["future", fut.set_result]
        lp.call_later(0, print).cancel()  # through the subclass's call_at(), as in asyncio
        assert calls[-1] == "at"
        assert "call_at" not in vars(lp) and "call_later" not in vars(lp)
    finally:
        _close(lp)
    assert not exc_log.contexts


def test_a_subclass_with_its_own_clock_keeps_call_later(exc_log):
    class Shifted(bgloop.Loop):
        def time(self):
            return super().time() + 1000.0

    lp = Shifted()
    lp.set_exception_handler(exc_log)
    try:
        assert "call_later" not in vars(lp)
        h = lp.call_later(5, print)
        assert h.when() >= lp.time() + 4
        h.cancel()
    finally:
        _close(lp)
    assert not exc_log.contexts


def test_python_handles_keep_asyncio_call_soon(monkeypatch, exc_log):
    monkeypatch.setenv("BGLOOP_PY_HANDLES", "1")
    lp = bgloop.Loop()
    try:
        assert "call_soon" not in vars(lp)
        h = lp.call_soon(print)
        assert isinstance(h, asyncio.Handle)
        h.cancel()
    finally:
        _close(lp)


def test_kick_keywords_and_errors(bgl):
    assert bgl.kick() is True
    assert bgl.kick(timeout=0, budget=None) is True
    assert bgl.kick(0.0, 0.5) is True
    with pytest.raises(TypeError, match="at most 2 arguments"):
        bgl.kick(0, None, 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'wait'"):
        bgl.kick(wait=1)
    with pytest.raises(TypeError, match="multiple values for argument 'timeout'"):
        bgl.kick(0, timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        bgl.kick(-1)


def test_kick_answer_follows_work_and_busy_checks(bgl):
    assert bgl.kick() is True
    busy = [True]

    def check(lp):
        return busy[0]

    bgl.add_busy_check(check)
    assert bgl.kick() is False  # asked again although nothing ran
    busy[0] = False
    assert bgl.kick() is False  # nothing ran since: the answer stands
    bgl.remove_busy_check(check)
    assert bgl.kick() is True
    bgl.call_soon(lambda: None)
    assert bgl.kick() is True  # the callback ran; nothing left after it


def test_kick_inside_run_forever_raises(bgl):
    errors = []

    def inner():
        try:
            bgl.kick()
        except RuntimeError as exc:
            errors.append(str(exc))
        bgl.stop()

    bgl.call_soon(inner)
    bgl.run_forever()
    assert errors and "already running" in errors[0]
