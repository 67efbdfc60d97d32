"""structlog set-up: readable on a terminal, JSON lines when shipped, secrets redacted.

Values that came from ``${ENV}`` references are treated as secrets: any log field containing
one has it replaced by ``***``, so a webhook URL or password never reaches a log shipper.
floorstream's modules take their logger from :func:`get_logger` (re-exported from the plugin
API's :mod:`floorstream.plugin.log`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from floorstream.plugin.log import Logger, get_logger

__all__ = ["Logger", "configure_logging", "get_logger", "library_logging"]


def _redactor(secrets: Iterable[str]) -> Any:
    needles = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        if not needles:
            return event
        for key, value in event.items():
            text = value if isinstance(value, str) else None
            if text is None and not isinstance(value, int | float | bool | type(None)):
                text = str(value)
            if text is not None and any(n in text for n in needles):
                for needle in needles:
                    text = text.replace(needle, "***")
                event[key] = text
        return event

    return redact


def configure_logging(level: str = "info", fmt: str = "auto",
                      secrets: Iterable[str] = (), stream: Any = None) -> None:
    out = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and hasattr(out, "isatty") and out.isatty())
    renderer: Any = (structlog.dev.ConsoleRenderer(colors=out.isatty()) if use_console
                     else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redactor(secrets),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def library_logging() -> None:
    """Send floorstream's log lines through the standard ``logging`` tree, unless the host
    already configured structlog itself.

    Embedded in an ERP customisation, floorstream must not print: its loggers are
    ``floorstream.*`` stdlib loggers with a ``NullHandler`` on ``floorstream``, so nothing
    appears until the host configures logging (``logging.basicConfig()``, its framework's
    handlers). ``floorstream run`` replaces this with :func:`configure_logging`.
    """
    logging.getLogger("floorstream").addHandler(logging.NullHandler())
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
