"""The demo's JSON API: what the HTTP routes do with Blender data.

Handlers run as coroutines on the bgloop loop, which Blender drives on its
main thread, so they may touch ``bpy`` directly.  ``POST /objects`` with
``"via": "thread"`` shows the other documented path: the mesh is computed on
a worker thread, which hands the ``bpy`` part to the main thread with
``bgloop.run_on_main`` (never ``bpy.app.timers.register`` off the main thread).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import threading

import bpy

from bgloop.httpd import HTTPError, Request, Response

KINDS = ("cube", "plane", "empty", "ico")
MAX_NAME = 63                   # Blender's ID name limit


def _vec3(value, field):
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) for v in value)):
        raise HTTPError(422, f"{field!r} must be a list of 3 finite numbers")
    return tuple(float(v) for v in value)


def _mesh_data(kind: str, size: float):
    """Vertices and faces of a primitive; pure Python, safe on any thread."""
    h = size / 2.0
    if kind == "plane":
        return [(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], [(0, 1, 2, 3)]
    if kind == "cube":
        verts = [(x, y, z) for x in (-h, h) for y in (-h, h) for z in (-h, h)]
        faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
        return verts, faces
    # "ico": an octahedron keeps it small but clearly 3-D
    verts = [(h, 0, 0), (-h, 0, 0), (0, h, 0), (0, -h, 0), (0, 0, h), (0, 0, -h)]
    faces = [(0, 2, 4), (2, 1, 4), (1, 3, 4), (3, 0, 4), (2, 0, 5), (1, 2, 5), (3, 1, 5), (0, 3, 5)]
    return verts, faces


def _link_object(name, kind, location, mesh):
    """The bpy part: create and link the object.  Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("bpy data was about to be changed off the main thread")
    data = None
    if kind != "empty":
        verts, faces = mesh
        data = bpy.data.meshes.new(name)
        data.from_pydata(verts, [], faces)
        data.update()
    obj = bpy.data.objects.new(name, data)
    obj.location = location
    scene = bpy.context.scene
    scene.collection.objects.link(obj)
    return {"name": obj.name, "type": obj.type, "scene": scene.name,
            "objects": len(scene.objects), "thread": threading.current_thread().name}


MAX_OBJECTS = 1000     # one answer is built in one main-thread callback: keep it short


def scene_info() -> dict:
    scene = bpy.context.scene
    objects = scene.objects
    return {
        "blender": bpy.app.version_string,
        "background": bpy.app.background,
        "file": bpy.data.filepath,
        "scene": scene.name,
        "frame": scene.frame_current,
        "object_count": len(objects),
        "objects": [{"name": o.name, "type": o.type, "location": list(o.location)}
                    for _, o in zip(range(MAX_OBJECTS), objects)],
    }


class Api:
    """Routes; ``token`` guards every command that changes the scene."""

    def __init__(self, token: str, status_fn):
        self._token = token
        self._status = status_fn
        self.loads = 0                  # load_post events seen (see the service)

    def _check_token(self, req: Request) -> None:
        given = req.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not value:
            value = req.headers.get("x-bgloop-token", "")
        if not value or not hmac.compare_digest(value.strip().encode(), self._token.encode()):
            raise HTTPError(401, "missing or wrong token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})

    async def __call__(self, req: Request) -> Response:
        route = ROUTES.get(req.path)
        if route is None:
            raise HTTPError(404, f"no such resource {req.path!r}")
        # HEAD is GET without the body, which httpd leaves out.
        name = route.get("GET" if req.method == "HEAD" else req.method)
        if name is None:
            allowed = [*route, "HEAD"] if "GET" in route else list(route)
            raise HTTPError(405, f"{req.method} not allowed on {req.path}",
                            headers={"Allow": ", ".join(allowed)})
        return await getattr(self, name)(req)

    async def get_health(self, req):
        return Response(200, {"ok": True})

    async def get_scene(self, req):
        info = scene_info()
        info["loads"] = self.loads
        return Response(200, info)

    async def get_status(self, req):
        return Response(200, self._status())

    async def post_objects(self, req):
        self._check_token(req)
        cmd = req.json()
        if not isinstance(cmd, dict):
            raise HTTPError(422, "body must be a JSON object")
        unknown = set(cmd) - {"kind", "name", "location", "size", "via"}
        if unknown:
            raise HTTPError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
        kind = cmd.get("kind", "cube")
        if kind not in KINDS:
            raise HTTPError(422, f"'kind' must be one of {', '.join(KINDS)}")
        name = cmd.get("name", f"bgloop_{kind}")
        if not isinstance(name, str) or not name or len(name) > MAX_NAME or "\0" in name:
            raise HTTPError(422, f"'name' must be a non-empty string of at most {MAX_NAME} chars")
        location = _vec3(cmd.get("location", [0, 0, 0]), "location")
        size = cmd.get("size", 1.0)
        if (not isinstance(size, (int, float)) or isinstance(size, bool)
                or not math.isfinite(size) or not 0 < size <= 1e4):
            raise HTTPError(422, "'size' must be a number in (0, 10000]")
        via = cmd.get("via", "loop")
        if via not in ("loop", "thread"):
            raise HTTPError(422, "'via' must be 'loop' or 'thread'")

        if via == "loop":
            mesh = _mesh_data(kind, size) if kind != "empty" else None
            result = _link_object(name, kind, location, mesh)
        else:
            import bgloop

            def worker():
                mesh = _mesh_data(kind, size) if kind != "empty" else None
                # Hand the bpy part to the main thread and wait for it here.
                return bgloop.run_on_main(_link_object, name, kind, location, mesh).result(10)

            result = await asyncio.get_running_loop().run_in_executor(None, worker)
        return Response(201, result)


ROUTES = {
    "/": {"GET": "get_health"},
    "/health": {"GET": "get_health"},
    "/scene": {"GET": "get_scene"},
    "/status": {"GET": "get_status"},
    "/objects": {"POST": "post_objects"},
}
