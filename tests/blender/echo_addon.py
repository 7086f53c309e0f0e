"""Template of a second, minimal add-on for the sharing tests.

blenderlib.make_echo_addon() writes it as NAME/__init__.py with the import
line below replaced: ``import bgloop`` (the shared package) or
``from ._vendor import bgloop`` (the add-on's own vendored copy).  It runs
a line-echo TCP service owned by the add-on and prints its port.
"""

bl_info = {"name": "bgloop test echo add-on", "blender": (3, 4, 0), "category": "System"}

import asyncio  # noqa: E402

import bgloop  # BGLOOP_IMPORT

NAME = __package__ + ".echo"


async def echo_service(ctx):
    async def handle(reader, writer):
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = ctx.resources.push(await asyncio.start_server(handle, "127.0.0.1", 0))
    print(f"{__package__}: echo on {server.sockets[0].getsockname()[1]}", flush=True)
    ctx.ready()
    await ctx.stopping.wait()


def register():
    bgloop.ensure_loop()
    bgloop.service(NAME, owner=__package__, stop_timeout=2.0)(echo_service)
    bgloop.start_services(owner=__package__)


def unregister():
    bgloop.stop_services(owner=__package__)
    bgloop.forget_services(owner=__package__)
