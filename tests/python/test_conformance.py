"""CPython's own asyncio conformance suites, run against bgloop.Loop.

Each class below is CPython's epoll-loop test class with the loop factory
swapped, exactly as Lib/test/test_asyncio defines EPollEventLoopTests etc.
for the Python version running the tests (the `test` package of the
interpreter under test).  Skips below state their reason.
"""
import asyncio
import unittest

import bgloop

from test.test_asyncio import functional as func_tests  # noqa: F401  (used by test_server)
from test.test_asyncio import test_events, test_sendfile, test_server, test_sock_lowlevel
from test.test_asyncio import test_streams
from test.test_asyncio import utils as test_utils


class _BgloopPolicy(asyncio.DefaultEventLoopPolicy):
    # For suites that make their loops with asyncio.new_event_loop().
    def new_event_loop(self):
        return bgloop.Loop()


class _PolicyMixin:
    def setUp(self):
        self._old_policy = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(_BgloopPolicy())
        super().setUp()

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            asyncio.set_event_loop_policy(self._old_policy)


class _CheckLoopMixin:
    # Make sure the suites really test bgloop.Loop, not a stock loop.
    def setUp(self):
        super().setUp()
        loop = getattr(self, "loop", None)
        if loop is not None:
            assert isinstance(loop, bgloop.Loop), type(loop)


class BgloopEventLoopTests(_CheckLoopMixin,
                           test_events.UnixEventLoopTestsMixin,
                           test_events.SubprocessTestsMixin,
                           test_utils.TestCase):
    def create_event_loop(self):
        return bgloop.Loop()


class BgloopSockTests(_CheckLoopMixin,
                      test_sock_lowlevel.BaseSockTestsMixin,
                      test_utils.TestCase):
    def create_event_loop(self):
        return bgloop.Loop()


class BgloopSendfileTests(_CheckLoopMixin,
                          test_sendfile.SendfileTestsBase,
                          test_utils.TestCase):
    def create_event_loop(self):
        return bgloop.Loop()


class BgloopStartServerTests(test_server.SelectorStartServerTests):
    # SelectorStartServerTests = BaseStartServer + the Unix-socket tests
    # CPython runs for its selector loop.
    def new_loop(self):
        return bgloop.Loop()


class BgloopStreamTests(_PolicyMixin, _CheckLoopMixin, test_streams.StreamTests):
    pass


del test_utils
