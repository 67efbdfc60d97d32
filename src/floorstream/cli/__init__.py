"""The ``floorstream`` command. Nothing imports this package; it sits on top of everything.

Each subcommand lives in its own module exposing ``register(subparsers)``; a module adds its
parser and sets ``func`` (``args → exit code``) as the parser default.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from floorstream.errors import ConfigError, FloorstreamError

COMMAND_MODULES: tuple[str, ...] = (
    "floorstream.cli.run",
    "floorstream.cli.check",
    "floorstream.cli.feed",
    "floorstream.cli.quarantine",
    "floorstream.cli.deliveries",
    "floorstream.cli.deliver",
    "floorstream.cli.plugins",
    "floorstream.cli.demo",
    "floorstream.cli.erp",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"floorstream: the configuration is invalid ({len(exc.problems)} problems):",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except FloorstreamError as exc:
        print(f"floorstream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
