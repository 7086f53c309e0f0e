"""Template of an add-on for the channel tests.

test_channels.py writes it as NAME/__init__.py with the import line below
kept (the shared bgloop) or replaced by ``from ._vendor import bgloop`` (the
add-on's own copy).  Registered, it subscribes to ``blend.news`` (what it
gets goes to RECEIVED), answers requests on ``NAME.ask`` and runs one idle
service; unregistered, it only stops and forgets its owner, which must end
its subscription and responder.
"""

bl_info = {"name": "bgloop channel test add-on", "blender": (3, 4, 0), "category": "System"}

import bgloop  # BGLOOP_IMPORT

RECEIVED = []
HANDLES = {}


async def idle(ctx):
    ctx.ready()
    await ctx.stopping.wait()


def register():
    bgloop.ensure_loop()
    HANDLES["news"] = news = bgloop.channel("blend.news", owner=__package__)
    news.subscribe(RECEIVED.append)
    HANDLES["ask"] = ask = bgloop.channel(__package__ + ".ask", owner=__package__)
    ask.respond(lambda msg: {"echo": msg, "by": __package__})
    bgloop.service(__package__ + ".idle", owner=__package__, stop_timeout=2.0)(idle)
    bgloop.start_services(owner=__package__)


def unregister():
    bgloop.stop_services(owner=__package__)
    bgloop.forget_services(owner=__package__)
