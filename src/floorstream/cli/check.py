"""``floorstream check`` and ``floorstream schema``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from floorstream.cli.common import add_config_arg, load
from floorstream.config import config_json_schema
from floorstream.plugins import build_plugins


def register(subparsers: Any) -> None:
    check = subparsers.add_parser("check", help="validate a config file; non-zero if invalid")
    add_config_arg(check)
    check.add_argument("--offline", action="store_true",
                       help="do not connect to sources for deeper checks (indexes…)")
    check.set_defaults(func=run_check)
    schema = subparsers.add_parser("schema", help="print the config's JSON Schema (for editors)")
    schema.set_defaults(func=run_schema)


def run_check(args: argparse.Namespace) -> int:
    config, plugins = load(args)
    warnings: list[str] = list(config.warnings)
    if not args.offline:
        for source in config.sources:
            adapter = plugins.adapters.get(source.adapter)
            try:
                warnings.extend(f"sources.{source.name}: {w}" for w in adapter.check(source))
            except Exception as exc:  # a source we cannot reach is worth a warning, not a crash
                warnings.append(f"sources.{source.name}: could not check: {exc}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{config.file}: OK ({len(config.sources)} sources, {len(config.sinks)} sinks, "
          f"{len(config.settings.routes)} routes)")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_json_schema(build_plugins()), indent=2, sort_keys=True))
    return 0
