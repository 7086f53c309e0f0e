"""Preferences, the View3D sidebar panel (tab "bgloop") and its operators.

The panel lists every bgloop service in the process - not only this
add-on's - because they all share one loop: state, owner, restarts and
last error, plus the loop statistics and start/stop buttons per owner.
"""

# No "from __future__ import annotations" here: Blender reads the
# bpy.props annotations of the preferences class as real objects.
import secrets

import bpy

import bgloop

from . import service

STATE_ICONS = {"running": "CHECKMARK", "starting": "SORTTIME", "stopping": "SORTTIME",
               "failed": "ERROR", "exited": "PANEL_CLOSE", "stopped": "PAUSE"}

# Number of completed panel draws; the GUI test checks it moves.
draw_count = 0


class BGLOOP_DEMO_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    port: bpy.props.IntProperty(
        name="Port", default=8765, min=0, max=65535,
        description="TCP port of the HTTP/JSON service (0: any free port). "
                    "BGLOOP_DEMO_PORT overrides it")
    allow_remote: bpy.props.BoolProperty(
        name="Allow remote connections", default=False,
        description="Listen on all interfaces instead of 127.0.0.1 only")
    token: bpy.props.StringProperty(
        name="Command token", default="",
        description="Clients must send 'Authorization: Bearer <token>' to change the "
                    "scene. Generated on first start; BGLOOP_DEMO_TOKEN overrides it")

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "port")
        col.prop(self, "allow_remote")
        row = col.row(align=True)
        row.prop(self, "token")
        row.operator(BGLOOP_DEMO_OT_new_token.bl_idname, text="", icon="FILE_REFRESH")
        col.label(text="Changes apply when the service is restarted (Stop, then Start).")


class BGLOOP_DEMO_OT_new_token(bpy.types.Operator):
    """Generate a new command token (restart the service to apply it)"""
    bl_idname = "bgloop_demo.new_token"
    bl_label = "New token"

    def execute(self, context):
        prefs = context.preferences.addons[__package__].preferences
        prefs.token = secrets.token_urlsafe(18)
        return {"FINISHED"}


class _OwnerOperator:
    """Acts on the services of the ``owner`` property (all when empty)."""

    owner: bpy.props.StringProperty()

    def execute(self, context):
        try:
            self.act(self.owner or None)
        except Exception as exc:       # unknown dependency, cycle...
            self.report({"ERROR"}, f"bgloop: {exc}")
            return {"CANCELLED"}
        return {"FINISHED"}


class BGLOOP_DEMO_OT_start(_OwnerOperator, bpy.types.Operator):
    """Start the services of this owner"""
    bl_idname = "bgloop_demo.start_services"
    bl_label = "Start"

    def act(self, owner):
        bgloop.start_services(owner=owner)


class BGLOOP_DEMO_OT_stop(_OwnerOperator, bpy.types.Operator):
    """Stop the services of this owner (they can be started again)"""
    bl_idname = "bgloop_demo.stop_services"
    bl_label = "Stop"

    def act(self, owner):
        bgloop.stop_services(owner=owner)


class BGLOOP_DEMO_PT_services(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "bgloop"
    bl_label = "bgloop services"

    def draw(self, context):
        global draw_count
        layout = self.layout
        if service.address:
            layout.label(text=f"http://{service.address[0]}:{service.address[1]}", icon="URL")
        by_owner: dict[str, list] = {}
        for name, st in sorted(bgloop.status().items()):
            by_owner.setdefault(st.get("owner") or "", []).append((name, st))
        if not by_owner:
            layout.label(text="No services registered")
        for owner, items in by_owner.items():
            box = layout.box()
            head = box.row()
            head.label(text=owner or "(no owner)", icon="PLUGIN")
            op = head.operator(BGLOOP_DEMO_OT_start.bl_idname, text="", icon="PLAY")
            op.owner = owner
            op = head.operator(BGLOOP_DEMO_OT_stop.bl_idname, text="", icon="SNAP_FACE")
            op.owner = owner
            for name, st in items:
                col = box.column(align=True)
                col.label(text=name, icon=STATE_ICONS.get(st["state"], "DOT"))
                col.label(text=f"    {st['state']}, restarts: {st.get('restarts', 0)}")
                if st.get("error"):
                    col.label(text=f"    error: {st['error']}", icon="ERROR")
        stats_box = layout.box()
        stats_box.label(text="Loop", icon="TIME")
        for key, value in dict(bgloop.stats()).items():
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            stats_box.label(text=f"{key}: {text}")
        blender_layer = getattr(bgloop, "blender", None)
        if blender_layer is not None:
            info = blender_layer.info()
            drv = layout.box()
            drv.label(text="Driver (one per Blender)", icon="DRIVER")
            b = info["budget"]
            budget = "no limit" if b is None else f"{b * 1000:.1f} ms"
            drv.label(text=f"ticks: {info['ticks']}, budget: {budget}")
            drv.label(text=f"longest tick: {info['longest_tick'] * 1000:.1f} ms")
            if info["errors"]:
                drv.label(text=f"errors: {info['errors']} ({info['last_error']})", icon="ERROR")
        draw_count += 1


CLASSES = (BGLOOP_DEMO_AddonPreferences, BGLOOP_DEMO_OT_new_token, BGLOOP_DEMO_OT_start,
           BGLOOP_DEMO_OT_stop, BGLOOP_DEMO_PT_services)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
