"""What bgloop.Loop cannot do on Windows, said plainly.

On Windows libbgloop's backend reports readiness of sockets only, so
bgloop.Loop is a selector loop over sockets, as asyncio's SelectorEventLoop is
there: TCP and UDP transports, streams, servers, SSL, ``sock_*()`` calls and
``call_soon_threadsafe()`` work; pipes, subprocesses and POSIX signal
handlers do not.  asyncio's selector loop fails those with a bare
NotImplementedError; bgloop.Loop says what is missing and what to use
instead.  ``bgloop.serve()`` needs no signal handler there: it stops on
Ctrl+C, Ctrl+Break and the console's close, logoff or shutdown through
libbgloop's console handler (``bgloop.serve``).
"""
from __future__ import annotations

import sys

__all__ = ["SocketsOnly", "loop_bases"]

_SOCKETS_ONLY = ("bgloop.Loop on Windows watches sockets only, as asyncio's "
                 "SelectorEventLoop does there")


class SocketsOnly:
    """Mixed into bgloop.Loop on Windows, before asyncio's selector loop."""

    def add_signal_handler(self, sig, callback, *args):
        raise NotImplementedError(
            "add_signal_handler(): Windows has no POSIX signals to hand to an event loop. "
            "bgloop.serve() stops on Ctrl+C, Ctrl+Break and the console's close by itself; "
            "elsewhere use signal.signal() (SIGINT, SIGBREAK) from the main thread")

    def remove_signal_handler(self, sig):
        raise NotImplementedError(
            "remove_signal_handler(): Windows has no POSIX signals to hand to an event loop, "
            "so no handler can have been added")

    async def _make_subprocess_transport(self, protocol, args, shell, stdin, stdout, stderr,
                                         bufsize, extra=None, **kwargs):
        raise NotImplementedError(
            f"subprocesses: {_SOCKETS_ONLY}, and a child's pipes are not sockets. Run it "
            "in a thread (await loop.run_in_executor(None, subprocess.run, ...)) or on "
            "asyncio.ProactorEventLoop")

    def _make_read_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        raise NotImplementedError(
            f"connect_read_pipe(): {_SOCKETS_ONLY}; read the pipe in a thread "
            "(loop.run_in_executor) or use a socket")

    def _make_write_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        raise NotImplementedError(
            f"connect_write_pipe(): {_SOCKETS_ONLY}; write the pipe in a thread "
            "(loop.run_in_executor) or use a socket")


def loop_bases(platform: str = sys.platform) -> tuple:
    """The classes bgloop.Loop puts before asyncio's selector loop on
    `platform` (a ``sys.platform`` value)."""
    return (SocketsOnly,) if platform == "win32" else ()
