"""Scheduling semantics, run on the stock loop and on bgloop.Loop alike."""
import asyncio
import contextvars
import logging
import os
import signal
import socket
import threading
import time

import pytest

from _loop_util import bgl, exc_log, loop, run  # noqa: F401  (fixtures)


def test_call_soon_fifo(loop):
    out = []
    for i in range(100):
        loop.call_soon(out.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == list(range(100))


def test_call_soon_from_callback_runs_next_iteration(loop):
    out = []

    def first():
        out.append("first")
        loop.call_soon(out.append, "nested")
        loop.stop()  # stop after this iteration: "nested" must not run yet

    loop.call_soon(first)
    loop.call_soon(out.append, "second")
    loop.run_forever()
    assert out == ["first", "second"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["first", "second", "nested"]


def test_handle_cancel(loop):
    out = []
    h = loop.call_soon(out.append, "cancelled")
    loop.call_soon(out.append, "kept")
    h.cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["kept"]


def test_context_is_used(loop):
    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    seen = []
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_later(0.001, lambda: seen.append(var.get()), context=ctx)
    run(loop, asyncio.sleep(0.01))
    assert seen == ["inner", "inner"]


def test_call_later_order_and_cancel(loop):
    out = []
    for delay in (0.03, 0.01, 0.02, 0.0, 0.015):
        loop.call_later(delay, out.append, delay)
    c = loop.call_later(0.005, out.append, "cancelled")
    c.cancel()
    assert c.cancelled()
    run(loop, asyncio.sleep(0.05))
    assert out == [0.0, 0.01, 0.015, 0.02, 0.03]


def test_call_at_equal_deadlines_keep_order(bgl):
    # bgloop only: asyncio's heap does not promise an order for ties.
    loop = bgl
    out = []
    when = loop.time() + 0.01
    for i in range(20):
        loop.call_at(when, out.append, i)
    run(loop, asyncio.sleep(0.03))
    assert out == list(range(20))


def test_cancel_disarms_only_its_own_timer(loop):
    # TimerHandles with equal deadlines, callbacks and args compare equal;
    # cancelling one must still leave the others armed.
    out = []
    when = loop.time() + 0.01
    handles = [loop.call_at(when, out.append, "x") for _ in range(3)]
    assert handles[0] == handles[1]
    handles[1].cancel()
    run(loop, asyncio.sleep(0.03))
    assert out == ["x", "x"]
    assert handles[1].cancelled() and not handles[0].cancelled()


def test_cancel_after_fire_and_after_close(loop):
    h = loop.call_later(0, print)
    run(loop, asyncio.sleep(0.01))
    h.cancel()
    assert h.cancelled()
    late = loop.call_later(60, print)
    loop.close()
    late.cancel()
    assert late.cancelled()


def test_cancelled_timers_are_released(bgl):
    import gc
    import tracemalloc
    import weakref

    def cb():
        pass

    probe = bgl.call_later(3600, cb)
    ref = weakref.ref(probe)
    probe.cancel()
    del probe
    assert ref() is None  # nothing keeps a cancelled handle
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(100_000):
            bgl.call_later(3600, cb).cancel()
        handles = [bgl.call_later(3600, cb) for _ in range(100_000)]
        assert len(bgl._scheduled) == 100_000
        for h in handles:
            h.cancel()
        del handles, h
        assert len(bgl._scheduled) == 0 and bgl.stats()["timers"] == 0
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown


def test_call_later_not_early(loop):
    fired = []
    start = loop.time()
    h = loop.call_later(0.02, lambda: fired.append(loop.time()))
    run(loop, asyncio.sleep(0.05))
    assert fired and fired[0] >= h.when() >= start + 0.02


def test_timer_cancel_from_other_callback(loop):
    out = []
    late = loop.call_later(0.02, out.append, "late")
    loop.call_later(0.01, late.cancel)
    run(loop, asyncio.sleep(0.04))
    assert out == []


def test_call_later_bad_arguments(loop):
    loop.set_debug(True)  # asyncio checks callbacks in debug mode only
    with pytest.raises(TypeError):
        loop.call_soon("not callable")


def test_threadsafe_from_8_threads(loop):
    n_threads, per_thread = 8, 500
    got = []
    done = asyncio.Event()
    total = n_threads * per_thread

    def record(t, i):
        got.append((t, i))
        if len(got) == total:
            done.set()

    barrier = threading.Barrier(n_threads)

    def worker(t):
        barrier.wait()
        for i in range(per_thread):
            loop.call_soon_threadsafe(record, t, i)

    async def main():
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        await done.wait()
        for th in threads:
            th.join()

    run(loop, main())
    assert len(got) == total
    for t in range(n_threads):  # nothing lost, per-thread order kept
        assert [i for (tt, i) in got if tt == t] == list(range(per_thread))


def test_threadsafe_wakes_blocked_loop(loop):
    async def main():
        fut = loop.create_future()
        threading.Timer(0.02, loop.call_soon_threadsafe, (fut.set_result, "woken")).start()
        return await fut

    # No timer is armed on the loop: only the thread-safe call can wake it.
    assert run(loop, main()) == "woken"


def test_exception_in_callback_goes_to_handler(loop, exc_log):
    def boom():
        raise ZeroDivisionError("boom")

    loop.call_soon(boom)
    loop.call_soon(loop.stop)
    loop.run_forever()
    (ctx,) = exc_log.expect(1)
    assert isinstance(ctx["exception"], ZeroDivisionError)


def test_keyboard_interrupt_propagates_and_nothing_is_lost(loop):
    out = []

    def interrupt():
        raise KeyboardInterrupt

    loop.call_soon(out.append, 1)
    loop.call_soon(interrupt)
    loop.call_soon(out.append, 2)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == [1, 2]


def test_debug_slow_callback_warning(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    loop.call_soon(time.sleep, 0.03)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    assert any("Executing" in r.getMessage() and "took" in r.getMessage()
               for r in caplog.records if r.name == "asyncio")


def test_debug_check_thread(loop):
    loop.set_debug(True)
    errors = []

    def other():
        try:
            loop.call_soon(print)
        except RuntimeError as e:
            errors.append(e)

    async def main():
        # The check applies while the loop runs (in another thread).
        await loop.run_in_executor(None, other)

    run(loop, main())
    assert errors and "thread" in str(errors[0])


def test_signal_handler(loop):
    got = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, got.set)
    try:
        loop.call_later(0.01, os.kill, os.getpid(), signal.SIGUSR1)
        run(loop, got.wait())
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


def test_run_in_executor(loop):
    async def main():
        return await loop.run_in_executor(None, sum, [1, 2, 3])

    assert run(loop, main()) == 6
    loop.run_until_complete(loop.shutdown_default_executor())


def test_async_generator_finalization(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        g = agen()
        assert await g.__anext__() == 1
        # left unfinished: shutdown_asyncgens() must close it

    run(loop, main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == [True]


def test_add_reader_writer(loop):
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        b.setblocking(False)
        got = []

        async def main():
            fut = loop.create_future()

            def readable():
                got.append(a.recv(100))
                loop.remove_reader(a)
                fut.set_result(None)

            loop.add_reader(a, readable)
            wfut = loop.create_future()

            def writable():
                b.send(b"ping")
                loop.remove_writer(b)
                wfut.set_result(None)

            loop.add_writer(b, writable)
            await wfut
            await fut

        run(loop, main())
        assert got == [b"ping"]
        assert not loop.remove_reader(a)
        assert not loop.remove_writer(b)
    finally:
        a.close()
        b.close()


def test_run_until_complete_nested_raises(loop):
    async def main():
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            loop.run_until_complete(coro)
        coro.close()

    run(loop, main())


def test_close_running_loop_raises(loop):
    async def main():
        with pytest.raises(RuntimeError):
            loop.close()

    run(loop, main())


def test_call_at_none(bgl):
    # (3.10's stock loop only asserts.)
    with pytest.raises(TypeError, match="None"):
        bgl.call_at(None, print)


def test_remove_reader_writer_by_file_object(loop):
    a, b = socket.socketpair()
    try:
        loop.add_reader(a, print)
        loop.add_writer(a, print)
        assert loop.remove_writer(a) is True
        assert loop.remove_reader(a) is True
        assert loop.remove_reader(a.fileno()) is False
    finally:
        a.close()
        b.close()


def test_closed_loop_rejects_calls():
    import bgloop

    for lp in (asyncio.SelectorEventLoop(), bgloop.Loop()):
        lp.close()
        with pytest.raises(RuntimeError, match="closed"):
            lp.call_soon(print)
        with pytest.raises(RuntimeError, match="closed"):
            lp.call_later(1, print)
        with pytest.raises(RuntimeError, match="closed"):
            lp.call_soon_threadsafe(print)
        lp.close()  # idempotent


@pytest.mark.parametrize("name", ["asyncio", "bgloop"])
def test_unclosed_loop_with_queued_work_is_collected(name):
    import gc
    import warnings
    import weakref

    from _loop_util import FACTORIES

    def make():
        lp = FACTORIES[name]()
        lp.call_soon(print, "never")
        lp.call_soon_threadsafe(print, "never")
        lp.call_later(3600, print, "never")
        return weakref.ref(lp)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = make()
        gc.collect()
    assert ref() is None
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
