#!/usr/bin/env python3
"""Build the demo add-on in both forms from this repository.

    examples/blender/build.py [--out DIR] [--wheel bgloop-*.whl]

produces in DIR (default build-blender-demo/):

* ``bgloop_demo-VERSION-extension.zip``: a Blender 4.2+ extension, the
  bgloop abi3 wheel and h11's wheel under ``wheels/`` and listed in
  ``blender_manifest.toml`` (install: Edit > Preferences > Get Extensions >
  Install from Disk);
* ``bgloop_demo-VERSION-legacy.zip``: the same add-on for older Blenders,
  with bgloop and h11 unpacked into ``bgloop_demo/vendor/`` (install:
  Preferences > Add-ons > Install);
* ``wheels/``: the wheels themselves: bgloop's built with ``pip wheel`` from
  the repo unless ``--wheel`` names one; h11's (the add-on's HTTP parser,
  pure Python) fetched once with ``pip download`` and reused after that.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import pathlib
import re
import subprocess
import sys
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
ADDON = HERE / "bgloop_demo"
SOURCES = sorted(p for p in ADDON.glob("*.py"))
H11_SPEC = "h11>=0.14,<1"


def build_wheel(out: pathlib.Path, isolation: bool) -> pathlib.Path:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("bgloop-*.whl"):
        old.unlink()
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)]
    if not isolation:
        cmd.insert(4, "--no-build-isolation")
    print("build.py:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    wheels = sorted(out.glob("bgloop-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"build.py: expected one bgloop wheel in {out}, found {wheels}")
    return retag_cp310(wheels[0])


def retag_cp310(wheel: pathlib.Path) -> pathlib.Path:
    """meson-python tags an abi3 wheel with the building interpreter
    (cp311-abi3 from Python 3.11), but the extension is compiled for the 3.10
    limited API: tag it cp310-abi3 so one wheel installs in every Blender
    from 3.6 LTS (Python 3.10) on."""
    name, version, py, abi, plat = wheel.name[:-4].split("-")
    if abi != "abi3":
        raise SystemExit(f"build.py: {wheel.name} is not an abi3 wheel")
    if py == "cp310":
        return wheel
    target = wheel.with_name(f"{name}-{version}-cp310-abi3-{plat}.whl")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        record_name = next(n for n in src.namelist() if n.endswith(".dist-info/RECORD"))
        wheel_name = record_name[: -len("RECORD")] + "WHEEL"
        meta = src.read(wheel_name).decode()
        meta = meta.replace(f"Tag: {py}-abi3-{plat}", f"Tag: cp310-abi3-{plat}")
        digest = base64.urlsafe_b64encode(hashlib.sha256(meta.encode()).digest()).rstrip(b"=")
        record = [
            f"{wheel_name},sha256={digest.decode()},{len(meta.encode())}"
            if line.startswith(wheel_name + ",") else line
            for line in src.read(record_name).decode().splitlines()
        ]
        for item in src.infolist():
            if item.filename == wheel_name:
                dst.writestr(item, meta)
            elif item.filename == record_name:
                dst.writestr(item, "\n".join(record) + "\n")
            else:
                dst.writestr(item, src.read(item))
    wheel.unlink()
    return target


def h11_wheel(out: pathlib.Path) -> pathlib.Path:
    """h11's pure-Python wheel in OUT, downloaded only if none is there."""
    out.mkdir(parents=True, exist_ok=True)
    wheels = sorted(out.glob("h11-*-py3-none-any.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "-d", str(out), H11_SPEC]
        print("build.py:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        wheels = sorted(out.glob("h11-*-py3-none-any.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"build.py: expected one h11 wheel in {out}, found {wheels}")
    return wheels[0]


def manifest_with_wheels(wheels: list[pathlib.Path]) -> str:
    text = (ADDON / "blender_manifest.toml").read_text()
    listed = ", ".join(f'"./wheels/{w.name}"' for w in wheels)
    text, n = re.subn(r"(?m)^wheels = \[.*\]$", f"wheels = [{listed}]", text)
    if n != 1:
        raise SystemExit("build.py: blender_manifest.toml has no single 'wheels = [...]' line")
    return text


def addon_version() -> str:
    match = re.search(r'(?m)^version = "([^"]+)"', (ADDON / "blender_manifest.toml").read_text())
    return match.group(1)


def build_extension(out: pathlib.Path, wheels: list[pathlib.Path]) -> pathlib.Path:
    target = out / f"bgloop_demo-{addon_version()}-extension.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("blender_manifest.toml", manifest_with_wheels(wheels))
        for src in SOURCES:
            z.write(src, src.name)
        for wheel in wheels:
            z.write(wheel, f"wheels/{wheel.name}")
    return target


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
    parser.add_argument("--wheel", type=pathlib.Path, help="use this bgloop wheel")
    parser.add_argument("--build-isolation", action="store_true",
                        help="let pip fetch meson-python in an isolated env "
                             "(default: use the installed one)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.wheel:
        wheel = args.wheel.resolve()
        if not wheel.is_file():
            raise SystemExit(f"build.py: no such wheel {wheel}")
    else:
        wheel = build_wheel(out / "wheels", args.build_isolation)
    wheels = [wheel, h11_wheel(out / "wheels")]
    for made in (build_extension(out, wheels), build_legacy(out, wheels)):
        print(f"build.py: wrote {made}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
