"""Loop factories the Python benchmarks compare: stock asyncio (epoll
selector), uvloop (if installed) and bgloop.Loop."""
import asyncio
import selectors


def make_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.SelectorEventLoop(selectors.EpollSelector())
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "bgloop":
        import bgloop

        return bgloop.Loop()
    raise SystemExit(f"unknown loop {name!r} (asyncio, uvloop, bgloop)")


def available() -> list:
    names = ["asyncio", "bgloop"]
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
