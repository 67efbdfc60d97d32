"""``floorstream web -c FILE``: the web feed alone, on the store the daemons write.

Several such processes may serve one PostgreSQL store (each LISTENs for new posts); on
SQLite it polls. Comments go through a pipeline of this process on the same store, so they are
routed and put in the outbox like every post; the daemon's delivery workers send them.
``floorstream web --hash-password`` prints an argon2 hash for ``web.people.NAME.password_hash``.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import threading
from types import FrameType
from typing import Any

from floorstream.cli.common import add_config_arg, load
from floorstream.logs import configure_logging


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "web", help="serve the web feed (team feeds, threads, kiosk, JSON/SSE/Atom) alone")
    add_config_arg(parser)
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: web.port of the config, else 8080)")
    parser.add_argument("--bind", default=None, help="address (default: web.bind)")
    parser.add_argument("--for", dest="duration", type=float, default=None,
                        help="stop after this many seconds (for trials and tests)")
    parser.add_argument("--hash-password", action="store_true",
                        help="read a password (stdin or prompt) and print its argon2 hash")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.hash_password:
        from floorstream.web.auth import hash_password

        if sys.stdin.isatty():
            password = getpass.getpass("password: ")
        else:
            password = sys.stdin.readline().rstrip("\n")
        if not password:
            print("floorstream: an empty password", file=sys.stderr)
            return 2
        print(hash_password(password))
        return 0
    config, _plugins = load(args)
    logging = config.settings.logging
    configure_logging(logging.level, logging.format, config.secrets)
    from floorstream.web.server import WebServer

    web = config.settings.web
    if args.bind is not None:
        web = web.model_copy(update={"bind": args.bind})
        config = _with_web(config, web)
    port = args.port if args.port is not None else (web.port if web.port is not None else 8080)
    server = WebServer(config, port=port, create=True)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        from floorstream.daemon import settle_process

        # as `floorstream run` does: what the start made is frozen, so no full collection
        # walks it again (a page that met one took 45-85 ms of CPU instead of 5)
        settle_process()
        print(f"floorstream web: serving {server.url}/", flush=True)
        stop.wait(args.duration)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _with_web(config: Any, web: Any) -> Any:
    from dataclasses import replace

    return replace(config, settings=config.settings.model_copy(update={"web": web}))
