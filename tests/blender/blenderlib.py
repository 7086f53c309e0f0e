"""Helpers for the Blender tests: build artifacts, start Blender, talk HTTP.

Every Blender process gets a fresh HOME, config and scripts directory under
the test's tmp_path, so nothing leaks between tests or from the developer's
own Blender setup.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
OUT = HERE / "_out"
HARNESS = HERE / "harness" / "gui_harness.py"
KEEP_ALIVE = REPO / "examples" / "blender" / "keep_alive.py"
BUILD_PY = REPO / "examples" / "blender" / "build.py"
TOKEN = "test-token-0123456789"
BLENDER = shutil.which("blender")
XVFB_RUN = shutil.which("xvfb-run")


# ---- artifacts ---------------------------------------------------------------

def load_build_py():
    """examples/blender/build.py as a module (its PLATFORMS and helpers)."""
    spec = importlib.util.spec_from_file_location("bgloop_demo_build", BUILD_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare() -> dict:
    """Build the wheels (scripts/wheels, every platform of build.py) and the
    add-on zips once, Blender's packager from the bpy 4.5 venv making the
    per-platform extensions; install the x86_64 wheel into a plain
    directory for PYTHONPATH."""
    build_py = load_build_py()
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("bgloop_demo-*.zip"):
        old.unlink()
    cli = bpy_cli(bpy_venv("4.5"))
    subprocess.run([sys.executable, str(BUILD_PY), "--out", str(OUT), "--all-platforms",
                    "--blender-ext", str(cli)], check=True)
    listed = subprocess.run([str(REPO / "scripts" / "wheels"), "--reuse",
                             *(target for target, _ in build_py.PLATFORMS.values())],
                            cwd=REPO, check=True, stdout=subprocess.PIPE, text=True).stdout.split()
    wheels = build_py.by_platform([REPO / line for line in listed])
    site = OUT / "site"
    shutil.rmtree(site, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--target", str(site), str(wheels["linux-x64"])], check=True)
    version = build_py.addon_version()
    extensions = {name: OUT / f"bgloop_demo-{version}-{name.replace('-', '_')}.zip"
                  for name in build_py.PLATFORMS}
    return {"wheel": wheels["linux-x64"], "wheels": wheels, "site": site, "cli": cli,
            "platforms": list(build_py.PLATFORMS),
            "legacy": OUT / f"bgloop_demo-{version}-legacy.zip",
            "extensions": extensions, "extension": extensions["linux-x64"]}


def install_addon(zip_path: pathlib.Path, scripts: pathlib.Path) -> None:
    addons = scripts / "addons"
    addons.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(addons)


def make_echo_addon(name: str, scripts: pathlib.Path, vendor_from: pathlib.Path | None = None,
                    protocol: int | None = None):
    """Write the echo_addon.py template as add-on NAME; with ``vendor_from``
    (a site dir) it gets and uses its own copy of bgloop (NAME._vendor.bgloop),
    whose registry PROTOCOL is changed to ``protocol`` if given."""
    dst = scripts / "addons" / name
    dst.mkdir(parents=True)
    text = (HERE / "echo_addon.py").read_text()
    if vendor_from is not None:
        text = text.replace("import bgloop  # BGLOOP_IMPORT", "from ._vendor import bgloop")
        (dst / "_vendor").mkdir()
        (dst / "_vendor" / "__init__.py").write_text("")
        shutil.copytree(vendor_from / "bgloop", dst / "_vendor" / "bgloop",
                        ignore=shutil.ignore_patterns("__pycache__"))
        if protocol is not None:
            mod = dst / "_vendor" / "bgloop" / "blender.py"
            src, n = re.subn(r"\nPROTOCOL = \d+\n", f"\nPROTOCOL = {protocol}\n", mod.read_text())
            assert n == 1, f"no PROTOCOL line in {mod}"
            mod.write_text(src)
    (dst / "__init__.py").write_text(text)
    return dst



# ---- bpy from PyPI -----------------------------------------------------------

# Blender as a Python module, by Blender series: (CPython, pinned release).
# Each bpy wheel supports exactly one CPython minor version.
BPY_RELEASES = {
    "4.2": ("3.11", "4.2.23"),
    "4.5": ("3.11", "4.5.15"),
    "5.0": ("3.11", "5.0.1"),
    "5.3": ("3.13", "5.3.0"),
}
# Downloads and bpy-only venvs live outside the work tree so a fresh clone
# (CI) reuses them: each wheel is about 350 MB, a venv about 1 GB.
BPY_CACHE = pathlib.Path(os.environ.get("BGLOOP_BPY_CACHE")
                         or pathlib.Path.home() / ".cache" / "bgloop" / "bpy")
PYENV_VERSIONS = pathlib.Path(os.environ.get("PYENV_ROOT", pathlib.Path.home() / ".pyenv")) / "versions"


class BpyInstallError(RuntimeError):
    """A bpy release could not be installed; the message says why."""


def find_python(minor: str) -> pathlib.Path:
    """The newest pyenv CPython MINOR (e.g. "3.11")."""
    found = sorted(PYENV_VERSIONS.glob(f"{minor}.*/bin/python"),
                   key=lambda p: tuple(int(x) for x in p.parent.parent.name.split(".")
                                       if x.isdigit()))
    if not found:
        raise BpyInstallError(f"no CPython {minor} under {PYENV_VERSIONS} (pyenv install {minor})")
    return found[-1]


def _pip(python, *args, timeout=900) -> None:
    cmd = [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise BpyInstallError(f"{' '.join(cmd)} failed (exit {res.returncode}):\n"
                              f"{res.stdout[-2000:]}{res.stderr[-3000:]}")


def bpy_venv(series: str) -> pathlib.Path:
    """The python of a venv with bpy SERIES (a key of BPY_RELEASES) and
    nothing else, made once: the wheels are downloaded into BPY_CACHE/wheels
    and installed from there without an index.  Raises BpyInstallError
    naming the reason if it cannot be made."""
    minor, version = BPY_RELEASES[series]
    spec = f"bpy=={version}"
    venv = BPY_CACHE / "venvs" / f"{version}-py{minor}"
    py = venv / "bin" / "python"
    stamp = venv / "bgloop-bpy-spec"
    if stamp.is_file() and stamp.read_text().strip() == spec and py.exists():
        return py
    base = find_python(minor)
    wheels = BPY_CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if not list(wheels.glob(f"bpy-{version}-*.whl")):
        # bpy's dependencies come along (numpy, requests, ...).
        _pip(base, "download", "--only-binary=:all:", "-d", wheels, spec)
    tmp = venv.with_name(venv.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([str(base), "-m", "venv", str(tmp)], check=True, timeout=120)
    # --no-compile: bytecode for bpy's thousands of scripts is written as
    # they are imported instead of all up front (minutes on a busy machine).
    _pip(tmp / "bin" / "python", "install", "--no-compile", "--no-index", "--find-links", wheels,
         spec)
    tmp.rename(venv)
    res = subprocess.run([str(py), "-c", "import bpy; print(bpy.app.version_string)"],
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0 or not res.stdout.startswith(version):
        raise BpyInstallError(f"{spec} installed in {venv} but does not import as {version} "
                              f"(exit {res.returncode}):\n{res.stdout[-500:]}{res.stderr[-2000:]}")
    stamp.write_text(spec + "\n")
    print(f"\n{spec} ready in {venv} ({time.monotonic() - t0:.0f}s)", flush=True)
    return py


def bpy_cli(python: pathlib.Path) -> pathlib.Path:
    """Blender's extension command line (``blender_ext.py``) in a bpy venv."""
    found = sorted(python.parent.parent.glob(
        "lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if len(found) != 1:
        raise BpyInstallError(f"expected one blender_ext.py in the venv of {python}, found {found}")
    return found[0]


# ---- processes ---------------------------------------------------------------

def blender_env(tmp: pathlib.Path, *, pythonpath=None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BGLOOP_", "BLENDER_", "PYTHON"))}
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               BLENDER_USER_CONFIG=str(tmp / "config"),
               BLENDER_USER_SCRIPTS=str(tmp / "scripts"),
               BGLOOP_DEMO_PORT="0", BGLOOP_DEMO_TOKEN=TOKEN, BGLOOP_LOG_LEVEL="INFO",
               LIBGL_ALWAYS_SOFTWARE="1", PYTHONUNBUFFERED="1")
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Proc:
    """A child process whose output goes to a file we can search."""

    def __init__(self, argv, env, log_path: pathlib.Path, cwd=None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        # Own session: signals reach Blender itself, and cleanup reaches
        # xvfb-run's children too.
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.output())
            if m:
                return m
            if self.popen.poll() is not None:
                m = rx.search(self.output())
                if m:
                    return m
                raise AssertionError(f"process exited ({self.popen.returncode}) before "
                                     f"{pattern!r} appeared:\n{self.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} did not appear within {timeout}s:\n{self.tail()}")

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-n:])

    def signal(self, signo: int) -> None:
        self.popen.send_signal(signo)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self) -> None:
        """Kill whatever is left (test cleanup): the whole process group."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(10)
        self._log.close()


def start_background(tmp, *, args=(), python=(), env=None, name="blender") -> Proc:
    argv = [BLENDER, "--background", "--factory-startup", "--python-exit-code", "3", *args]
    for script in python:
        argv += ["--python", str(script)]
    return Proc(argv, env, tmp / f"{name}.log")


def enable_in_saved_preferences(tmp, env, module: str) -> None:
    """Enable an add-on and save the user preferences, in a throw-away
    background Blender, so the next Blender started with `env` loads it."""
    save = start_background(
        tmp, env=env, name="save-prefs",
        args=["--python-expr",
              f"import addon_utils, bpy; addon_utils.enable({module!r}, default_set=True); "
              "bpy.ops.wm.save_userpref()"])
    try:
        assert save.wait(60) == 0, save.tail()
    finally:
        save.stop()


def start_gui(tmp, *, env=None, name="blender-gui", factory=True) -> Proc:
    """GUI Blender under Xvfb with the harness; ``factory=False`` loads the
    user preferences (and the add-ons enabled there) from the temp config."""
    argv = [XVFB_RUN, "-a", "-s", "-screen 0 1280x800x24", BLENDER,
            *(["--factory-startup"] if factory else []), "--enable-event-simulate",
            "--python", str(HARNESS)]
    return Proc(argv, env, tmp / f"{name}.log")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (clock ticks -> seconds)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- clients -------------------------------------------------------------------

def request(port: int, method: str, path: str, body=None, *, token=None, headers=None,
         timeout: float = 10.0):
    """One request; returns (status, parsed JSON body or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw
    finally:
        conn.close()


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nobody listens on it any more: a server may bind it again at once
    (SO_REUSEADDR, as servers do, so closed connections in TIME_WAIT from
    the server's side do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Harness:
    """pytest's end of harness/gui_harness.py."""

    def __init__(self, port: int):
        self.port = port

    def __call__(self, eval=None, exec=None, timeout: float = 60.0):
        req = json.dumps({"eval": eval, "exec": exec}).encode() + b"\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(req)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise AssertionError("harness closed the connection without answering")
                data += chunk
        resp = json.loads(data)
        if not resp["ok"]:
            raise AssertionError("in Blender:\n" + resp["error"])
        return resp["result"]

    def wait_until(self, expr: str, timeout: float = 30.0, interval: float = 0.1):
        deadline = time.monotonic() + timeout
        while True:
            value = self(eval=expr)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr!r} still false after {timeout}s")
            time.sleep(interval)
