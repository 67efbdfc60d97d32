"""``floorstream demo``: a self-contained tour on SQLite."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from floorstream.demo import run_demo


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run a self-contained demo on SQLite")
    parser.add_argument("--dir", type=Path, default=Path("demo"),
                        help="where to write the demo's config and databases (default ./demo)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--serve", action="store_true",
                        help="keep serving the web feed after the run, until Ctrl-C")
    parser.add_argument("--port", type=int, default=0,
                        help="port of the demo's web feed (default: any free port)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_demo(args.dir, args.seconds, sys.stdout, serve=args.serve, port=args.port)
