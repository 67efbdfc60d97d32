"""``floorstream check`` and ``floorstream schema``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from floorstream.cli.common import add_config_arg, load
from floorstream.config import config_json_schema
from floorstream.plugin import scrub
from floorstream.plugins import build_plugins
from floorstream.probe import probe_all


def register(subparsers: Any) -> None:
    check = subparsers.add_parser("check", help="validate a config file; non-zero if invalid")
    add_config_arg(check)
    check.add_argument("--offline", action="store_true",
                       help="do not connect to sources for deeper checks (indexes…)")
    check.add_argument("--connect", action="store_true",
                       help="try every connection the config names (store, brokers, "
                            "databases, SMTP, webhook hosts) and report each; exit 1 if one "
                            "fails")
    check.set_defaults(func=run_check)
    schema = subparsers.add_parser("schema", help="print the config's JSON Schema (for editors)")
    schema.set_defaults(func=run_schema)


def run_check(args: argparse.Namespace) -> int:
    config, plugins = load(args)
    warnings: list[str] = list(config.warnings)
    for source in config.sources:  # a source config's own static warnings (no connection)
        static = getattr(source, "check_warnings", None)
        if callable(static):
            warnings.extend(f"sources.{source.name}: {w}" for w in static())
    if not args.offline:
        unreachable = store_unreachable(config.settings.store)
        if unreachable:
            warnings.append(f"store: cannot connect now: {scrub(unreachable, config.secrets)}")
        for source in config.sources:
            adapter = plugins.adapters.get(source.adapter)
            try:
                warnings.extend(f"sources.{source.name}: {w}" for w in adapter.check(source))
            except Exception as exc:  # a source we cannot reach is worth a warning, not a crash
                warnings.append(f"sources.{source.name}: could not check: {exc}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{config.file}: OK ({_count(config.sources, 'source')}, "
          f"{_count(config.sinks, 'sink')}, {_count(config.settings.routes, 'route')})")
    print(_fleet_line(config))
    if args.connect:
        return _connect(config)
    return 0


def _count(items: Any, noun: str) -> str:
    """``1 sink``, ``3 sources``: the line a new user reads first."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _fleet_line(config: Any) -> str:
    """Whether daemons on this config form a fleet (docs/fleet.md)."""
    from floorstream.fleet import fleet_wanted
    fleet = config.settings.fleet
    if fleet_wanted(config.settings.store, fleet.enabled):
        return (f"fleet: on (daemons on this store share its sources; a dead holder's are "
                f"taken over within {fleet.takeover:g}s)")
    if fleet.enabled is False:
        return "fleet: off (fleet.enabled is false: run one daemon on this store)"
    return "fleet: off (SQLite store: one daemon per database file)"


def _connect(config: Any) -> int:
    """``--connect``: every connection, tried (see :mod:`floorstream.probe`)."""
    found = probe_all(config)
    width = max(len(p.key) for p in found)
    for probe in found:
        print(probe.line(width))
    failed = sum(1 for p in found if p.ok is False)
    tried = sum(1 for p in found if p.ok is not None)
    print(f"{tried} connections tried: {tried - failed} ok, {failed} failed")
    return 1 if failed else 0


def store_unreachable(url: str, timeout: int = 5) -> str | None:
    """Why the store's server does not answer now (one line), or None. A SQLite store is not
    opened: that would create the file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return None
    engine = create_engine(parsed, connect_args={"connect_timeout": timeout})
    try:
        with engine.connect():
            return None
    except Exception as exc:
        cause = getattr(exc, "orig", None) or exc
        lines = str(cause).strip().splitlines() or [type(cause).__name__]
        return lines[0]
    finally:
        engine.dispose()


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_json_schema(build_plugins()), indent=2, sort_keys=True))
    return 0
