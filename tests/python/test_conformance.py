"""CPython's own asyncio conformance suites, run against bgloop.Loop.

Each class below is CPython's epoll-loop test class (EPollEventLoopTests of
Lib/test/test_asyncio/test_events.py etc., of the `test` package of the
interpreter under test) with the loop factory swapped, so every test mixin
that version runs for its epoll loop runs here too (3.14, for one, folded
UnixEventLoopTestsMixin into EventLoopTestsMixin).  Skips below state their
reason.
"""
import os
from unittest import mock

import bgloop

from _loop_util import bgloop_policy
from test.test_asyncio import functional as func_tests  # noqa: F401  (used by test_server)
from test.test_asyncio import test_events, test_sendfile, test_server, test_sock_lowlevel
from test.test_asyncio import test_streams


class _PolicyMixin:
    # For suites that make their loops with asyncio.new_event_loop().
    def setUp(self):
        self._policy = bgloop_policy()
        self._policy.__enter__()
        super().setUp()

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self._policy.__exit__(None, None, None)


class _CheckLoopMixin:
    # Make sure the suites really test bgloop.Loop, not a stock loop.
    def setUp(self):
        super().setUp()
        loop = getattr(self, "loop", None)
        if loop is not None:
            assert isinstance(loop, bgloop.Loop), type(loop)


class BgloopEventLoopTests(_CheckLoopMixin, test_events.EPollEventLoopTests):
    def create_event_loop(self):
        if self._testMethodName.startswith("test_call_soon_threadsafe_handle_"):
            # CPython 3.14's tests of these handles check that they are
            # asyncio's _ThreadSafeHandle, which bgloop's C handles are not
            # (test_handles.py tests their locking): asyncio's handles here.
            with mock.patch.dict(os.environ, {"BGLOOP_PY_HANDLES": "1"}):
                return bgloop.Loop()
        return bgloop.Loop()


class BgloopSockTests(_CheckLoopMixin, test_sock_lowlevel.EPollEventLoopTests):
    def create_event_loop(self):
        return bgloop.Loop()


class BgloopSendfileTests(_CheckLoopMixin, test_sendfile.EPollEventLoopTests):
    def create_event_loop(self):
        return bgloop.Loop()


class BgloopStartServerTests(test_server.SelectorStartServerTests):
    # SelectorStartServerTests = BaseStartServer + the Unix-socket tests
    # CPython runs for its selector loop.
    def new_loop(self):
        return bgloop.Loop()


class BgloopStreamTests(_PolicyMixin, _CheckLoopMixin, test_streams.StreamTests):
    pass
