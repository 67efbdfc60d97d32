"""The ``floorstream`` command. Nothing imports this package; it sits on top of everything.

Each subcommand lives in its own module exposing ``register(subparsers)``; a module adds its
parser and sets ``func`` (``args → exit code``) as the parser default.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from floorstream.cli.common import ConfigNotFound, add_config_arg, load
from floorstream.errors import ConfigError, FloorstreamError
from floorstream.plugin import Commands
from floorstream.plugins import build_plugins

COMMAND_MODULES: tuple[str, ...] = (
    "floorstream.cli.run",
    "floorstream.cli.check",
    "floorstream.cli.feed",
    "floorstream.cli.quarantine",
    "floorstream.cli.deliveries",
    "floorstream.cli.deliver",
    "floorstream.cli.prune",
    "floorstream.cli.fleet",
    "floorstream.cli.plugins",
    "floorstream.cli.demo",
    "floorstream.cli.web",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="floorstream",
        description="Plant and supply-chain changes → short posts for the teams that act.")
    parser.add_argument("--version", action="version",
                        version=f"floorstream {importlib.import_module('floorstream').__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    _plugin_commands(subparsers)
    return parser


def _plugin_commands(subparsers: Any) -> None:
    """Subcommands of plugins (``floorstream erp …``) through the ``register_commands`` hook.

    A plugin that cannot be loaded must not take the whole command line with it (``check``
    and ``plugins`` are how one finds out what is wrong), so its commands are left out with
    a note on stderr.
    """
    try:
        plugins = build_plugins()
    except FloorstreamError as exc:
        print(f"floorstream: plugin commands unavailable: {exc}", file=sys.stderr)
        return
    commands = Commands(subparsers, load_sources=lambda args: load(args)[0].sources,
                        add_config_argument=add_config_arg)
    for impl in plugins.manager.hook.register_commands.get_hookimpls():
        try:
            impl.function(commands)
        except Exception as exc:
            print(f"floorstream: plugin {impl.plugin_name!r} failed to add its commands: "
                  f"{exc!r}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader went away (`floorstream plugins | head -2`): stop quietly, as the Python
        # docs advise (note on SIGPIPE): output still buffered goes to /dev/null, so the flush
        # at exit raises nothing either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside main, not at interpreter exit
        return code
    except ConfigNotFound as exc:
        print(f"floorstream: {exc.message}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        count = len(exc.problems)
        print(f"floorstream: the configuration is invalid ({count} problem"
              f"{'' if count == 1 else 's'}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except FloorstreamError as exc:
        print(f"floorstream: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # a store that cannot be reached or a URL that is no URL
        cause = getattr(exc, "orig", None) or exc
        lines = str(cause).strip().splitlines() or [type(cause).__name__]
        print(f"floorstream: the store failed: {lines[0]}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:  # e.g. --store oracle://…: the dialect's driver
        print(f"floorstream: {exc}; install it (store drivers: pip install "
              "'floorstream[postgres]' or 'floorstream[mysql]')", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
