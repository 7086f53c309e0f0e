"""Command line: ``python -m bgloop serve MODULE[:ATTR]`` and ``python -m bgloop env``.

``serve`` imports MODULE (which registers services with ``@bgloop.service``)
- a dotted module name, or a path to a ``.py`` file;
with ``:ATTR`` it then calls ``MODULE.ATTR()`` - a setup function that may
register more services - and serves them all until SIGINT/SIGTERM.  The exit
status is serve()'s: 0 on a signal or when every service ended well, 1 when a
service failed for good or the stop abandoned something, 128 + the signal
number when a second signal cut the stop short, 2 for a usage or import
error.

``env`` prints every ``BGLOOP_*`` setting with its current value; ``--version``
prints the version.

``ls`` lists this user's listening bgloop services (from their discovery
files, see :mod:`bgloop.discovery`); ``status [NAME]`` prints the record of
each one named NAME (a service name, ``owner/service`` or a pid; all when
omitted) and whether its port accepts a connection: exit status 0 when every
one found does, 1 when none is found or one does not answer.  Both exit with
status 2 when the runtime directory is not private (it is not read then).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from types import ModuleType


class _UsageError(Exception):
    """A bad command line: printed without a traceback, exit status 2."""


def _import_file(path: str) -> ModuleType:
    """Import a script by path under its file name (not as __main__, so its
    own ``if __name__ == "__main__"`` block stays out of the way)."""
    file = os.path.abspath(path)
    if not os.path.isfile(file):
        raise _UsageError(f"bgloop serve: no such file {path!r}")
    name = os.path.splitext(os.path.basename(file))[0]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise _UsageError(f"bgloop serve: cannot import {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, os.path.dirname(file))  # its siblings import as usual
    spec.loader.exec_module(module)
    return module


def _load(target: str) -> None:
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise _UsageError(f"bgloop serve: {target!r}: expected MODULE or MODULE:ATTR")
    if module_name.endswith(".py") or os.sep in module_name:
        module = _import_file(module_name)
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise _UsageError(f"bgloop serve: no module named {module_name!r} "
                                  f"(sys.path[0] is {sys.path[0]!r})") from None
            raise
    if attr:
        try:
            setup = getattr(module, attr)
        except AttributeError:
            raise _UsageError(f"bgloop serve: module {module_name!r} has no attribute {attr!r}") \
                from None
        if not callable(setup):
            raise _UsageError(f"bgloop serve: {target} is not callable")
        setup()


def _cmd_serve(args: argparse.Namespace) -> int:
    import bgloop

    _load(args.target)
    if not bgloop.status():
        print(f"bgloop serve: {args.target} registered no service", file=sys.stderr)
        return 2
    return bgloop.serve(signals=True)


def _cmd_env(args: argparse.Namespace) -> int:
    from . import config

    status = 0
    for name, (reader, text) in config.ENV_VARS.items():
        try:
            value = reader()
            if name == "BGLOOP_LOG_LEVEL":
                value = logging.getLevelName(value)
        except config.ConfigError as exc:
            value, status = f"ERROR: {exc}", 2
        print(f"{name:28} {value!s:10}  {text}")
    return status


def _cmd_ls(args: argparse.Namespace) -> int:
    import json
    import time

    from . import discovery

    try:
        records = discovery.Directory().records()
    except discovery.DiscoveryError as exc:
        print(f"bgloop ls: {exc}", file=sys.stderr)
        return 2
    now = time.time()
    if args.json:
        print(json.dumps([{**r.to_json(), "uptime": round(now - r.started, 3)}
                          for r in records], indent=1))
    else:
        print(discovery.table(records, now))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    import json
    import time

    from . import discovery

    directory = discovery.Directory()
    try:
        records = directory.find(args.name) if args.name else directory.records()
    except discovery.DiscoveryError as exc:
        print(f"bgloop status: {exc}", file=sys.stderr)
        return 2
    if not records:
        what = f"named {args.name!r}" if args.name else "listening"
        print(f"bgloop status: no live bgloop service {what} in {str(directory.path)!r}",
              file=sys.stderr)
        return 1
    now = time.time()
    failures = 0
    out = []
    for record in records:
        error = discovery.probe(record, args.timeout)
        failures += error is not None
        out.append({**record.to_json(), "uptime": round(now - record.started, 3),
                    "answering": error is None, "error": error})
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for i, entry in enumerate(out):
            if i:
                print()
            for key in ("service", "owner", "pid", "host", "port", "token_file"):
                print(f"{key + ':':12}{entry[key] if entry[key] is not None else '-'}")
            print(f"{'uptime:':12}{discovery.duration(entry['uptime'])}")
            print(f"{'answering:':12}" + ("yes" if entry["answering"]
                                           else f"no ({entry['error']})"))
    return 1 if failures else 0


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds > 0")
    return value


def _bgloop_version() -> str:
    from . import _bgloop
    return _bgloop.version()


def main(argv: list[str] | None = None) -> int:
    from . import config
    from .services import ServiceError

    parser = argparse.ArgumentParser(prog="python -m bgloop",
                                     description="bgloop command line")
    parser.add_argument("--version", action="version", version=f"bgloop {_bgloop_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="import MODULE and serve its services")
    p_serve.add_argument("target", metavar="MODULE[:ATTR]",
                         help="dotted module name or path to a .py file, optionally "
                              "with :ATTR, a setup function to call after import")
    p_serve.set_defaults(func=_cmd_serve)
    p_env = sub.add_parser("env", help="show the BGLOOP_* settings")
    p_env.set_defaults(func=_cmd_env)
    p_ls = sub.add_parser("ls", help="list this user's listening bgloop services")
    p_ls.add_argument("--json", action="store_true", help="print JSON records")
    p_ls.set_defaults(func=_cmd_ls)
    p_status = sub.add_parser("status", help="show a listening bgloop service and whether "
                                             "its port answers")
    p_status.add_argument("name", nargs="?", metavar="NAME",
                          help="service name, owner/service or pid (default: all)")
    p_status.add_argument("--json", action="store_true", help="print JSON records")
    p_status.add_argument("--timeout", type=_timeout, default=2.0, metavar="SECONDS",
                          help="how long a connection attempt may take (default 2)")
    p_status.set_defaults(func=_cmd_status)
    args = parser.parse_args(argv)
    if args.command == "env":
        return args.func(args)  # reports bad values itself, one per line

    try:
        level = config.log_level()
    except config.ConfigError as exc:
        print(f"bgloop: {exc}", file=sys.stderr)
        return 2
    # stderr at that level, journald-aware (priority prefixes, no timestamps).
    from . import log
    log.setup_process(level)
    try:
        return args.func(args)
    except (_UsageError, config.ConfigError, ServiceError) as exc:
        # Configuration and dependency mistakes: say what, no traceback.
        text = str(exc)
        prefix = f"bgloop {args.command}: "
        print(text if text.startswith(prefix) else prefix + text, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
