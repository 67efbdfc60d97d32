"""``floorstream deliver -c FILE``: only the delivery workers, in a process of their own.

Why: delivery and the pipeline share one GIL when the daemon runs both. On the 2-core reference
machine the pipeline committed 10,000 posts in 0.9 s on SQLite with nobody delivering and in
1.7–5.9 s while four workers delivered them (``docs/delivery.md``). Run
``floorstream run --no-delivery`` for the sources and pipeline and this command next to it, and
each gets its own interpreter (and core). The outbox is the only link between them, so every
guarantee holds as with two daemons: on SQLite run one ``deliver`` process (claims are
serialised by the database's write lock and the lane check); on PostgreSQL or MariaDB ≥ 10.6
run as many as you like.

A separate process does not hear the pipeline's ``post_committed`` hook, so it finds new rows
by polling: ``--poll`` (default 0.05 s) is the added latency bound; an idle poll is one
indexed read.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import Any

from floorstream.cli.common import add_config_arg, load
from floorstream.delivery.service import DeliveryService
from floorstream.logs import configure_logging, get_logger
from floorstream.store.store import Store

log = get_logger("floorstream.delivery")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deliver", help="run only the delivery workers (next to `run --no-delivery`)")
    add_config_arg(parser)
    parser.add_argument("--poll", type=float, default=0.05,
                        help="seconds between looks for new outbox rows (default 0.05)")
    parser.add_argument("--for", dest="duration", type=float, default=None,
                        help="stop after this many seconds (for trials and tests)")
    parser.add_argument("--log-format", choices=["auto", "console", "json"], default=None)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config, plugins = load(args)
    logging = config.settings.logging
    configure_logging(logging.level, args.log_format or logging.format, config.secrets)
    if not config.sinks:
        log.warning("deliver_no_sinks")
        return 0
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal_received", signal=signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    store = Store.open(config.settings.store)
    service = DeliveryService(config, plugins, store, poll=args.poll)
    try:
        service.start()
        stop.wait(args.duration)
    finally:
        service.stop()
        store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("deliver_stopped", delivered=sum(w.delivered for w in service.workers))
    return 0
