"""Loop factories the Python benchmarks compare: stock asyncio (epoll
selector), uvloop (if installed), bgloop.Loop and bgloop.Loop with asyncio's
Python socket transports (bgloop-py, BGLOOP_PY_TRANSPORTS=1)."""
import asyncio
import os
import selectors


def make_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.SelectorEventLoop(selectors.EpollSelector())
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name in ("bgloop", "bgloop-py"):
        import bgloop

        os.environ["BGLOOP_PY_TRANSPORTS"] = "1" if name == "bgloop-py" else "0"
        return bgloop.Loop()
    raise SystemExit(f"unknown loop {name!r} (asyncio, uvloop, bgloop, bgloop-py)")


def available() -> list:
    names = ["asyncio", "bgloop", "bgloop-py"]
    try:
        import uvloop  # noqa: F401

        names.insert(1, "uvloop")
    except ImportError:
        pass
    return names


def serve_until_killed(loop: asyncio.AbstractEventLoop, coro) -> None:
    """Start the server `coro` makes, say "ready" (the benchmark waits for
    it) and run until SIGINT/SIGTERM ends the process."""
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(coro)
    print("ready", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        loop.close()
