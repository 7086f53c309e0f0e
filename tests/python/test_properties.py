"""Property-based tests of the public API (hypothesis): random sequences of
scheduling, I/O, kicks and service calls with odd arguments.

Whatever the input: no crash, no hang (every wait is a kick with a bounded
timeout), no SystemError, only the documented exceptions, and the loop
stays usable - a later call_soon() still runs.

Profiles: ``ci`` (the default, a bounded run) and ``long`` (many more
examples and steps): ``HYPOTHESIS_PROFILE=long pytest test_properties.py``.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading

import bgloop
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

settings.register_profile(
    "ci", max_examples=25, stateful_step_count=25, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "long", max_examples=1000, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# What the public API documents for bad arguments and bad timing.
DOCUMENTED = (ValueError, TypeError, RuntimeError, OverflowError, KeyError, bgloop.ServiceError)

STATES = {"stopped", "starting", "running", "stopping", "exited", "failed"}

# Times as a caller might pass them: odd floats, huge and negative ints,
# and things that are not times at all.
odd_times = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1.0, max_value=0.05),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), True, None, "1", b"1", 2**63, -(2**63)]),
)
# Bounded waits: never more than 20 ms, but odd values too (refused).
kick_timeouts = st.one_of(
    st.floats(min_value=0.0, max_value=0.02),
    st.sampled_from([0, float("nan"), -1, -0.0, "0", True]),
)
budgets = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 10**400, -(10**400), 2**64, "x", True]),
)
odd_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "a\0b", "caf\udce9", "\udcff", "é" * 300, "x" * 5000]),
)


def documented(fn, *args, **kwargs):
    """Call fn; a documented exception is an answer, anything else fails."""
    try:
        return fn(*args, **kwargs)
    except DOCUMENTED as exc:
        assert not isinstance(exc, SystemError), exc
        return exc


def still_usable(loop, kick=None):
    """A call_soon() made now runs within a few kicks."""
    kick = kick or loop.kick
    ran = []
    loop.call_soon(ran.append, True)
    for _ in range(50):
        kick(timeout=0.01, budget=0.05)
        if ran:
            return
    raise AssertionError("a call_soon() did not run: the loop is wedged")


# ---- a private loop: timers, handles, pipes, thread-safe calls, tasks ---------

class LoopMachine(RuleBasedStateMachine):
    handles = Bundle("handles")
    pipes = Bundle("pipes")

    @initialize()
    def make_loop(self):
        self.loop = bgloop.Loop()
        self.ran = []
        self.fds = []
        self.threads = []
        self.watching = False

    def teardown(self):
        loop = getattr(self, "loop", None)
        if loop is None:
            return
        for t in self.threads:
            t.join(5)
        still_usable(loop)
        for task in asyncio.all_tasks(loop):
            task.cancel()
        for _ in range(5):
            loop.kick(timeout=0, budget=0.05)
        loop.close()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass

    @rule(target=handles, delay=odd_times)
    def call_later(self, delay):
        r = documented(self.loop.call_later, delay, self.ran.append, "later")
        return None if isinstance(r, Exception) else r

    @rule(target=handles, when=odd_times, relative=st.booleans())
    def call_at(self, when, relative):
        if relative and isinstance(when, (int, float)) and not isinstance(when, bool):
            try:
                when = self.loop.time() + when
            except OverflowError:
                pass
        r = documented(self.loop.call_at, when, self.ran.append, "at")
        return None if isinstance(r, Exception) else r

    @rule(target=handles)
    def call_soon(self):
        return self.loop.call_soon(self.ran.append, "soon")

    @rule(handle=consumes(handles))
    def cancel(self, handle):
        if handle is not None:
            handle.cancel()
            handle.cancel()  # twice is harmless

    @rule(handle=handles)
    def cancel_again(self, handle):
        if handle is not None:
            handle.cancel()

    @rule(n=st.integers(min_value=1, max_value=200))
    def threadsafe_flood(self, n):
        def flood():
            for i in range(n):
                try:
                    self.loop.call_soon_threadsafe(self.ran.append, "ts")
                except RuntimeError:  # the loop was closed meanwhile
                    return

        t = threading.Thread(target=flood)
        t.start()
        self.threads.append(t)

    @rule(target=pipes, kind=st.sampled_from(["pipe", "socketpair"]))
    def make_pipe(self, kind):
        if kind == "pipe":
            r, w = os.pipe()
        else:
            import socket
            a, b = socket.socketpair()
            r, w = a.detach(), b.detach()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self.fds += [r, w]
        return (r, w)

    @rule(p=pipes)
    def add_reader(self, p):
        def drain():
            try:
                os.read(p[0], 65536)
            except OSError:
                pass
            self.ran.append("read")

        self.watching = True
        documented(self.loop.add_reader, p[0], drain)

    @rule(p=pipes)
    def add_writer(self, p):
        self.watching = True
        documented(self.loop.add_writer, p[1], self.ran.append, "writable")

    @rule(p=pipes)
    def remove_both(self, p):
        documented(self.loop.remove_reader, p[0])
        documented(self.loop.remove_writer, p[1])

    @rule(p=pipes, data=st.binary(min_size=1, max_size=64))
    def write(self, p, data):
        try:
            os.write(p[1], data)
        except OSError:  # full or closed
            pass

    @rule(fd=st.one_of(st.integers(min_value=-(2**70), max_value=-1),
                       st.integers(min_value=2**31, max_value=2**70),
                       st.sampled_from([1.5, "3", None, b"3"])))
    def add_reader_odd_fd(self, fd):
        r = documented(self.loop.add_reader, fd, self.ran.append, "never")
        assert isinstance(r, Exception), r

    @rule(delay=st.floats(min_value=0, max_value=0.01), fail=st.booleans())
    def task(self, delay, fail):
        async def work():
            await asyncio.sleep(delay)
            if fail:
                raise RuntimeError("caf\udce9\0")

        t = self.loop.create_task(work())
        t.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _bounded(self, budget):
        # Without a budget a kick runs until nothing is ready: with a
        # descriptor that stays readable or writable, that is never.
        if self.watching and not (isinstance(budget, float) and 0 <= budget <= 0.05):
            return 0.01
        return budget

    @rule(timeout=kick_timeouts, budget=budgets)
    def kick(self, timeout, budget):
        r = documented(self.loop.kick, timeout=timeout, budget=self._bounded(budget))
        assert isinstance(r, (bool, Exception)), r

    @rule(budget=budgets)
    def kick_with_something_ready(self, budget):
        # None or inf would wait for ever with nothing to do: here something is.
        self.loop.call_soon(self.ran.append, "ready")
        documented(self.loop.kick, timeout=None, budget=self._bounded(budget))

    @invariant()
    def open_and_not_running(self):
        if hasattr(self, "loop"):
            assert not self.loop.is_closed()
            assert not self.loop.is_running()


TestLoop = LoopMachine.TestCase


# ---- services on the shared loop ------------------------------------------------

OWNER = "hypothesis"
NAMES = ["s0", "s1", "s2", "s3"]


def _make_fn(behaviour, text):
    async def fn(ctx):
        if behaviour == "return":
            return
        if behaviour == "raise":
            raise RuntimeError(text)
        if behaviour == "push":
            ctx.resources.push(lambda: None)
            ctx.resources.push(_Failing(text))
        ctx.ready()
        if behaviour == "ready-raise":
            await asyncio.sleep(0)
            raise ValueError(text)
        if behaviour == "swallow":
            # Ignores its stop and one cancellation; its stop_timeout is small.
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(0.01)
            return
        await ctx.stopping.wait()

    return fn


class _Failing:
    def __init__(self, text):
        self.text = text

    def close(self):
        raise OSError(self.text)


behaviours = st.sampled_from(["wait", "return", "raise", "push", "ready-raise", "swallow"])
restarts = st.one_of(st.sampled_from(["no", "on-failure", "always"]),
                     st.sampled_from(["never", "", "no\0", 2**32 + 1, -1, 0, 2, None, 1.5]))
names = st.one_of(st.sampled_from(NAMES), st.sampled_from(["", "a\0b", "caf\udce9", "é" * 300]))
counts = st.one_of(st.none(), st.integers(min_value=-5, max_value=20),
                   st.sampled_from([2**31, 2**32 - 1, 2**32, 2**64, True, 1.5, "5"]))


class ServicesMachine(RuleBasedStateMachine):
    @initialize()
    def clean(self):
        self.loop = bgloop.ensure_loop()
        bgloop.stop_services(OWNER)
        bgloop.forget_services(OWNER)

    def teardown(self):
        bgloop.stop_services(OWNER, timeout=0.2)
        st_ = bgloop.status()
        for name, info in st_.items():
            if info["owner"] == OWNER:
                assert info["state"] in {"stopped", "exited", "failed"}, (name, info)
        bgloop.forget_services(OWNER)
        assert not [n for n, i in bgloop.status().items() if i["owner"] == OWNER]
        still_usable(self.loop, bgloop.kick)

    @rule(name=names, behaviour=behaviours, text=odd_text,
          deps=st.lists(st.sampled_from(NAMES + ["unknown", "a\0b"]), max_size=3),
          restart=restarts, stop_timeout=odd_times, small_timeout=st.sampled_from([0, 0.01]),
          delay=st.one_of(st.none(), st.floats(min_value=0, max_value=0.02), odd_times),
          delay_max=st.one_of(st.none(), st.floats(min_value=0, max_value=0.05), odd_times),
          burst=counts, interval=st.one_of(st.none(), st.floats(min_value=0, max_value=1),
                                           odd_times))
    def register(self, name, behaviour, text, deps, restart, stop_timeout, small_timeout, delay,
                 delay_max, burst, interval):
        # A service that ignores its stop gets a stop timeout it honours
        # within the test's bounds; the others may get any value.
        if behaviour == "swallow" or not (isinstance(stop_timeout, (int, float)) and
                                          not isinstance(stop_timeout, bool) and
                                          0 <= stop_timeout <= 0.05):
            stop_timeout = small_timeout if behaviour == "swallow" else stop_timeout
        fn = _make_fn(behaviour, text)
        fn.__qualname__ = f"fn_{behaviour}"
        before = set(bgloop.status())
        r = documented(bgloop.service(name, owner=OWNER, depends_on=deps, restart=restart,
                                      stop_timeout=stop_timeout, restart_delay=delay,
                                      restart_max_delay=delay_max, start_limit_burst=burst,
                                      start_limit_interval=interval), fn)
        after = set(bgloop.status())
        if isinstance(r, Exception):
            assert after <= before | {name}
            if name not in before:
                assert name not in after, (name, r)
        else:
            assert name in after

    @rule(owner=st.one_of(st.just(OWNER), st.just(None), odd_text))
    def start(self, owner):
        if owner is None:
            owner = OWNER  # never start other tests' services
        documented(bgloop.start_services, owner)

    @rule(timeout=st.one_of(st.none(), st.floats(min_value=0, max_value=0.1), odd_times))
    def stop(self, timeout):
        if timeout is None or (isinstance(timeout, float) and math.isinf(timeout)):
            timeout = 0.1  # bounded: the services' own timeouts may be anything
        documented(bgloop.stop_services, OWNER, timeout)

    @rule(owner=odd_text)
    def stop_odd_owner(self, owner):
        assume(owner != OWNER)
        documented(bgloop.stop_services, owner, 0.1)

    @rule(timeout=kick_timeouts, budget=budgets)
    def kick(self, timeout, budget):
        documented(bgloop.kick, timeout=timeout, budget=budget)

    @rule()
    def forget(self):
        documented(bgloop.forget_services, OWNER)

    @precondition(lambda self: hasattr(self, "loop"))
    @invariant()
    def status_is_consistent(self):
        for name, info in bgloop.status().items():
            assert info["state"] in STATES, info
            assert isinstance(info["restarts"], int) and info["restarts"] >= 0
            assert info["error"] is None or isinstance(info["error"], str)


TestServices = ServicesMachine.TestCase


# ---- single calls -----------------------------------------------------------------

@given(timeout=kick_timeouts, budget=budgets)
def test_kick_with_any_timeout_and_budget(timeout, budget):
    r = documented(bgloop.kick, timeout=timeout, budget=budget)
    assert isinstance(r, (bool, Exception))
    still_usable(bgloop.ensure_loop(), bgloop.kick)


@given(delay=odd_times)
def test_call_later_any_delay_runs_or_refuses(delay):
    loop = bgloop.ensure_loop()
    ran = []
    h = documented(loop.call_later, delay, ran.append, 1)
    if not isinstance(h, Exception):
        loop.kick(timeout=0)
        due = isinstance(delay, (int, float)) and delay <= 0
        if due:
            assert ran == [1]
        h.cancel()
    still_usable(loop, bgloop.kick)


@pytest.fixture(autouse=True, scope="module")
def _no_services_left():
    yield
    bgloop.stop_services(OWNER, timeout=0.2)
    bgloop.forget_services(OWNER)
