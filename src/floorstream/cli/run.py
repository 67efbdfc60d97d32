"""``floorstream run -c FILE``: the daemon."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from floorstream.cli.common import add_config_arg, load
from floorstream.daemon import Daemon
from floorstream.logs import configure_logging, get_logger
from floorstream.plugin import scrub
from floorstream.service import Service

log = get_logger("floorstream.run")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run the daemon until SIGTERM/SIGINT (SIGHUP reloads the config; "
                    "systemd Type=notify and WatchdogSec= are understood)")
    add_config_arg(parser)
    parser.add_argument("--for", dest="duration", type=float, default=None,
                        help="stop after this many seconds (for trials and tests)")
    parser.add_argument("--log-format", choices=["auto", "console", "json"], default=None)
    parser.add_argument("--no-delivery", dest="delivery", action="store_false",
                        help="no delivery workers here: run `floorstream deliver` next to it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config, plugins = load(args)
    logging = config.settings.logging
    configure_logging(logging.level, args.log_format or logging.format, config.secrets)
    for warning in config.warnings:  # what check warns of, in the log a service writes
        log.warning("config_warning", warning=warning)
    try:
        daemon = Daemon(config, plugins, delivery=args.delivery)
    except SQLAlchemyError as exc:  # `check` validated the URL; the server is another matter
        print(f"floorstream: cannot open the store: {_reason(exc, config.secrets)}",
              file=sys.stderr)
        return 1
    service = Service(daemon, loader=lambda: load(args)[0],
                      log_format=args.log_format or logging.format)
    try:
        service.run(args.duration)  # READY/WATCHDOG/STOPPING to systemd, SIGHUP reloads
    except (SQLAlchemyError, OSError) as exc:  # the store went away, a port is taken
        print(f"floorstream: stopped: {_reason(exc, config.secrets)}", file=sys.stderr)
        return 1
    return 1 if daemon.pipeline.error is not None else 0


def _reason(exc: BaseException, secrets: frozenset[str]) -> str:
    """One line about what failed, without the traceback and without secrets."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return scrub(lines[0], secrets)
