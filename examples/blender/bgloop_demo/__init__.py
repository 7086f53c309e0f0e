"""bgloop demo add-on: an HTTP/JSON service inside Blender on the bgloop loop.

GET  /, /health  ``{"ok": true}`` while the service is up
GET  /scene      scene information (objects, frame, file)
GET  /status     bgloop services and loop statistics
POST /objects    add an object (needs ``Authorization: Bearer <token>``)

Works as a Blender 4.2+ extension (``blender_manifest.toml``, bgloop comes
from the bundled wheel) and as a legacy add-on (``bl_info``; bgloop comes
from the ``vendor`` folder that ``python3 examples/blender/build.py`` fills,
or from anywhere on ``sys.path``).
"""

bl_info = {
    "name": "bgloop demo: HTTP/JSON service",
    "author": "bgloop developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "View3D > Sidebar > bgloop",
    "description": "Serves scene info and object commands over HTTP on the shared bgloop loop",
    "category": "System",
}

import importlib
import os
import sys

# bgloop and h11 come from the extension's wheels, from anywhere on sys.path,
# or else from the legacy zip's vendor/ folder (h11 imports itself by its
# top-level name, so vendor/ goes on sys.path rather than being a package).
_vendor = os.path.join(os.path.dirname(__file__), "vendor")
for _name in ("bgloop", "h11"):
    try:
        importlib.import_module(_name)
    except ImportError:
        if not os.path.isdir(_vendor):
            raise
        if _vendor not in sys.path:
            sys.path.append(_vendor)
        importlib.import_module(_name)

# "Reload Scripts" re-executes this file in the same module dict; reload
# the submodules too (dependencies first) so edited code takes effect.
_reloading = "ui" in globals()
from . import api, settings, service, ui  # noqa: E402

if _reloading:
    for _module in (api, settings, service, ui):
        importlib.reload(_module)


def register():
    ui.register()
    service.register(owner=__package__)


def unregister():
    service.unregister(owner=__package__)
    ui.unregister()
