"""``floorstream supply pending``: the ASNs waiting for their PO to reach the ERP.

Contributed through the ``register_commands`` hook, so the supply integration owns its tool.
An ASN whose PO the ERP does not know posts one "unmatched" post and waits in its source's
memory, which is part of the source's checkpoint in the store; this command reads those
checkpoints (no daemon needed, nothing is changed) and lists what waits, since when and until
when.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import bindparam, create_engine, text

from floorstream.adapters.supply.feed import SupplyConfig
from floorstream.adapters.supply.memory import Memory
from floorstream.plugin import Commands, SourceConfig, hookimpl

__all__ = ["pending", "register_commands"]


@hookimpl
def register_commands(commands: Commands) -> None:
    supply = commands.add("supply", help="supply-chain feed tools")
    sub = supply.add_subparsers(dest="supply_command", metavar="ACTION")
    listing = sub.add_parser("pending", help="ASNs waiting for their PO to appear in the ERP")
    commands.add_config_argument(listing)
    listing.add_argument("--source", help="only this supply source")
    listing.add_argument("--store", help="store URL (default: the config's store:)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=lambda args: run_pending(args, commands.sources(args)))
    supply.set_defaults(func=lambda _args: _usage(supply))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def pending(store_url: str, sources: Sequence[str]) -> list[dict[str, Any]]:
    """The waiting ASNs of ``sources``, oldest first, from their committed checkpoints."""
    if not sources:
        return []
    engine = create_engine(store_url)
    try:
        query = text("SELECT source, position FROM fs_checkpoints WHERE source IN :sources"
                     ).bindparams(bindparam("sources", expanding=True))
        with engine.connect() as conn:
            rows = list(conn.execute(query, {"sources": list(sources)}))
    finally:
        engine.dispose()
    found: list[dict[str, Any]] = []
    for source, position in rows:
        for _key, item in Memory.load(position).pending_items():
            found.append({"source": source, "po": item["po"], "asn": item["asn"],
                          "since": _when(item["since"]), "expires": _when(item["until"]),
                          "thread": item["thread"], "document": item["doc"]})
    return sorted(found, key=lambda item: (item["since"], item["source"], item["po"]))


def run_pending(args: argparse.Namespace, configured: Sequence[SourceConfig]) -> int:
    names = [s.name for s in configured if isinstance(s, SupplyConfig)
             and (args.source is None or s.name == args.source)]
    if not names:
        print(f"floorstream: no supply source{' named ' + args.source if args.source else ''}"
              " in the config", file=sys.stderr)
        return 1
    items = pending(args.store or _store_url(args.config), names)
    if args.json:
        for item in items:
            print(json.dumps(item))
        return 0
    if not items:
        print("no ASN is waiting for its PO")
        return 0
    header = ("SOURCE", "PO", "ASN", "WAITING SINCE", "EXPIRES", "THREAD")
    table = [header] + [(i["source"], i["po"], i["asn"], i["since"][:16].replace("T", " "),
                         i["expires"][:16].replace("T", " "), i["thread"]) for i in items]
    widths = [max(len(str(row[c])) for row in table) for c in range(len(header) - 1)]
    for row in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False))
              + "  " + str(row[-1]))
    return 0


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _store_url(config: str | None) -> str:
    """The config file's ``store:`` (``${ENV}`` references expanded), as ``floorstream`` reads
    it; the default store when the file names none."""
    path = Path(config or "floorstream.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    url = data.get("store") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url:
        return "sqlite:///floorstream.db"
    return _ENV.sub(lambda m: os.environ.get(m.group(1), ""), url)
