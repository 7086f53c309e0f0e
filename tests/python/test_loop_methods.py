"""bgloop.Loop's kick(), call_soon(), create_future() and get_debug() run in C
(bound per loop); each behaves as the stock loop's method, and a subclass's
own method or debug mode keeps the Python path."""
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


def test_call_soon_on_a_closed_loop_raises(loop):
    _close(loop)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(print)


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
    assert bgl.call_soon == core.loop_call_soon
    bgl.set_debug(True)
    assert "call_soon" not in vars(bgl)  # asyncio's, with its debug checks
    bgl.set_debug(False)
    assert bgl.call_soon == core.loop_call_soon


def test_a_subclass_keeps_its_own_methods(exc_log):
    calls = []

    class Traced(bgloop.Loop):
        def call_soon(self, callback, *args, context=None):
            calls.append(callback)
            return super().call_soon(callback, *args, context=context)

        def create_future(self):
            calls.append("future")
            return super().create_future()

    lp = Traced()
    lp.set_exception_handler(exc_log)
    try:
        fut = lp.create_future()
        lp.call_soon(fut.set_result, 7)
        assert lp.run_until_complete(fut) == 7
        assert calls[:2] == ["future", fut.set_result]
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
