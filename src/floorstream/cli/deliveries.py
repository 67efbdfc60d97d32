"""``floorstream deliveries [--failed]`` and ``deliveries retry ID…|--all-failed``: the outbox."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from floorstream.cli.common import add_store_args, open_store
from floorstream.cli.feed import positive_int
from floorstream.delivery.outbox import Outbox


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("deliveries", help="list outbox rows, or retry failed ones")
    add_store_args(parser)
    parser.add_argument("action", nargs="?", choices=["list", "retry"], default="list")
    parser.add_argument("ids", nargs="*", type=int, help="retry: the rows to queue again")
    parser.add_argument("--failed", action="store_true", help="list: only failed deliveries")
    parser.add_argument("--status", choices=["pending", "held", "sending", "delivered",
                                             "failed"])
    parser.add_argument("--sink")
    parser.add_argument("--limit", "-n", type=positive_int, default=50)
    parser.add_argument("--all-failed", action="store_true",
                        help="retry: every failed delivery")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        outbox = Outbox(store.engine)
        if args.action == "retry":
            if not args.ids and not args.all_failed:
                print("deliveries retry needs IDs or --all-failed", file=sys.stderr)
                return 2
            count = outbox.retry(args.ids, all_failed=args.all_failed)
            print(f"queued {count} deliveries again")
            return 0 if count or args.all_failed else 1
        status = "failed" if args.failed else args.status
        rows = outbox.rows(status=status, sink=args.sink, limit=args.limit)
        counts = outbox.counts()
        print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "the outbox is empty")
        for row in rows:
            when = row.created_at.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{row.id:>7}  {when}  {row.status:<9}  {row.sink:<14}  {row.team:<12}  "
                  f"tries {row.attempts:<3}  {(row.summary or row.post_id)[:60]}")
            if row.last_error and row.status != "delivered":
                print(f"{'':>9}last error: {row.last_error}")
        return 0
    finally:
        store.close()
