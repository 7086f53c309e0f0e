"""bgloop: an asyncio event loop on the libbgloop C core, for Blender add-ons.

    import bgloop
    bgloop.run(main())                  # like asyncio.run(), on a bgloop.Loop
    loop = bgloop.ensure_loop()         # the process-wide shared loop
    bgloop.kick(timeout=0.0, budget=0.005)   # one bounded step of it

See the README for the service API (bgloop.service, start_services, serve).
"""
import sys as _sys

from ._bgloop import version as _version
from .channels import (
    ChannelClosed,
    ChannelError,
    ChannelOverflow,
    NoResponder,
    channel,
)
from .health import health, health_service
from .loop import Loop, add_busy_check, new_event_loop, remove_busy_check
from .mainthread import run_on_main
from .runner import run
from .serve import serve
from .services import (
    ServiceError,
    forget_services,
    service,
    start_services,
    status,
    stop_services,
    stop_services_async,
)
from .shared import ensure_loop, kick, stats
from .statehooks import on_state_change

# meson.build's project version, compiled into the extension.
__version__ = _version()

__all__ = [
    "__version__",
    "Loop",
    "new_event_loop",
    "run",
    "ensure_loop",
    "kick",
    "stats",
    "add_busy_check",
    "remove_busy_check",
    "service",
    "start_services",
    "stop_services",
    "stop_services_async",
    "status",
    "serve",
    "forget_services",
    "ServiceError",
    "run_on_main",
    "on_state_change",
    "health",
    "health_service",
    "channel",
    "ChannelError",
    "ChannelClosed",
    "ChannelOverflow",
    "NoResponder",
]

# Inside Blender, the first bgloop copy imported is the one every add-on
# gets (vendored copies hand over to it): see bgloop.blender._adopt_package.
if "bpy" in _sys.modules:
    from .blender import _adopt_package

    _adopt_package(__name__)
    del _adopt_package
del _sys
