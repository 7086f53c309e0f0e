"""Every code block of README.md and docs/*.md runs (see snippets.py for the
classification).  Environment (set by scripts/test.d/30-docs.sh):
BGLOOP_DOCS_PYTHON  an interpreter with the bgloop wheel installed (default: this one)
BGLOOP_DOCS_CBUILD  a meson build dir with libbgloop.so (C blocks)
BGLOOP_DOCS_WHEEL   the wheel, reused by the Blender demo scripts
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import snippets as sn  # noqa: E402


def _env() -> sn.Env:
    cbuild = os.environ.get("BGLOOP_DOCS_CBUILD")
    return sn.Env(os.environ.get("BGLOOP_DOCS_PYTHON", sys.executable),
                  Path(cbuild) if cbuild else None, os.environ.get("BGLOOP_DOCS_WHEEL"))


def _units(path: Path) -> list:
    """(id, kind, blocks) per test: a block, or a server with its clients."""
    rel = path.relative_to(sn.REPO).as_posix()
    try:
        blocks = sn.parse(path.read_text(), rel)
    except sn.SnippetError as e:
        return [pytest.param("parse", [e], id=f"{rel}:parse")]
    units = []
    for i, b in enumerate(blocks):
        kind = b.kind
        if kind == "client":
            continue                     # run with its server
        if kind == "server":
            clients = []
            for c in blocks[i + 1:]:
                if c.kind != "client":
                    break
                clients.append(c)
            units.append(pytest.param(kind, [b, *clients], id=b.where))
        else:
            units.append(pytest.param(kind, [b, blocks[:i]], id=b.where))
    for i, b in enumerate(blocks):
        if b.kind == "client" and (i == 0 or blocks[i - 1].kind not in ("server", "client")):
            units.append(pytest.param("orphan client", [b, []], id=b.where))
    return units


ALL = [u for p in sn.doc_files() for u in _units(p)]
_repo_copy: dict = {}


@pytest.fixture
def repo_copy(tmp_path_factory):
    """One temporary copy of the working tree (and a home) for the shell blocks."""
    if "root" not in _repo_copy:
        base = tmp_path_factory.mktemp("repo")
        _repo_copy["root"] = sn.copy_repo(base)
        _repo_copy["home"] = base / "home"
        _repo_copy["home"].mkdir()
    return _repo_copy["root"], _repo_copy["home"]


def run_unit(kind, blocks, env, tmp_path, repo_copy=None):
    if kind == "parse":
        raise blocks[0]
    b = blocks[0]
    if kind is None:
        raise sn.SnippetError(
            f"{b.where}: unclassified {b.lang} block; mark how it runs, e.g. "
            f"<!-- snippet: shell --> or <!-- snippet: not run: why -->")
    if kind == "orphan client":
        raise sn.SnippetError(f"{b.where}: a client block must follow a server block")
    if kind == "not run:":
        if not b.arg:
            raise sn.SnippetError(f"{b.where}: 'not run:' needs a reason")
        pytest.skip(f"not run: {b.arg}")
    if kind == "fragment of":
        return sn.check_fragment(b, sn.REPO / b.arg)
    if kind == "continues":
        earlier = [p for p in blocks[1] if p.lang == b.lang and p.kind not in ("not run:", None)]
        if not earlier:
            raise sn.SnippetError(f"{b.where}: 'continues' but no earlier {b.lang} block")
        chain = [b]
        for p in reversed(earlier):       # an earlier block may continue one itself
            chain.insert(0, p)
            if p.kind != "continues":
                break
        text = "\n".join(p.text for p in chain)
        runner = sn.run_python if b.lang == "python" else sn.run_c
        return runner(b, text, env, tmp_path)
    if kind == "python" and b.lang == "python":
        return sn.run_python(b, b.text, env, tmp_path)
    if kind == "addon" and b.lang == "python":
        return sn.run_addon(b, b.text, env, tmp_path)
    if kind == "c" and b.lang == "c":
        return sn.run_c(b, b.text, env, tmp_path)
    if kind == "shell" and b.lang == "sh":
        root, home = repo_copy
        return sn.run_shell(b, b.text, env, root, home, sn.free_port())
    if kind == "server" and b.lang == "sh":
        root, home = repo_copy
        return sn.run_server(b, blocks[1:], env, root, home)
    raise sn.SnippetError(f"{b.where}: a {b.lang} block cannot be run as {kind!r}")


@pytest.mark.parametrize("kind,blocks", ALL)
def test_snippet(kind, blocks, tmp_path, repo_copy):
    run_unit(kind, blocks, _env(), tmp_path, repo_copy)


def test_docs_have_runnable_blocks():
    kinds = [u.values[0] for u in ALL]
    python = sum(kinds.count(k) for k in ("python", "continues", "addon"))
    assert python >= 4 and kinds.count("c") >= 1 and kinds.count("server") >= 3, kinds


# ---------------------------------------------------------- the harness fails

def _one(md: str) -> tuple:
    units = [u for u in _units_of(md)]
    assert len(units) == 1, units
    return units[0]


def _units_of(md: str):
    blocks = sn.parse(md, "self-test.md")
    for i, b in enumerate(blocks):
        if b.kind == "server":
            yield b.kind, [b, *[c for c in blocks[i + 1:] if c.kind == "client"]]
        elif b.kind != "client":
            yield b.kind, [b, blocks[:i]]


BROKEN = {
    "python error": "```python\nraise SystemExit('boom')\n```\n",
    "python wrong output": "```python\nprint(1 + 1)  # -> 3\n```\n",
    "python unawaited": "```python\nasync def f(): pass\nf()\n```\n",
    "c compile error": "```c\nint main(void) { return undefined_name; }\n```\n",
    "c exit status": "```c\n#include <bgloop/bgloop.h>\nint main(void) { return bgl_strerror(-1) ? 3 : 0; }\n```\n",
    "c fragment without main": "```c\nint x = 1;\n```\n",
    "fragment mismatch": "<!-- snippet: fragment of examples/two_services.c -->\n"
                         "```c\nbgl_loop_new(&loop);\nbgl_loop_run(loop);\n```\n",
    "unmarked shell": "Run:\n\n    echo hi\n",
    "unmarked text": "```\nsome output\n```\n",
    "shell failure": "<!-- snippet: shell -->\n```sh\nfalse\necho unreachable\n```\n",
    "server never listens": "<!-- snippet: server -->\n    exit 0\n\n<!-- snippet: client -->\n"
                            "    curl http://127.0.0.1:8765/\n",
    "not run without reason": "<!-- snippet: not run: -->\n    rm -rf /\n",
    "unknown marker": "<!-- snippet: maybe -->\n```python\nprint(1)\n```\n",
    "addon without register": "<!-- snippet: addon -->\n```python\nimport bgloop\n```\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_snippet_is_reported(name, tmp_path, repo_copy):
    kind, blocks = _one(BROKEN[name])
    with pytest.raises(sn.SnippetError):
        run_unit(kind, blocks, _env(), tmp_path, repo_copy)


def test_dangling_marker_is_reported():
    with pytest.raises(sn.SnippetError, match="not followed by a block"):
        sn.parse("<!-- snippet: shell -->\n\nJust text.\n")


def test_good_snippets_pass(tmp_path, repo_copy):
    """The other side: correct blocks of each kind pass the same checks."""
    md = ("```python\nimport bgloop\nprint(bgloop.run(__import__('asyncio').sleep(0, 'ok')))  # -> ok\n```\n\n"
          "<!-- snippet: continues -->\n```python\nprint('again')  # -> again\n```\n\n"
          "<!-- snippet: fragment of examples/two_services.c -->\n```c\n"
          "bgl_loop_new(&loop);\nbgl_services_new(loop, &mgr);  /* a comment */\n...\n"
          "int code = bgl_loop_run(loop);\n```\n\n"
          "<!-- snippet: shell -->\n    test -f README.md && echo 8765\n")
    for kind, blocks in _units_of(md):
        work = tmp_path / str(blocks[0].line)
        work.mkdir()
        run_unit(kind, blocks, _env(), work, repo_copy)
