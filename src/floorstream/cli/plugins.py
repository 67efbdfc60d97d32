"""``floorstream plugins``: every plugin, its distribution, version and what it registers."""

from __future__ import annotations

import argparse
import json
from typing import Any

from floorstream.plugins import build_plugins


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("plugins", help="list installed plugins")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    infos = build_plugins().describe()
    if args.json:
        print(json.dumps([vars(i) for i in infos], indent=2))
        return 0
    for info in infos:
        print(f"{info.name}  ({info.distribution} {info.version})")
        for kind, names in sorted(info.registers.items()):
            print(f"    {kind}s: {', '.join(names)}")
    return 0
