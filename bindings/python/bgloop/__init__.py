"""bgloop: an asyncio event loop on the libbgloop C core, for Blender add-ons.

    import bgloop
    bgloop.run(main())                  # like asyncio.run(), on a bgloop.Loop
    loop = bgloop.ensure_loop()         # the process-wide shared loop
    bgloop.kick(timeout=0.0, budget=0.005)   # one bounded step of it

See the README for the service API (bgloop.service, start_services, serve).
"""
# NOTE for the services layer (pyservices): add your re-exports in the
# marked block below, e.g.
#   from .services import service, start_services, stop_services, status
#   from .serve import serve
# and extend __all__.  Keep the loop block as it is.

from ._bgloop import version as _core_version

__version__ = "0.1.0"

# ---- loop (pyloop) ----
from .loop import Loop, new_event_loop, add_busy_check
from .runner import run
from .shared import ensure_loop, kick, stats

__all__ = [
    "__version__",
    "Loop",
    "new_event_loop",
    "run",
    "ensure_loop",
    "kick",
    "stats",
    "add_busy_check",
]
# ---- end loop ----

# ---- services (pyservices) ----
from .services import (  # noqa: E402
    ServiceError,
    forget_services,
    service,
    start_services,
    status,
    stop_services,
    stop_services_async,
)
from .serve import serve  # noqa: E402

__all__ += ["service", "start_services", "stop_services", "stop_services_async", "status",
            "serve", "forget_services", "ServiceError"]
# ---- end services ----

# ---- Blender / threads (blender) ----
# run_on_main: worker threads hand calls to the loop's (Blender's main) thread.
from .mainthread import run_on_main  # noqa: E402

__all__ += ["run_on_main"]

# Inside Blender, the first bgloop copy imported is the one every add-on
# gets (vendored copies hand over to it): see bgloop.blender._adopt_package.
import sys as _sys  # noqa: E402

if "bpy" in _sys.modules:
    from .blender import _adopt_package

    _adopt_package(__name__)
    del _adopt_package
del _sys
# ---- end blender ----
