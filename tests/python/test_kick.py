"""kick(), ensure_loop(), run() and stats(): bgloop's own API."""
import asyncio
import gc
import logging
import math
import os
import re
import signal
import sys
import threading
import time

import pytest

import bgloop
from _loop_util import bgl, exc_log, loop, run  # noqa: F401  (fixtures)

# Generous bounds that only a broken implementation can exceed (kick
# returning early is the semantics under test, not its speed).
LONG = 60.0


def kick_until(loop, pred, guard=20.0):
    end = time.monotonic() + guard
    while not pred():
        assert time.monotonic() < end, "condition not reached"
        loop.kick(timeout=0.05)


def test_kick_idle_returns_true_at_once(bgl):
    assert bgl.kick() is True
    assert bgl.kick(0) is True
    assert not bgl.is_running()


def test_kick_returns_as_soon_as_a_timer_is_due(bgl):
    fired = []
    bgl.call_later(0.02, fired.append, 1)
    t0 = time.monotonic()
    bgl.kick(timeout=LONG)
    assert fired == [1]
    assert time.monotonic() - t0 < LONG / 2


def test_kick_timeout_expires_without_work(bgl):
    bgl.call_later(LONG, print)
    assert bgl.kick(timeout=0.01) is True  # no task: nothing left to do


def test_threadsafe_call_wakes_blocked_kick(bgl):
    got = []
    threading.Timer(0.02, bgl.call_soon_threadsafe, (got.append, "x")).start()
    t0 = time.monotonic()
    bgl.kick(timeout=None)  # nothing else can wake it
    assert got == ["x"]
    assert time.monotonic() - t0 < LONG / 2


def test_kick_runs_chains_until_nothing_ready(bgl):
    out = []

    def step(i):
        out.append(i)
        if i < 50:
            bgl.call_soon(step, i + 1)

    bgl.call_soon(step, 0)
    assert bgl.kick() is True
    assert out == list(range(51))


def test_kick_budget_leaves_rest_queued_in_order(bgl):
    out = []

    def slow(i):
        time.sleep(0.002)
        out.append(i)

    for i in range(100):
        bgl.call_soon(slow, i)
    assert bgl.kick(budget=0.005) is False  # callbacks are still queued
    first = list(out)
    assert 1 <= len(first) < 100
    assert first == list(range(len(first)))
    while not bgl.kick():
        pass
    assert out == list(range(100))


def test_kick_budget_zero_still_runs_one(bgl):
    out = []
    bgl.call_soon(out.append, 1)
    bgl.call_soon(out.append, 2)
    bgl.kick(budget=0)
    assert out[:1] == [1]
    while not bgl.kick():
        pass
    assert out == [1, 2]


def test_request_response_round_trip_in_one_kick(bgl):
    class Echo(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr

        def data_received(self, data):
            self.tr.write(data.upper())

    class Client(asyncio.Protocol):
        def __init__(self):
            self.got = b""

        def connection_made(self, tr):
            self.tr = tr

        def data_received(self, data):
            self.got += data

    server = run(bgl, bgl.create_server(Echo, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    tr, client = run(bgl, bgl.create_connection(Client, "127.0.0.1", port))
    while bgl.kick(timeout=0.01) is False:  # let the server accept
        pass
    tr.write(b"ping")  # from outside the loop, between kicks
    bgl.kick(timeout=LONG)
    assert client.got == b"PING"
    tr.close()
    server.close()
    run(bgl, server.wait_closed())


def test_kick_false_while_a_task_is_pending(bgl):
    task = bgl.create_task(asyncio.sleep(0.02))
    assert bgl.kick() is False
    kick_until(bgl, task.done)
    assert bgl.kick() is True


def test_running_loop_during_kick_only(bgl):
    seen = []
    bgl.call_soon(lambda: seen.append((asyncio.get_running_loop(), bgl.is_running())))
    bgl.kick()
    assert seen == [(bgl, True)]
    assert not bgl.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    # Between kicks other code may run its own loop.
    assert asyncio.run(asyncio.sleep(0, "ok")) == "ok"
    assert bgl.kick() is True


def test_kick_inside_running_loop_raises_and_keeps_state(bgl):
    errors = []

    def nested():
        try:
            bgl.kick()
        except RuntimeError as e:
            errors.append(str(e))

    bgl.call_soon(nested)
    bgl.kick()
    assert errors and "already running" in errors[0]
    # The loop is intact: kicks and run_until_complete still work.
    assert run(bgl, asyncio.sleep(0, 5)) == 5
    errors.clear()

    async def main():
        nested()

    run(bgl, main())
    assert errors and "already running" in errors[0]


def test_kick_from_another_running_loop_raises(bgl):
    async def main():
        bgl.call_soon(print)  # something for the kick to do
        with pytest.raises(RuntimeError):
            bgl.kick()

    asyncio.run(main())
    bgl.kick()


@pytest.mark.parametrize("kw, exc, name", [
    ({"timeout": -1}, ValueError, "timeout"),
    ({"timeout": -0.5}, ValueError, "timeout"),
    ({"timeout": math.nan}, ValueError, "timeout"),
    ({"timeout": "1"}, TypeError, "timeout .* not str"),
    ({"timeout": [1]}, TypeError, "timeout .* not list"),
    ({"timeout": True}, TypeError, "timeout .* not bool"),
    ({"budget": -1}, ValueError, "budget"),
    ({"budget": "x"}, TypeError, "budget .* not str"),
    ({"budget": object()}, TypeError, "budget .* not object"),
])
def test_kick_bad_arguments(bgl, kw, exc, name):
    with pytest.raises(exc, match=name):
        bgl.kick(**kw)
    with pytest.raises(exc, match=name):
        bgloop.kick(**kw)
    assert bgl.kick() is True  # unharmed


def test_kick_closed_loop():
    lp = bgloop.Loop()
    lp.close()
    with pytest.raises(RuntimeError, match="closed"):
        lp.kick()


def test_kick_stop_ends_the_kick(bgl):
    out = []

    def step(i):
        out.append(i)
        if i == 3:
            bgl.stop()
        bgl.call_soon(step, i + 1)

    bgl.call_soon(step, 0)
    bgl.kick()
    assert out == [0, 1, 2, 3]
    assert not bgl.is_running()
    bgl.kick(budget=0.001)
    assert out[4] == 4


def test_keyboard_interrupt_escapes_kick(bgl):
    out = []

    def interrupt():
        raise KeyboardInterrupt

    bgl.call_soon(interrupt)
    bgl.call_soon(out.append, "after")
    with pytest.raises(KeyboardInterrupt):
        bgl.kick()
    assert not bgl.is_running()
    assert bgl.kick() is True
    assert out == ["after"]


def test_timer_cancel_disarms_c_timer(bgl):
    h = bgl.call_later(LONG, print)
    assert bgl.stats()["timers"] == 1
    h.cancel()
    assert bgl.stats()["timers"] == 0
    assert len(bgl._scheduled) == 0


def test_ensure_loop_identity_and_not_running():
    a = bgloop.ensure_loop()
    assert isinstance(a, bgloop.Loop)
    assert bgloop.ensure_loop() is a
    assert not a.is_running()
    seen = []
    a.call_soon(lambda: seen.append(bgloop.ensure_loop() is asyncio.get_running_loop()))
    bgloop.kick()
    assert seen == [True]
    assert not a.is_running()


def test_ensure_loop_leaves_other_loops_alone():
    other = asyncio.new_event_loop()
    asyncio.set_event_loop(other)
    try:
        shared = bgloop.ensure_loop()
        assert shared is not other
        assert asyncio.get_event_loop() is other
        assert not other.is_closed()
    finally:
        asyncio.set_event_loop(None)
        other.close()


def test_module_kick_drives_shared_loop():
    lp = bgloop.ensure_loop()
    task = lp.create_task(asyncio.sleep(0.01, "done"))
    end = time.monotonic() + 20
    while not bgloop.kick(timeout=0.05):
        assert time.monotonic() < end
    assert task.result() == "done"


def test_run_like_asyncio_run():
    async def main():
        loop = asyncio.get_running_loop()
        assert isinstance(loop, bgloop.Loop)
        return await loop.run_in_executor(None, lambda: 7)

    assert bgloop.run(main()) == 7
    with pytest.raises(ValueError, match="coroutine"):
        bgloop.run(lambda: 1)

    async def nested():
        coro = main()
        try:
            bgloop.run(coro)
        finally:
            coro.close()

    with pytest.raises(RuntimeError, match="running event loop"):
        bgloop.run(nested())


def test_run_debug_flag():
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert bgloop.run(main(), debug=True) is True
    assert bgloop.run(main(), debug=False) is False


def test_run_cancels_leftover_tasks():
    cancelled = []

    async def forever():
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)

    bgloop.run(main())
    assert cancelled == [True]


def test_stats(bgl, caplog):
    before = bgl.stats()
    for key in ("iterations", "callbacks", "longest_callback", "loop_lag"):
        assert key in before
    bgl.slow_callback_duration = 0.01
    bgl.call_soon(time.sleep, 0.02)
    bgl.call_later(0.001, print)
    with caplog.at_level(logging.WARNING, logger="bgloop"):
        run(bgl, asyncio.sleep(0.01))
    st = bgl.stats()
    assert st["iterations"] > before["iterations"]
    assert st["callbacks"] >= before["callbacks"] + 3
    assert st["longest_callback"] >= 0.02
    assert st["loop_lag"] >= 0.0 and st["loop_lag_max"] >= st["loop_lag"]
    # Reported only with BGLOOP_SLOW_CALLBACK set (test_fidelity.py).
    assert not any("slow callback" in r.getMessage() for r in caplog.records
               if r.name == "bgloop.loop")
    assert isinstance(bgloop.stats(), dict)


def test_stats_counts_idle_kicks(bgl):
    before = bgl.stats()["idle_kicks"]
    for _ in range(10):
        bgl.kick()
    assert bgl.stats()["idle_kicks"] == before + 10


def test_busy_check_keeps_kick_false(bgl):
    busy = [True]

    def check(loop):
        return loop is bgl and busy[0]

    bgl.add_busy_check(check)
    bgl.call_soon(int)
    assert bgl.kick() is False
    busy[0] = False
    bgl.call_soon(int)
    assert bgl.kick() is True
    busy[0] = True
    assert bgl.remove_busy_check(check) is True
    assert bgl.remove_busy_check(check) is False
    bgl.call_soon(int)
    assert bgl.kick() is True


def test_busy_checks_belong_to_their_loop(bgl):
    other = bgloop.Loop()
    try:
        other.add_busy_check(lambda loop: True)
        bgl.call_soon(int)
        assert bgl.kick() is True
        other.call_soon(int)
        assert other.kick() is False
    finally:
        other.close()
    with pytest.raises(TypeError, match="callable"):
        bgl.add_busy_check(42)


def test_a_busy_check_that_raises_is_reported_and_removed(bgl):
    reports = []
    bgl.set_exception_handler(lambda loop, context: reports.append(context))
    calls = []

    def broken(loop):
        calls.append(1)
        raise ZeroDivisionError("broken check")

    bgl.add_busy_check(broken)
    for _ in range(3):
        bgl.call_soon(int)
        assert bgl.kick() is True     # every later kick still works
    assert len(calls) == 1
    assert len(reports) == 1
    assert isinstance(reports[0]["exception"], ZeroDivisionError)
    assert "busy check" in reports[0]["message"] and "removed" in reports[0]["message"]
    assert bgl.remove_busy_check(broken) is False


def test_module_busy_check_functions_use_the_shared_loop(shared):
    loop = shared
    assert bgloop.ensure_loop() is loop

    def check(lp):
        return lp is loop

    bgloop.add_busy_check(check)
    try:
        loop.call_soon(int)
        assert bgloop.kick() is False
    finally:
        assert bgloop.remove_busy_check(check) is True
    loop.call_soon(int)
    assert bgloop.kick() is True


def test_close_or_kick_from_other_thread_during_blocked_kick(bgl):
    errors = []

    def other():
        end = time.monotonic() + 20
        while not bgl._core.busy and time.monotonic() < end:  # the kick is waiting
            time.sleep(0.005)
        for fn in (bgl.close, bgl.kick):
            try:
                fn()
            except RuntimeError as e:
                errors.append(str(e))
        bgl.call_soon_threadsafe(errors.append, "woken")

    th = threading.Thread(target=other)
    th.start()
    bgl.kick(timeout=None)
    th.join()
    assert len(errors) == 3 and errors[2] == "woken", errors
    assert "running" in errors[0]
    # The loop belongs to the thread that ran it first: the message names it.
    assert "belongs to thread 'MainThread'" in errors[1], errors[1]
    assert not bgl.is_closed()


def test_kick_debug_mode_slow_callback(bgl, caplog):
    bgl.set_debug(True)
    bgl.slow_callback_duration = 0.01
    bgl.call_soon(time.sleep, 0.02)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        bgl.kick()
    assert any("Executing" in r.getMessage() for r in caplog.records if r.name == "asyncio")


# ---- the thin driver: idle cost, budget, signals, version, backend -------


@pytest.fixture
def shared(monkeypatch):
    """A fresh loop as the shared one, for bgloop.kick(): what earlier tests
    left on the real shared loop must not run during a timed kick."""
    lp = bgloop.Loop()
    monkeypatch.setattr(bgloop.shared, "_shared", lp)
    try:
        yield lp
    finally:
        monkeypatch.undo()
        lp.close()


def test_idle_kick_runs_no_python_function(shared):
    import socket

    lp = bgloop.Loop()
    a, b = socket.socketpair()
    try:
        # Something to wait on: a quiet fd and a far timer.
        lp.add_reader(a, print)
        far = lp.call_later(LONG, print)
        for _ in range(2):  # the first kick of a loop answers "nothing left" once
            bgloop.kick()
            lp.kick()
        calls = []

        def profile(frame, event, arg):
            if event == "call":
                calls.append(frame.f_code.co_name)

        sys.setprofile(profile)
        try:
            for _ in range(5):
                bgloop.kick()
                lp.kick()
                lp.kick(timeout=0.001)
                shared.kick(0)
        finally:
            sys.setprofile(None)
        assert calls and set(calls) == {"kick"}, calls
        assert lp.stats()["idle_kicks"] >= 10
        far.cancel()
        lp.remove_reader(a)
    finally:
        lp.close()
        a.close()
        b.close()


BUSY = 0.02      # each callback busy-waits this long
BUDGET = 0.05    # 2.5 callbacks' worth: 3 run
WAIT = 0.1       # before the first callback is due; more than the budget


def _budget_run(lp, kick):
    took = []  # how long each callback really ran (a busy CPU stretches them)
    stop = []

    def busy(i):
        t0 = time.monotonic()
        while time.monotonic() < t0 + BUSY:
            pass
        if not stop and i < 10:  # a kick that ignored its budget still ends
            lp.call_soon(busy, i + 1)
        took.append(time.monotonic() - t0)

    lp.call_later(WAIT, busy, 0)
    t0 = time.monotonic()
    kick(timeout=LONG, budget=BUDGET)
    waited = time.monotonic() - t0 - sum(took)
    ran = list(took)
    stop.append(True)
    while not lp.kick():
        pass
    return ran, waited


@pytest.mark.parametrize("via", ["Loop.kick", "bgloop.kick"])
def test_budget_counts_callbacks_not_the_wait(bgl, shared, via):
    # libbgloop owns the budget (bgl_loop_kick): only dispatch time counts,
    # so the 0.1 s wait leaves the whole 0.05 s for callbacks of 0.02 s:
    # three run.  The kick must stop after the first callback that brings
    # the callbacks' own time to the budget; a run too close to call on a
    # busy machine (within 3 ms of the budget) is retried.
    lp, kick = (shared, bgloop.kick) if via == "bgloop.kick" else (bgl, bgl.kick)
    gc.collect()
    gc.disable()  # a full collection would stretch a callback
    try:
        for _ in range(5):
            ran, waited = _budget_run(lp, kick)
            assert waited >= WAIT * 0.9
            spent = [sum(ran[:k + 1]) for k in range(len(ran))]
            if all(abs(t - BUDGET) > 0.003 for t in spent):
                break
    finally:
        gc.enable()
    want = next((k + 1 for k, t in enumerate(spent) if t >= BUDGET), None)
    assert want is not None and len(ran) == want >= 2, (
        f"{len(ran)} callbacks ran, taking {[round(t, 4) for t in ran]} s")


def _interrupt_main_until(done, interval=0.2):
    # Repeated, in case the first one lands before the kick is waiting.
    main = threading.main_thread().ident
    while not done.wait(interval):
        signal.pthread_kill(main, signal.SIGINT)


@pytest.mark.parametrize("via", ["Loop.kick", "bgloop.kick"])
def test_sigint_interrupts_a_blocked_kick(bgl, shared, via):
    hits = []

    def handler(signo, frame):
        hits.append(signo)
        if len(hits) == 1:
            raise KeyboardInterrupt

    lp, kick = (shared, bgloop.kick) if via == "bgloop.kick" else (bgl, bgl.kick)
    done = threading.Event()
    old = signal.signal(signal.SIGINT, handler)
    th = threading.Thread(target=_interrupt_main_until, args=(done,))
    try:
        th.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            kick(timeout=LONG)
        assert time.monotonic() - t0 < LONG / 2
    finally:
        done.set()
        th.join()
        signal.signal(signal.SIGINT, old)
    assert hits
    assert not lp._core.busy and not lp.is_running()
    out = []
    lp.call_soon(out.append, 1)
    lp.kick()
    assert out == [1]
    assert run(lp, asyncio.sleep(0.01, "ok")) == "ok"


def test_signal_handler_that_does_not_raise_only_wakes_the_kick(bgl):
    hits = []
    done = threading.Event()
    old = signal.signal(signal.SIGINT, lambda signo, frame: hits.append(signo))
    th = threading.Thread(target=_interrupt_main_until, args=(done,))
    try:
        th.start()
        t0 = time.monotonic()
        while not hits:
            assert time.monotonic() - t0 < LONG / 2
            bgl.kick(timeout=LONG)
    finally:
        done.set()
        th.join()
        signal.signal(signal.SIGINT, old)
    bgl.call_soon(hits.append, "after")
    bgl.kick()
    assert hits[-1] == "after"


def test_stop_requests_of_the_binding_do_not_leak(bgl):
    bgl.call_soon(bgl.stop)
    bgl.kick()

    def interrupt():
        raise KeyboardInterrupt

    bgl.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        bgl.kick()
    assert run(bgl, asyncio.sleep(0, 1)) == 1
    assert bgl._core.take_stop() is None


def _meson_version():
    # tests/python/ -> the source tree's meson.build, when the tests run
    # from a checkout (the wheel may be installed anywhere).
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "meson.build")
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"project\([^)]*?version\s*:\s*'([^']+)'", text, re.S)
    return m.group(1) if m else None


def test_version_is_defined_once():
    from importlib import metadata

    v = bgloop.__version__
    assert isinstance(v, str) and v
    assert v == bgloop._bgloop.version()
    want = _meson_version()
    if want is not None:
        assert v == want
    try:
        dist = metadata.version("bgloop")
    except metadata.PackageNotFoundError:
        pytest.skip("bgloop is not installed (no distribution metadata)")
    assert dist == v


def test_backend():
    backend = bgloop._bgloop.backend()
    assert backend in ("epoll", "poll")
    want = os.environ.get("BGLOOP_EXPECT_BACKEND")
    if want:
        assert backend == want
