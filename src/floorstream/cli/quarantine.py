"""``floorstream quarantine [list|show ID|stats|replay|discard]``: input that could not be
used, and why; replay and discard are in :mod:`floorstream.cli.quarantine_ops`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from floorstream.cli import quarantine_ops
from floorstream.cli.common import add_store_args, open_store
from floorstream.cli.feed import positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "quarantine", help="list, show, count, replay or discard quarantined input")
    add_store_args(parser)
    parser.add_argument("action", nargs="?", choices=["list", "show", *quarantine_ops.ACTIONS],
                        default="list")
    parser.add_argument("id", nargs="?", type=int)
    quarantine_ops.add_arguments(parser)
    parser.add_argument("--source")
    parser.add_argument("--limit", "-n", type=positive_int, default=50)
    parser.add_argument("--raw", action="store_true", help="show: write the raw bytes only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action in quarantine_ops.ACTIONS:
        return quarantine_ops.run(args)
    store = open_store(args)
    if args.action == "list":
        rows = store.quarantined(source=args.source, limit=args.limit)
        if not rows:
            print("quarantine is empty")
        for row in rows:
            when = row.received_at.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{row.id:>6}  {when}  {row.source:<16}  {len(row.raw):>7} B  {row.error}")
        return 0
    if args.id is None:
        print("quarantine show needs an ID (see quarantine list)", file=sys.stderr)
        return 2
    item = store.quarantined_item(args.id)
    if item is None:
        print(f"no quarantined item {args.id}", file=sys.stderr)
        return 1
    if args.raw:
        sys.stdout.buffer.write(item.raw)
        return 0
    print(f"id:        {item.id}\nsource:    {item.source}\nposition:  {item.position}\n"
          f"received:  {item.received_at.isoformat()}\nerror:     {item.error}\n"
          f"context:   {item.context}\nraw ({len(item.raw)} bytes):")
    print(item.raw[:4000].decode("utf-8", errors="backslashreplace"))
    return 0
