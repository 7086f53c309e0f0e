"""Keep a background Blender serving bgloop services until told to stop.

    blender --background [file.blend] [--addons ADDON,...] \
            --python examples/blender/keep_alive.py

Add-ons enabled in the user's preferences (or with --addons) have registered
their services by the time this script runs; scripts given before it with
--python may register more.  bgloop.serve() starts them all, sleeps in the
kernel while idle, stops them gracefully on SIGTERM or the first Ctrl+C, and
its return value becomes Blender's exit status (0: clean stop, 1: a service
failed for good).
"""

import sys

import bgloop

sys.exit(bgloop.serve())
