"""Where the demo's host, port and token come from.

Environment first (a headless node or a test sets them), then the add-on
preferences (the GUI user), then defaults.  Loopback only unless asked, and
beyond loopback only with Blender's online access allowed.

=========================  ==========================================
``BGLOOP_DEMO_PORT``       TCP port (0 = any free port; the log says which)
``BGLOOP_DEMO_HOST``       bind address; default 127.0.0.1
``BGLOOP_DEMO_TOKEN``      token for POST commands; default: generated and
                           kept in the preferences
``BGLOOP_DEMO_HEADER_TIMEOUT``  seconds a client gets to send a request's
                           headers before a 408; default 10 (httpd.Limits)
=========================  ==========================================
"""

from __future__ import annotations

import ipaddress
import os
import secrets

import bpy

DEFAULT_PORT = 8765
LOOPBACK = "127.0.0.1"

# Token used when there are no preferences to keep it in (bpy module, or
# the add-on not registered in the preferences); stable for the process.
_fallback_token = secrets.token_urlsafe(18)


class SettingsError(ValueError):
    pass


def limits():
    """The HTTP server's limits: httpd.Limits' defaults, the header timeout
    shortened by BGLOOP_DEMO_HEADER_TIMEOUT (tests use it)."""
    from bgloop.httpd import Limits

    text = os.environ.get("BGLOOP_DEMO_HEADER_TIMEOUT", "").strip()
    if not text:
        return Limits()
    try:
        timeout = float(text)
    except ValueError:
        timeout = 0.0
    if not 0 < timeout < 3600:
        raise SettingsError(f"BGLOOP_DEMO_HEADER_TIMEOUT={text!r}: expected seconds in (0, 3600)")
    return Limits(header_timeout=timeout)


def addon_prefs(package: str):
    addon = bpy.context.preferences.addons.get(package)
    return addon.preferences if addon is not None else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:          # a host name: it may resolve to anything
        return False


def online_access() -> bool:
    """Blender's "Allow Online Access" (4.2+; older Blenders have no such
    switch): off until the user allows it or Blender runs with
    ``--online-mode``; off in bpy as a module."""
    return getattr(bpy.app, "online_access", True)


def resolve(package: str) -> tuple[str, int, str]:
    """(host, port, token) for the HTTP service of ``package``."""
    prefs = addon_prefs(package)
    raw_port = os.environ.get("BGLOOP_DEMO_PORT", "").strip()
    if raw_port:
        if not raw_port.isdigit() or int(raw_port) > 65535:
            raise SettingsError(f"BGLOOP_DEMO_PORT={raw_port!r}: expected a port 0..65535")
        port = int(raw_port)
    else:
        port = prefs.port if prefs is not None else DEFAULT_PORT

    host = os.environ.get("BGLOOP_DEMO_HOST", "").strip()
    if not host:
        host = "0.0.0.0" if prefs is not None and prefs.allow_remote else LOOPBACK
    if not is_loopback(host) and not online_access():
        raise SettingsError(f"listening on {host} (beyond loopback) needs Blender's online "
                            "access: Preferences > System > Network > Allow Online Access, "
                            "or --online-mode")

    token = os.environ.get("BGLOOP_DEMO_TOKEN", "").strip()
    if not token:
        if prefs is not None:
            if not prefs.token:
                prefs.token = secrets.token_urlsafe(18)
            token = prefs.token
        else:
            token = _fallback_token
    if len(token) < 8:
        raise SettingsError("the command token must be at least 8 characters long")
    return host, port, token
