#!/usr/bin/env python3
"""Build the demo add-on from this repository: Blender 4.2+ extensions, one
zip per platform, and a legacy add-on zip.

    examples/blender/build.py [--out DIR] [--all-platforms | --wheel WHEEL...]
                              [--blender-ext PATH]

bgloop wheels: this machine's, built with ``pip wheel`` (default); every
platform of PLATFORMS, from ``scripts/wheels --reuse`` (``--all-platforms``);
or the ``--wheel`` files given.  h11's pure-Python wheel (the add-on's HTTP
parser) is fetched once with ``pip download`` and kept in DIR/wheels.

Writes into DIR (default build-blender-demo/):

* ``bgloop_demo-VERSION-PLATFORM.zip`` (e.g. ``..._linux_x64.zip``,
  ``..._windows_x64.zip``), one per
  platform with a bgloop wheel: Blender's own extension packager
  (``blender_ext.py build --split-platforms``, then ``validate``) with
  ``platforms`` and ``wheels`` of ``blender_manifest.toml`` filled in.  The
  packager ships with Blender 4.2+, and with bpy from PyPI: it is found in
  the ``bpy`` importable by this Python, or given as ``--blender-ext``.
  Without it only the legacy zip is made, and build.py says so.  Install:
  Edit > Preferences > Get Extensions > Install from Disk.
* ``bgloop_demo-VERSION-legacy.zip``: the add-on for Blender 3.x, with
  this machine's bgloop and h11 unpacked into ``bgloop_demo/vendor/``
  (install: Preferences > Add-ons > Install).
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
ADDON = HERE / "bgloop_demo"
SOURCES = sorted(p for p in ADDON.glob("*.py"))
H11_SPEC = "h11>=0.14,<1"

# Blender platform -> (scripts/wheels target, platform tags of its wheels).
PLATFORMS = {
    "linux-x64": ("linux-x86_64", r"(many|musl)?linux(_\d+_\d+|\d+)?_x86_64"),
    "linux-arm64": ("linux-aarch64", r"(many|musl)?linux(_\d+_\d+|\d+)?_aarch64"),
    "macos-arm64": ("macos-arm64", r"macosx_\d+_\d+_(arm64|universal2)"),
    "macos-x64": ("macos-x86_64", r"macosx_\d+_\d+_(x86_64|universal2)"),
    "windows-x64": ("windows-x64", r"win_amd64"),
}


def fail(message: str) -> SystemExit:
    return SystemExit(f"build.py: {message}")


def platforms_of(wheel: pathlib.Path) -> list[str]:
    """The Blender platforms a wheel's platform tags serve (universal2: both
    macOS ones), in PLATFORMS order."""
    parts = wheel.name[:-len(".whl")].split("-")
    if not wheel.name.endswith(".whl") or len(parts) not in (5, 6):
        raise fail(f"{wheel.name} is not a wheel file name")
    tags = parts[-1].split(".")
    return [name for name, (_, rx) in PLATFORMS.items()
            if any(re.fullmatch(rx, tag) for tag in tags)]


def host_platform() -> str:
    target = sysconfig.get_platform()
    for name, (wheels_target, rx) in PLATFORMS.items():
        if wheels_target == target or re.fullmatch(rx, re.sub(r"[-.]", "_", target)):
            return name
    raise fail(f"this machine ({target}) is none of the platforms {', '.join(PLATFORMS)}")


def run(cmd: list) -> subprocess.CompletedProcess:
    print("build.py:", " ".join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.PIPE, text=True)


def host_wheel(out: pathlib.Path, isolation: bool) -> pathlib.Path:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("bgloop-*.whl"):
        old.unlink()
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, REPO]
    if not isolation:
        cmd.insert(4, "--no-build-isolation")
    run(cmd)
    wheels = sorted(out.glob("bgloop-*.whl"))
    if len(wheels) != 1:
        raise fail(f"expected one bgloop wheel in {out}, found {wheels}")
    return wheels[0]


def platform_wheels() -> list[pathlib.Path]:
    """One wheel per platform of PLATFORMS, from scripts/wheels (which keeps
    a wheel built from the same source tree)."""
    targets = [target for target, _ in PLATFORMS.values()]
    res = run([REPO / "scripts" / "wheels", "--reuse", *targets])
    return [(REPO / line).resolve() for line in res.stdout.split()]


def h11_wheel(out: pathlib.Path) -> pathlib.Path:
    """h11's pure-Python wheel in OUT, downloaded only if none is there."""
    out.mkdir(parents=True, exist_ok=True)
    wheels = sorted(out.glob("h11-*-py3-none-any.whl"))
    if not wheels:
        run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-deps", "--only-binary=:all:", "-d", out, H11_SPEC])
        wheels = sorted(out.glob("h11-*-py3-none-any.whl"))
    if len(wheels) != 1:
        raise fail(f"expected one h11 wheel in {out}, found {wheels}")
    return wheels[0]


def by_platform(wheels: list[pathlib.Path]) -> dict[str, pathlib.Path]:
    """{Blender platform: its bgloop wheel}, in PLATFORMS order; one wheel
    per platform."""
    found: dict[str, pathlib.Path] = {}
    for wheel in wheels:
        if not wheel.is_file():
            raise fail(f"no such wheel {wheel}")
        names = platforms_of(wheel)
        if not names:
            raise fail(f"{wheel.name} is for none of the platforms {', '.join(PLATFORMS)}")
        for name in names:
            if name in found:
                raise fail(f"two wheels for {name}: {found[name].name}, {wheel.name}")
            found[name] = wheel
    return {name: found[name] for name in PLATFORMS if name in found}


def manifest_text(platforms: list[str], wheels: list[pathlib.Path]) -> str:
    text = (ADDON / "blender_manifest.toml").read_text()
    for key, values in (("platforms", platforms), ("wheels", [f"./wheels/{w.name}" for w in wheels])):
        listed = ", ".join(f'"{v}"' for v in values)
        text, n = re.subn(rf"(?m)^{key} = \[.*\]$", f"{key} = [{listed}]", text)
        if n != 1:
            raise fail(f"blender_manifest.toml has no single '{key} = [...]' line")
    return text


def addon_version() -> str:
    match = re.search(r'(?m)^version = "([^"]+)"', (ADDON / "blender_manifest.toml").read_text())
    return match.group(1)


def find_blender_ext() -> pathlib.Path | None:
    """Blender's extension command line in the bpy this Python can import."""
    spec = importlib.util.find_spec("bpy")
    for root in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(pathlib.Path(root).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    return None


def build_extensions(out: pathlib.Path, cli: pathlib.Path, platforms: dict[str, pathlib.Path],
                     h11: pathlib.Path) -> list[pathlib.Path]:
    """Blender's ``build --split-platforms`` over a staged source directory
    holding every wheel: it writes one zip per platform whose manifest
    names that platform and that platform's wheels only."""
    stage = out / "extension-source"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "wheels").mkdir(parents=True)
    wheels = [*dict.fromkeys(platforms.values()), h11]
    (stage / "blender_manifest.toml").write_text(manifest_text(list(platforms), wheels))
    for src in SOURCES:
        shutil.copy2(src, stage / src.name)
    for wheel in wheels:
        shutil.copy2(wheel, stage / "wheels" / wheel.name)
    prefix = f"bgloop_demo-{addon_version()}-"
    for old in out.glob(f"{prefix}*.zip"):
        if not old.name.endswith("-legacy.zip"):
            old.unlink()
    run([sys.executable, cli, "build", "--source-dir", stage, "--output-dir", out,
         "--split-platforms"])
    made = [out / f"{prefix}{name.replace('-', '_')}.zip" for name in platforms]
    for zip_path in made:
        if not zip_path.is_file():
            raise fail(f"Blender's packager did not write {zip_path.name}")
        run([sys.executable, cli, "validate", zip_path])
    return made


def build_legacy(out: pathlib.Path, wheels: list[pathlib.Path]) -> pathlib.Path:
    target = out / f"bgloop_demo-{addon_version()}-legacy.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for src in SOURCES:
            z.write(src, f"bgloop_demo/{src.name}")
        for wheel in wheels:
            package = wheel.name.split("-")[0]
            with zipfile.ZipFile(wheel) as w:
                # The package itself, and a third-party one's license inside
                # it; the rest of .dist-info is pip's business.
                for info in w.infolist():
                    name = info.filename
                    if info.is_dir():
                        continue
                    if name.startswith(f"{package}/"):
                        z.writestr(f"bgloop_demo/vendor/{name}", w.read(info))
                    elif (package != "bgloop" and ".dist-info/" in name
                          and "LICENSE" in name.rsplit("/", 1)[-1].upper()):
                        dest = f"{package}/{name.rsplit('/', 1)[-1]}"
                        z.writestr(f"bgloop_demo/vendor/{dest}", w.read(info))
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "build-blender-demo")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--wheel", type=pathlib.Path, action="append", default=[],
                       help="bundle this bgloop wheel (repeat: one per platform)")
    which.add_argument("--all-platforms", action="store_true",
                       help="bundle a wheel for every platform, from scripts/wheels")
    parser.add_argument("--blender-ext", type=pathlib.Path,
                        help="Blender's extension packager (.../bl_pkg/cli/blender_ext.py)")
    parser.add_argument("--build-isolation", action="store_true",
                        help="let pip fetch meson-python in an isolated env "
                             "(default: use the installed one)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.wheel:
        wheels = [w.resolve() for w in args.wheel]
    elif args.all_platforms:
        wheels = platform_wheels()
    else:
        wheels = [host_wheel(out / "wheels", args.build_isolation)]
    platforms = by_platform(wheels)
    if args.all_platforms and list(platforms) != list(PLATFORMS):
        raise fail(f"scripts/wheels gave wheels for {', '.join(platforms)}, "
                   f"not for every one of {', '.join(PLATFORMS)}")
    h11 = h11_wheel(out / "wheels")
    cli = args.blender_ext or find_blender_ext()
    if args.blender_ext and not cli.is_file():
        raise fail(f"no such file {cli}")
    made = build_extensions(out, cli, platforms, h11) if cli else []
    here = host_platform()
    if here in platforms:
        made.append(build_legacy(out, [platforms[here], h11]))
    else:
        print(f"build.py: no legacy zip: no wheel for this machine ({here})", flush=True)
    for path in made:
        print(f"build.py: wrote {path}", flush=True)
    if not cli:
        print("build.py: no extension zips: Blender's extension packager was not found "
              "(give --blender-ext .../bl_pkg/cli/blender_ext.py, or run with a Python "
              "that has bpy 4.2+ from PyPI)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
