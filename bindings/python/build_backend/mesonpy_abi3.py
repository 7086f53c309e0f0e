"""PEP 517 build backend: meson-python, with the stable-ABI wheel tagged for
the oldest CPython it supports.

meson-python tags a limited-API wheel with the CPython that builds it
(``cp311-abi3`` when 3.11 runs the build) and leaves the minimum to the
project.  bgloop._bgloop is compiled for the limited API of the oldest Python
in ``requires-python`` (``limited_api`` in bindings/python/meson.build), so
the wheel carries that version as its Python tag (``cp310-abi3``), whichever
CPython 3.10+ builds it.  Builds without the stable ABI (PyPy, or
``-Dpython.allow_limited_api=false``) keep meson-python's tags.
"""
import pathlib
import sys

import mesonpy
import mesonpy._tags
from mesonpy import (build_editable, build_sdist, build_wheel,  # noqa: F401
                     get_requires_for_build_editable, get_requires_for_build_sdist,
                     get_requires_for_build_wheel)
from packaging.specifiers import SpecifierSet

try:
    import tomllib
except ImportError:  # Python 3.10: meson-python depends on tomli there
    import tomli as tomllib


def _oldest_python_tag() -> str:
    pyproject = tomllib.loads(pathlib.Path('pyproject.toml').read_text(encoding='utf-8'))
    spec = SpecifierSet(pyproject['project']['requires-python'])
    lows = [s.version for s in spec if s.operator == '>=']
    if not lows:
        raise mesonpy.ConfigError('requires-python needs a lower bound (>=3.X) for the abi3 tag')
    major, minor = (int(p) for p in lows[0].split('.')[:2])
    return f'cp{major}{minor}'


class _StableABITag(mesonpy._tags.Tag):
    def __init__(self, interpreter=None, abi=None, platform=None):
        if interpreter is None and abi == 'abi3' and sys.implementation.name == 'cpython':
            interpreter = _oldest_python_tag()
        super().__init__(interpreter, abi, platform)


mesonpy._tags.Tag = _StableABITag
