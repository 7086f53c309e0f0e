"""Find the code blocks of the Markdown documentation and run them.

A block is a fenced block (```python, ```c, ```sh ...) or an indented block
(four spaces after a blank line: shell commands).  An HTML comment
``<!-- snippet: KIND -->`` on the lines just before a block says how it is
run; without one, the language decides:

python   (default) a script in a fresh interpreter with the installed bgloop;
         ``print(x)  # -> VALUE`` lines must print VALUE, in order
c        (default when it has ``int main(``) a program compiled with
         -Wall -Wextra -Werror, linked against libbgloop and run
continues    the previous python/c block of the file, then this one
addon        python: an add-on module (package ``my_addon``): register(),
             kick the loop until its services run, unregister(), and the
             services are gone and their ports free
fragment of PATH   every line (comments and indentation aside) is a line of
             PATH, consecutive except across a ``...`` line
shell        shell commands, in a temporary copy of the repository
server       shell commands that start a server; the ``client`` blocks that
             follow run against it, then SIGTERM must end it with status 0
client       shell commands run while the previous server block runs; curl
             fails on an HTTP error
not run: WHY the block is not run, for the reason given

Any other block - an unmarked shell or text block, a C block without main()
- is an error, so no block goes untested by accident.  The documented port
8765 is replaced by a free port in everything that runs (and the servers get
it as BGLOOP_DEMO_PORT), so the tests do not depend on 8765 being free.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC_PORT = "8765"
KINDS = ("python", "c", "continues", "addon", "fragment of", "shell", "server", "client",
         "not run:")
LANGS = {"python": "python", "py": "python", "c": "c", "sh": "sh", "bash": "sh",
         "console": "sh", "shell": "sh"}


class SnippetError(AssertionError):
    pass


@dataclasses.dataclass
class Block:
    path: str          # for messages: file name
    line: int          # 1-based line of the first code line
    lang: str          # python, c, sh or text
    text: str
    marker: str | None  # what follows "snippet:" in the marker, or None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def kind(self) -> str | None:
        m = self.marker
        if m is not None:
            for k in KINDS:
                if m == k or m.startswith(k + " ") or (k.endswith(":") and m.startswith(k)):
                    return k
            return None
        if self.lang == "python":
            return "python"
        if self.lang == "c" and re.search(r"\bint\s+main\s*\(", self.text):
            return "c"
        return None

    @property
    def arg(self) -> str:
        k = self.kind or ""
        return (self.marker or "")[len(k):].strip()


MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")


def parse(text: str, path: str = "<doc>") -> list[Block]:
    """The code blocks of a Markdown text, each with its marker."""
    lines = text.split("\n")
    blocks: list[Block] = []
    marker: tuple[int, str] | None = None
    i = 0
    prev_blank = True
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        if m:
            if marker is not None:
                raise SnippetError(f"{path}:{marker[0]}: snippet marker not followed by a block")
            marker = (i + 1, m.group(1))
            i += 1
            prev_blank = True
            continue
        f = FENCE.match(line)
        if f:
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            if j == len(lines):
                raise SnippetError(f"{path}:{i + 1}: unclosed code fence")
            lang = LANGS.get(f.group(1).lower(), "text")
            blocks.append(Block(path, start + 1, lang, "\n".join(lines[start:j]) + "\n",
                                marker[1] if marker else None))
            marker = None
            i = j + 1
            prev_blank = False
            continue
        if prev_blank and line.startswith("    ") and line.strip():
            j = i
            body = []
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                body.append(lines[j][4:])
                j += 1
            while body and not body[-1].strip():
                body.pop()
            blocks.append(Block(path, i + 1, "sh", "\n".join(body) + "\n",
                                marker[1] if marker else None))
            marker = None
            i += len(body)
            prev_blank = False
            continue
        if line.strip() and marker is not None:
            raise SnippetError(f"{path}:{marker[0]}: snippet marker not followed by a block")
        prev_blank = not line.strip()
        i += 1
    if marker is not None:
        raise SnippetError(f"{path}:{marker[0]}: snippet marker not followed by a block")
    return blocks


def doc_files() -> list[Path]:
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


# ---------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclasses.dataclass
class Env:
    python: str                 # interpreter with the installed bgloop
    cbuild: Path | None         # meson build dir of libbgloop
    wheel: str | None = None    # the wheel, for demo.sh (BGLOOP_BLENDER_WHEEL)

    def environ(self, home: Path | None = None, port: int | None = None) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "BGLOOP_", "VIRTUAL_ENV", "PYTEST"))}
        bindir = str(Path(self.python).parent)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        env["PYTHON"] = self.python            # scripts/demo, demo.sh: use this interpreter
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if self.wheel:
            env["BGLOOP_BLENDER_WHEEL"] = self.wheel
        if home is not None:
            env["HOME"] = str(home)
        if port is not None:
            env["BGLOOP_DEMO_PORT"] = str(port)
        return env


def _fail(block: Block, what: str, proc=None, out: str = "") -> SnippetError:
    msg = f"{block.where}: {what}"
    if proc is not None:
        msg += f"\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    elif out:
        msg += f"\n--- output\n{out}"
    return SnippetError(msg)


def expectations(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"print\(.*#\s*->\s*(.*)$", text, re.M)]


def check_expectations(block: Block, text: str, stdout: str) -> None:
    out = [line.strip() for line in stdout.splitlines()]
    pos = 0
    for want in expectations(text):
        while pos < len(out) and out[pos] != want:
            pos += 1
        if pos == len(out):
            raise _fail(block, f"the output has no line {want!r} (in order)", out=stdout)
        pos += 1


BAD_STDERR = ("Traceback", "was never awaited", "Task was destroyed", "Task exception was never")


def run_python(block: Block, text: str, env: Env, tmp: Path) -> str:
    port = free_port()
    script = tmp / "snippet.py"
    script.write_text(text.replace(DOC_PORT, str(port)))
    try:
        proc = subprocess.run([env.python, str(script)], cwd=tmp, env=env.environ(tmp, port),
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as e:
        raise _fail(block, "still running after 60 s", out=f"{e.stdout or ''}{e.stderr or ''}")
    if proc.returncode != 0:
        raise _fail(block, f"exit status {proc.returncode}", proc)
    bad = [b for b in BAD_STDERR if b in proc.stderr]
    if bad:
        raise _fail(block, f"stderr reports {bad}", proc)
    check_expectations(block, text, proc.stdout)
    return proc.stdout


ADDON_DRIVER = r"""
import importlib, sys, time, socket
import bgloop
sys.path.insert(0, sys.argv[1])
addon = importlib.import_module("my_addon")
addon.register()

def mine():
    return {n: s for n, s in bgloop.status().items() if s.get("owner") == "my_addon"}

deadline = time.monotonic() + 10
while not (mine() and all(s["state"] == "running" for s in mine().values())):
    if time.monotonic() > deadline:
        sys.exit(f"the add-on's services did not reach 'running': {mine()}")
    bgloop.kick(timeout=0.05)
print("running:", sorted(mine()))
addon.unregister()
if mine():
    sys.exit(f"services left after unregister(): {mine()}")
with socket.socket() as s:
    s.bind(("127.0.0.1", int(sys.argv[2])))   # the port is free again
print("unregistered")
"""


def run_addon(block: Block, text: str, env: Env, tmp: Path) -> str:
    port = free_port()
    pkg = tmp / "addons" / "my_addon"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(text.replace(DOC_PORT, str(port)))
    (tmp / "driver.py").write_text(ADDON_DRIVER)
    proc = subprocess.run([env.python, str(tmp / "driver.py"), str(tmp / "addons"), str(port)],
                          cwd=tmp, env=env.environ(tmp, port), capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0 or "unregistered" not in proc.stdout:
        raise _fail(block, f"add-on cycle failed (exit {proc.returncode})", proc)
    bad = [b for b in BAD_STDERR if b in proc.stderr]
    if bad:
        raise _fail(block, f"stderr reports {bad}", proc)
    return proc.stdout


def libbgloop_dir(env: Env) -> Path:
    if env.cbuild is None:
        raise SnippetError("no libbgloop build (BGLOOP_DOCS_CBUILD)")
    found = sorted(env.cbuild.rglob("libbgloop.so"))
    if not found:
        raise SnippetError(f"no libbgloop.so under {env.cbuild}")
    return found[0].parent


def run_c(block: Block, text: str, env: Env, tmp: Path) -> str:
    src = tmp / "snippet.c"
    src.write_text(text)
    libdir = libbgloop_dir(env)
    cc = os.environ.get("CC", "cc")
    proc = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(REPO / "include"),
                           "-o", str(tmp / "snippet"), str(src), "-L", str(libdir), "-lbgloop",
                           f"-Wl,-rpath,{libdir}"], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise _fail(block, "does not compile", proc)
    proc = subprocess.run([str(tmp / "snippet")], cwd=tmp, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise _fail(block, f"exit status {proc.returncode}", proc)
    return proc.stdout


def _code_lines(text: str) -> list[str | None]:
    """Lines without comments and spacing; None marks a '...' gap."""
    out: list[str | None] = []
    text = re.sub(r"/\*(?!\s*\.\.\.\s*\*/).*?\*/", "", text, flags=re.S)
    for line in text.splitlines():
        s = line.strip()
        if s in ("...", "/* ... */", "// ...", "# ..."):
            out.append(None)
            continue
        s = re.sub(r"\s+(//|#).*$", "", s) if not s.startswith("#include") else s
        s = re.sub(r"\s+", " ", s).strip()
        if s and not s.startswith("//"):
            out.append(s)
    return out


def check_fragment(block: Block, source: Path) -> None:
    if not source.is_file():
        raise _fail(block, f"fragment of a missing file {source}")
    have = [s for s in _code_lines(source.read_text()) if s is not None]
    want = _code_lines(block.text)
    pos = 0
    gap = True          # the first line may be anywhere
    for s in want:
        if s is None:
            gap = True
            continue
        if gap:
            try:
                pos = have.index(s, pos)
            except ValueError:
                raise _fail(block, f"line not in {source.name} (after the previous one): {s!r}")
        elif pos >= len(have) or have[pos] != s:
            raise _fail(block, f"line is not the next line of {source.name}: {s!r} "
                               f"(the file has {have[pos] if pos < len(have) else 'nothing'!r})")
        pos += 1
        gap = False


def copy_repo(dest: Path) -> Path:
    """The working tree (tracked and unignored files) in dest/repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    root = dest / "repo"
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
    return root


CURL = 'curl() { command curl -sS --fail-with-body --max-time 10 "$@"; echo; }\n'


def run_shell(block: Block, text: str, env: Env, cwd: Path, home: Path, port: int,
              timeout: float = 300, prelude: str = "") -> str:
    script = cwd / f".snippet-{block.line}.sh"
    script.write_text("set -eo pipefail\n" + prelude + text.replace(DOC_PORT, str(port)))
    try:
        proc = subprocess.run(["bash", str(script)], cwd=cwd, env=env.environ(home, port),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise _fail(block, f"timed out after {timeout} s", out=str(e.stdout or ""))
    if proc.returncode != 0:
        raise _fail(block, f"exit status {proc.returncode}", proc)
    return proc.stdout


def run_server(block: Block, clients: list[Block], env: Env, cwd: Path, home: Path,
               start_timeout: float = 150) -> str:
    if not clients:
        raise _fail(block, "a server block needs a client block after it")
    port = free_port()
    log = cwd / f".server-{block.line}.log"
    # bash -c runs a single command by exec, so the signal reaches the
    # command itself, as when it is typed in a terminal.
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", "-c", block.text.replace(DOC_PORT, str(port))],
                                cwd=cwd, env=env.environ(home, port),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise _fail(block, f"the server exited ({proc.returncode}) before listening",
                            out=log.read_text())
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise _fail(block, f"nothing listens on 127.0.0.1:{port}", out=log.read_text())
            time.sleep(0.2)
        outputs = [run_shell(c, c.text, env, cwd, home, port, timeout=60, prelude=CURL)
                   for c in clients]
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise _fail(block, "SIGTERM did not stop the server within 30 s", out=log.read_text())
        if rc != 0:
            raise _fail(block, f"the server exited {rc} on SIGTERM", out=log.read_text())
        return log.read_text() + "".join(outputs)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)      # whatever the server left behind
        except ProcessLookupError:
            pass
        proc.wait()
