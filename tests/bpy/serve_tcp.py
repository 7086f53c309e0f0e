"""bpy + bgloop, as a module: a service with a TCP server under serve().

    python serve_tcp.py

Prints ``PORT <n>`` once the server listens on 127.0.0.1; each connection
gets ``<bpy version> <line it sent>`` back.  SIGTERM stops it: exit 0.
"""

import asyncio
import sys

import bpy
import bgloop


async def answer(reader, writer):
    line = await reader.readline()
    writer.write(f"{bpy.app.version_string} ".encode() + line)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


@bgloop.service("tcp", owner="bpy_matrix")
async def tcp(ctx):
    server = ctx.resources.push(await asyncio.start_server(answer, "127.0.0.1", 0))
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    ctx.ready()
    await ctx.stopping.wait()


sys.exit(bgloop.serve())
