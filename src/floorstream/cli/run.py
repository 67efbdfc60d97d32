"""``floorstream run -c FILE``: the daemon."""

from __future__ import annotations

import argparse
from typing import Any

from floorstream.cli.common import add_config_arg, load
from floorstream.daemon import Daemon
from floorstream.logs import configure_logging


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run the daemon until SIGTERM/SIGINT")
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
    daemon = Daemon(config, plugins, delivery=args.delivery)
    daemon.run_forever(args.duration)
    return 1 if daemon.pipeline.error is not None else 0
