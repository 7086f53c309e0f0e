"""More of CPython's asyncio test suite on bgloop.Loop: tasks, locks, queues,
timeouts, task groups, futures, subprocesses, SSL protocol, runners...

These suites make their loops with asyncio.new_event_loop() (or
asyncio.run()), so an event loop policy returning bgloop.Loop is installed
around each test (_loop_util.bgloop_policy).  Modules a Python version does
not ship (e.g. test_timeouts before 3.11) are simply not collected there.
"""
import importlib
import unittest

import pytest

from _loop_util import bgloop_policy

MODULES = [
    "test_tasks", "test_locks", "test_queues", "test_timeouts", "test_taskgroups",
    "test_waitfor", "test_futures", "test_pep492", "test_context", "test_buffered_proto",
    "test_threads", "test_subprocess", "test_sslproto", "test_runners", "test_protocols",
    "test_transports",
]


@pytest.fixture(autouse=True)
def _bgloop_policy():
    # As in CPython's own run, where earlier tests' tearDown already called
    # set_event_loop(None): get_event_loop() then raises instead of making
    # a loop (test_create_subprocess_with_pidfd checks that on 3.12).
    with bgloop_policy():
        yield


# Skipped, with the reason: these only exercise Future/Task finalizers (no
# loop code), and each runs gc.collect() in a loop, which takes seconds over
# a pytest session's heap (they pass when run alone).
SLOW_GC_TESTS = {"test_task_del_collect", "test_future_del_collect"}
_SKIP_REASON = "Future/Task finalizer test, loop-independent and slow under pytest (gc.collect)"


def _without_slow_gc_tests(cls):
    slow = [n for n in SLOW_GC_TESTS if hasattr(cls, n)]
    if not slow:
        return cls
    ns = {n: unittest.skip(_SKIP_REASON)(getattr(cls, n)) for n in slow}
    return type(cls.__name__, (cls,), ns)


def _collect():
    for modname in MODULES:
        try:
            mod = importlib.import_module(f"test.test_asyncio.{modname}")
        except ModuleNotFoundError:
            continue  # not in this Python version
        for name, obj in vars(mod).items():
            if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                    and obj.__module__ == mod.__name__):
                globals()[f"{modname}__{name}"] = _without_slow_gc_tests(obj)


_collect()
