"""An add-on for the Blender soak (copied as addons/soak_addon_N/__init__.py):
on register, an echo server and a service that crashes and is restarted,
owned by the add-on's package; on unregister, both stopped and forgotten,
as an add-on must."""

bl_info = {
    "name": "bgloop soak add-on",
    "author": "bgloop developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "category": "System",
}

import asyncio
import socket

import bgloop

# The echo server's port while it listens (read by the soak script).
port = None
crashes = 0


async def _echo(reader, writer):
    try:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
    except asyncio.CancelledError:
        pass    # the owner's stop: hang up
    finally:
        writer.close()


async def _echo_service(ctx):
    global port
    server = ctx.resources.push(await asyncio.start_server(_echo, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]

    def forget_port():
        global port
        port = None
    ctx.resources.push(forget_port)
    ctx.ready()
    await ctx.stopping.wait()


async def _crasher(ctx):
    global crashes
    a, b = socket.socketpair()
    ctx.resources.push(a)
    ctx.resources.push(b)
    asyncio.get_running_loop().create_task(asyncio.sleep(3600))
    ctx.ready()
    await asyncio.sleep(0.05)
    crashes += 1
    raise RuntimeError("deliberate crash")


def register():
    owner = __package__
    bgloop.ensure_loop()
    bgloop.service(f"{owner}.echo", owner=owner, stop_timeout=1.0)(_echo_service)
    bgloop.service(f"{owner}.crasher", owner=owner, restart="on-failure", restart_delay=0.01,
                   restart_max_delay=0.02, stop_timeout=0.5, start_limit_burst=10000,
                   start_limit_interval=1.0)(_crasher)
    bgloop.start_services(owner=owner)


def unregister():
    bgloop.stop_services(owner=__package__)
    bgloop.forget_services(owner=__package__)
