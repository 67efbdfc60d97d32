"""``floorstream fleet -c FILE [--json]``: the daemons running on the config's store, the
sources each holds (lag, last commit), and the sources nobody holds (docs/fleet.md).

Exit status: 0 when every source of the config has a live holder, 1 when some has none
(a monitoring check can run it), 2 when the store has no fleet (SQLite).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from floorstream.cli.common import add_config_arg, load
from floorstream.fleet import fleet_wanted
from floorstream.fleet.report import fleet_report
from floorstream.store.store import Store


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fleet", help="the daemons on this store, the sources each holds, those nobody holds")
    add_config_arg(parser)
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config, _plugins = load(args)
    settings = config.settings
    if not fleet_wanted(settings.store, settings.fleet.enabled):
        print("no fleet: " + ("fleet.enabled is false" if settings.fleet.enabled is False else
                              "the store is SQLite, which runs one daemon per database file"))
        return 2
    sources = [s.name for s in config.sources if s.enabled]
    store = Store.open(settings.store)
    try:
        report = fleet_report(store.engine, sources)
    finally:
        store.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 1 if report["unheld"] else 0


def _print(report: dict[str, Any]) -> None:
    live = [d for d in report["daemons"] if d["live"]]
    print(f"{len(live)} live daemons, {sum(len(d['sources']) for d in live)} sources held, "
          f"{len(report['unheld'])} held by nobody ({report['time']})")
    for daemon in report["daemons"]:
        state = "live" if daemon["live"] else "gone"
        print(f"\n{daemon['id']}  {state}  host {daemon['host']}  pid {daemon['pid']}  "
              f"version {daemon['version']}  started {daemon['started']}  "
              f"heartbeat {daemon['heartbeat']} ({daemon['heartbeat_age_seconds']:g}s ago)")
        for held in daemon["sources"]:
            lag = held["lag_seconds"]
            print(f"  {held['source']:<24} since {held['since']}  "
                  f"lag {'-' if lag is None else f'{lag:.3f}s'}  "
                  f"last commit {held['last_commit'] or '-'}")
    if report["unheld"]:
        print("\nheld by nobody:")
        for item in report["unheld"]:
            print(f"  {item['source']:<24} since {item['since'] or 'never held'}  "
                  f"last holder {item['last_holder'] or '-'}  "
                  f"last commit {item['last_commit'] or '-'}")
