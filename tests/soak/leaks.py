"""Deliberate leaks, one per cycle, to show that a soak catches each kind
(``--leak KIND``)."""

from __future__ import annotations

import asyncio
import socket
import threading

KINDS = ("fd", "task", "thread", "rss")


def leak(kind: str | None, keep: list, loop: asyncio.AbstractEventLoop) -> None:
    if kind == "fd":
        keep.append(socket.socket())
    elif kind == "task":
        keep.append(loop.create_task(asyncio.sleep(3600)))
    elif kind == "thread":
        ev = threading.Event()
        threading.Thread(target=ev.wait, daemon=True).start()
        keep.append(ev)
    elif kind == "rss":
        keep.append(bytearray(2 * 1024 * 1024))
        keep[-1][::4096] = b"x" * len(keep[-1][::4096])   # touch every page
