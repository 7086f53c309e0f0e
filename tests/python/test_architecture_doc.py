"""docs/architecture.md names files and functions: every one must exist.

The page is the map of where each rule lives; a renamed function or a moved
file would make it lie.  Names are taken from its `code spans`: paths (with a
slash) must be files of the source tree, `name()` spans must be defined
there - C functions by a definition line, Python functions by `def`,
extension methods (`Core.x`) by their entry in the method table.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
SOURCES = ("lib", "include", "bindings/python/src", "bindings/python/bgloop")

pytestmark = pytest.mark.skipif(not DOC.is_file(), reason="needs the source tree")


def spans() -> list[str]:
    return re.findall(r"`([^`\n]+)`", DOC.read_text())


@functools.lru_cache(maxsize=None)
def texts(suffixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p.read_text() for d in SOURCES for p in sorted((ROOT / d).rglob("*"))
                 if p.suffix in suffixes)


def c_defines(name: str) -> bool:
    # A definition starts at column 0 (return type) and is not a prototype.
    pattern = re.compile(rf"^[A-Za-z_].*\b{re.escape(name)}\([^;\n]*$", re.M)
    return any(pattern.search(t) for t in texts((".c",)))


def py_defines(name: str) -> bool:
    pattern = re.compile(rf"^\s*(async )?def {re.escape(name)}\(", re.M)
    return any(pattern.search(t) for t in texts((".py",)))


def core_method(name: str) -> bool:
    return f'{{"{name}",' in (ROOT / "bindings/python/src/core.c").read_text()


def test_the_page_names_files_and_functions():
    found = spans()
    assert len(found) > 40, "the page lost its names"
    paths = [s for s in found if "/" in s and " " not in s and "(" not in s]
    calls = [s[:-2] for s in found if re.fullmatch(r"[A-Za-z_][\w.]*\(\)", s)]
    assert len(paths) > 15 and len(calls) > 20
    missing_files = [p for p in paths if not (ROOT / p).is_file()]
    assert not missing_files, f"docs/architecture.md names missing files: {missing_files}"


@pytest.mark.parametrize("call", sorted({s[:-2] for s in spans()
                                          if re.fullmatch(r"[A-Za-z_][\w.]*\(\)", s)}))
def test_each_named_function_exists(call: str):
    *owner, name = call.split(".")
    if owner == ["Core"]:
        assert core_method(name), f"Core.{name} is not a method of the extension"
    elif name.startswith(("bgl_", "bglpy_", "core_")) or name == "wait_step":
        assert c_defines(name), f"{name}() is not defined in lib/ or the extension"
    elif name.startswith("PyErr_"):
        assert any(name in t for t in texts((".c",)))
    else:
        assert py_defines(name), f"{call}() is not defined in the bgloop package"


def test_the_check_can_fail():
    assert not c_defines("bgl_loop_no_such_step")
    assert not py_defines("no_such_function")
    assert not core_method("no_such_method")
