"""``floorstream quarantine stats | replay | discard``: what is in quarantine by reason, trying
it again after a fix, throwing it away. Part of the ``quarantine`` command
(:mod:`floorstream.cli.quarantine` hands these actions over).

- ``stats``: items per source and reason (``invalid``, ``too_large``, ``detector``,
  ``internal``), the oldest and newest, the commonest messages;
- ``replay ID | --source NAME | --all``: through the *current* config (see
  :mod:`floorstream.replay`): items that pass now are posted once and leave quarantine, items
  that still fail stay with the reason they fail for now;
- ``discard ID | --source NAME | --all``: delete them, after ``--yes`` or a ``y`` at the
  prompt (a command without a terminal and without ``--yes`` deletes nothing).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import datetime

from floorstream.cli.common import config_path, load
from floorstream.pipeline import QUARANTINE_REASONS, quarantine_reason
from floorstream.plugin import Progress
from floorstream.progress import console
from floorstream.replay import describe, replay_quarantined
from floorstream.store.store import QuarantineItem, Store

__all__ = ["ACTIONS", "add_arguments", "run"]

ACTIONS = ("stats", "replay", "discard")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", dest="every",
                        help="replay/discard: every item")
    parser.add_argument("--yes", "-y", action="store_true",
                        help="discard: no confirmation prompt")


def run(args: argparse.Namespace) -> int:
    if args.action == "stats":
        return _stats(args)
    chosen = sum((args.id is not None, args.source is not None, bool(args.every)))
    if chosen != 1:
        print(f"floorstream: quarantine {args.action} needs one of: an ID, --source NAME, --all",
              file=sys.stderr)
        return 2
    return _replay(args) if args.action == "replay" else _discard(args)


def _open(args: argparse.Namespace) -> Store:
    url = args.store
    if not url:
        if not config_path(args).exists() and not args.config:
            url = "sqlite:///floorstream.db"
        else:
            url = load(args)[0].settings.store
    return Store.open(url, create=False)


def _what(args: argparse.Namespace) -> str:
    if args.id is not None:
        return f"item {args.id}"
    if args.source is not None:
        return f"the items of source {args.source}"
    return "every item"


def _replay(args: argparse.Namespace) -> int:
    config, plugins = load(args)  # the config as it is now: that is the point
    store = Store.open(args.store or config.settings.store)
    try:
        ids = [args.id] if args.id is not None else None
        if store.count_quarantined(source=args.source, ids=ids) == 0:
            print(f"nothing to replay: {_what(args)} is not in quarantine"
                  if args.id is not None else "nothing to replay")
            return 1 if args.id is not None else 0

        def progress(total: int | None) -> Progress:
            return console("replaying", total)

        report = replay_quarantined(config, plugins, store, ids=ids, source=args.source,
                                    progress=progress)
    finally:
        store.close()
    for line in describe(report):
        print(line)
    return 0


def _discard(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        ids = [args.id] if args.id is not None else None
        count = store.count_quarantined(source=args.source, ids=ids)
        if count == 0:
            print("nothing to discard")
            return 1 if args.id is not None else 0
        if not args.yes:
            if not sys.stdin.isatty():
                print(f"floorstream: discard {count:,} items ({_what(args)})? pass --yes "
                      "(there is no terminal to ask)", file=sys.stderr)
                return 2
            answer = input(f"discard {count:,} quarantined items ({_what(args)})? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing discarded")
                return 1
        removed = store.discard_quarantined(ids=ids, source=args.source)
    finally:
        store.close()
    print(f"{removed:,} items discarded")
    return 0


def _stats(args: argparse.Namespace) -> int:
    store = _open(args)
    counts: dict[str, Counter[str]] = {}
    messages: Counter[tuple[str, str]] = Counter()
    oldest: dict[str, datetime] = {}
    newest: dict[str, datetime] = {}
    try:
        for _id, source, error, context, received in store.quarantine_summaries(
                source=args.source):
            reason = quarantine_reason(QuarantineItem(source, b"", error, None, context))
            counts.setdefault(source, Counter())[reason] += 1
            messages[(source, _shape(error))] += 1
            if source not in oldest or received < oldest[source]:
                oldest[source] = received
            if source not in newest or received > newest[source]:
                newest[source] = received
    finally:
        store.close()
    if not counts:
        print("quarantine is empty")
        return 0
    total = sum(sum(c.values()) for c in counts.values())
    print(f"{total:,} quarantined items")
    width = max(len(s) for s in counts)
    print(f"{'source':<{width}}  " + "  ".join(f"{r:>9}" for r in QUARANTINE_REASONS)
          + "      total  oldest → newest")
    for source in sorted(counts):
        row = counts[source]
        span = (f"{oldest[source]:%Y-%m-%d %H:%M} → {newest[source]:%Y-%m-%d %H:%M}")
        print(f"{source:<{width}}  " + "  ".join(f"{row[r]:>9,}" for r in QUARANTINE_REASONS)
              + f"  {sum(row.values()):>9,}  {span}")
    print("commonest reasons:")
    for (source, shape), count in messages.most_common(5):
        print(f"  {count:>7,}  {source}: {shape}")
    return 0


def _shape(error: str, limit: int = 100) -> str:
    """A message on one line, cut to ``limit`` characters."""
    text = " ".join(error.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
