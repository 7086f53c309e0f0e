"""The Windows code paths of the binding, run on this platform.

No Windows CPython runs here: what Windows would take is taken on purpose
(the classes and the serve() guard sys.platform picks there), and what it
does is checked with the C library this platform has.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
import threading
from asyncio import events

import pytest

import bgloop
from bgloop import windows

serve_mod = importlib.import_module("bgloop.serve")  # bgloop.serve is also the function

from test_serve import finish, read_line, spawn_script

GUARD = 30.0

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="checks the POSIX choice")


class WindowsLoop(windows.SocketsOnly, bgloop.Loop):
    """bgloop.Loop as Windows composes it."""


@pytest.fixture
def winloop():
    loop = WindowsLoop()
    yield loop
    loop.close()


def test_windows_puts_the_sockets_only_limits_before_the_selector_loop():
    assert windows.loop_bases("win32") == (windows.SocketsOnly,)
    assert windows.loop_bases("linux") == ()
    assert windows.loop_bases("darwin") == ()


@posix_only
def test_posix_loop_and_serve_keep_asyncio_signals():
    assert windows.SocketsOnly not in bgloop.Loop.__mro__
    assert serve_mod._Guard is serve_mod._SignalGuard


@pytest.mark.parametrize("call", ["add", "remove"])
def test_signal_handlers_are_refused_naming_windows(winloop, call):
    with pytest.raises(NotImplementedError, match="Windows has no POSIX signals"):
        if call == "add":
            winloop.add_signal_handler(signal.SIGINT, lambda: None)
        else:
            winloop.remove_signal_handler(signal.SIGINT)


def test_subprocesses_are_refused_before_anything_starts(winloop, tmp_path):
    marker = tmp_path / "ran"

    async def main():
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"open({str(marker)!r}, 'w').close()")

    with pytest.raises(NotImplementedError, match="subprocesses: .*sockets only"):
        winloop.run_until_complete(asyncio.wait_for(main(), GUARD))
    assert not marker.exists()
    assert not asyncio.all_tasks(winloop)


@pytest.mark.parametrize("direction", ["read", "write"])
def test_pipes_are_refused_naming_the_call(winloop, direction):
    r, w = os.pipe()
    try:
        async def main():
            if direction == "read":
                with os.fdopen(r, "rb", closefd=False) as pipe:
                    await winloop.connect_read_pipe(asyncio.Protocol, pipe)
            else:
                with os.fdopen(w, "wb", closefd=False) as pipe:
                    await winloop.connect_write_pipe(asyncio.Protocol, pipe)

        with pytest.raises(NotImplementedError, match=f"connect_{direction}_pipe\\(\\)"):
            winloop.run_until_complete(asyncio.wait_for(main(), GUARD))
    finally:
        os.close(r)
        os.close(w)


def test_sockets_still_work_on_the_windows_composition(winloop):
    async def main():
        async def echo(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"over loopback\n")
        line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return line

    assert winloop.run_until_complete(asyncio.wait_for(main(), GUARD)) == b"over loopback\n"


@posix_only
def test_signal_watcher_runs_its_handle_until_closed():
    loop = bgloop.Loop()
    got = []
    try:
        handle = events.Handle(got.append, (signal.SIGUSR2,), loop, None)
        watcher = loop._core.watch_signal(signal.SIGUSR2, handle)
        with pytest.raises(FileExistsError):
            loop._core.watch_signal(signal.SIGUSR2, handle)
        # Directed at this thread: the signal source blocks it here.
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR2)
        for _ in range(int(GUARD / 0.1)):
            if got:
                break
            loop.kick(0.1)
        assert got == [signal.SIGUSR2]
        watcher.close()
        assert watcher.closed
        # Closed means freed: the signal may have a source again.
        loop._core.watch_signal(signal.SIGUSR2, handle).close()
    finally:
        loop.close()


@pytest.mark.parametrize("signo, error", [(True, TypeError), ("2", TypeError), (0, ValueError),
                                          (-1, ValueError), (2**40, ValueError)])
def test_signal_watcher_refuses_what_is_not_a_signal_number(signo, error):
    loop = bgloop.Loop()
    try:
        handle = events.Handle(print, (), loop, None)
        with pytest.raises(error, match="signal number"):
            loop._core.watch_signal(signo, handle)
    finally:
        loop.close()


def test_closing_the_loop_frees_its_signal_watchers():
    loop = bgloop.Loop()
    watcher = loop._core.watch_signal(signal.SIGTERM, events.Handle(print, (), loop, None))
    loop.close()
    assert watcher.closed


CONSOLE_SERVE = """
    import importlib, signal, sys
    import bgloop

    serve_mod = importlib.import_module("bgloop.serve")

    serve_mod._Guard = serve_mod._ConsoleGuard   # the guard Windows uses

    @bgloop.service("db", owner="child")
    async def db(ctx):
        ctx.ready()
        await ctx.stopping.wait()
        print("db stopped", flush=True)

    @bgloop.service("web", owner="child", depends_on=("db",))
    async def web(ctx):
        ctx.ready()
        print("ready", flush=True)
        await ctx.stopping.wait()
        print("web stopped", flush=True)

    code = bgloop.serve()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print("states", sorted(s["state"] for s in bgloop.status().values()), flush=True)
    sys.exit(code)
"""


@posix_only
@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM])
def test_serve_on_the_console_guard_stops_gracefully_and_returns_0(tmp_path, signo):
    proc = spawn_script(tmp_path, CONSOLE_SERVE)
    read_line(proc, "ready")
    proc.send_signal(signo)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.index("web stopped") < out.index("db stopped")
    assert "states ['stopped', 'stopped']" in out
