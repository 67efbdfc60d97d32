"""``floorstream prune [--dry-run]``: apply ``retention:`` now (the daemon does it every
``retention.interval`` by itself)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from floorstream.cli.common import add_store_args, config_path, load
from floorstream.config.settings import RetentionSettings
from floorstream.logs import configure_logging
from floorstream.plugin import Progress
from floorstream.progress import NullLog, console
from floorstream.retention import KINDS, prune
from floorstream.store.store import Store

_LABELS = {"posts": "posts", "delivered": "delivered outbox rows",
           "failed": "failed outbox rows", "quarantine": "quarantined items",
           "detector_state": "detector state rows", "erp_changes": "fs_erp_changes rows"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prune", help="delete what retention: says is too old (posts, outbox, quarantine, "
                      "detector state, consumed fs_erp_changes rows)")
    add_store_args(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="count what would be deleted, delete nothing")
    parser.add_argument("--kind", action="append", choices=KINDS, dest="kinds",
                        help="only this kind (repeatable; default: every kind retention: "
                             "gives a duration)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sources: list[Any] = []
    plugins = None
    settings = RetentionSettings()
    if config_path(args).exists() or args.config:
        config, plugins = load(args)
        settings = config.settings.retention
        sources = config.sources
        url = args.store or config.settings.store
        secrets: frozenset[str] = config.secrets
    elif args.store:
        url, secrets = args.store, frozenset()
    else:
        print("floorstream: prune needs a config (-c FILE) or --store URL", file=sys.stderr)
        return 2
    configure_logging("warning" if args.quiet else "info", "auto", secrets, stream=sys.stderr)
    store = Store.open(url)

    def progress(kind: str, total: int | None) -> Progress:
        verb = "counting" if args.dry_run else "pruning"
        if args.quiet:
            return Progress(NullLog(), "progress", total, every=1e9)
        return console(f"{verb} {_LABELS[kind]}", total)

    try:
        report = prune(store, settings, sources=sources, plugins=plugins, dry_run=args.dry_run,
                       progress=progress, kinds=args.kinds or KINDS)
    finally:
        store.close()
    verb = "would delete" if args.dry_run else "deleted"
    for kind in args.kinds or KINDS:
        keep = getattr(settings, kind)
        if keep is None:
            print(f"{_LABELS[kind]}: kept (retention.{kind} is null)")
        elif kind in report.counts:
            print(f"{_LABELS[kind]}: {verb} {report.counts[kind]:,}")
    if report.kept_pending:
        print(f"posts kept although old: {report.kept_pending:,} (a delivery is still pending)")
    for kind, error in report.errors.items():
        print(f"floorstream: prune {kind} failed: {error}", file=sys.stderr)
    return 1 if report.errors else 0
