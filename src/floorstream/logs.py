"""Logging set-up: JSON lines when shipped, readable on a terminal, secrets redacted.

Values that came from ``${ENV}`` references are treated as secrets: any log field containing
one has it replaced by ``***``, so a webhook URL or password never reaches a log shipper.

The logger itself (:func:`get_logger`) lives in :mod:`floorstream.plugin.log`, which writes
the JSON lines without importing structlog while nothing else has; this module chooses the
output: the daemon's (:func:`configure_logging`) or the library's (:func:`library_logging`).
The console format (``logging.format: console``, or ``auto`` on a terminal) is structlog's
``ConsoleRenderer``: that one imports structlog when it is chosen.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from floorstream.plugin.log import (
    Logger,
    _configure_library,
    _configure_structlog,
    _import_structlog,
    _JsonLines,
    _state,
    get_logger,
)

__all__ = ["Logger", "configure_logging", "get_logger", "library_logging"]


def configure_logging(level: str = "info", fmt: str = "auto",
                      secrets: Iterable[str] = (), stream: Any = None) -> None:
    """The daemon's and the command line's output: JSON lines, or structlog's console
    renderer on a terminal (``fmt`` ``auto``) or when asked (``console``)."""
    out = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and hasattr(out, "isatty") and out.isatty())
    min_level = logging.getLevelName(level.upper())
    if not use_console and "structlog" not in sys.modules:
        _state.json = _JsonLines(min_level, secrets, out)
        return
    _state.json = None
    _configure_structlog(_import_structlog(), min_level, "console" if use_console else "json",
                         secrets, out)


def library_logging() -> None:
    """Send floorstream's log lines through the standard ``logging`` tree, unless the host
    configured structlog itself.

    Embedded in an ERP customisation, floorstream must not print: its loggers are
    ``floorstream.*`` stdlib loggers with a ``NullHandler`` on ``floorstream``, so nothing
    appears until the host configures logging (``logging.basicConfig()``, its framework's
    handlers). ``floorstream run`` replaces this with :func:`configure_logging`. While
    structlog is not imported the records are made here; once it is, structlog is configured
    to make the same records at floorstream's first line after it, if the host has not
    configured it.
    """
    logging.getLogger("floorstream").addHandler(logging.NullHandler())
    structlog = sys.modules.get("structlog")
    if structlog is not None and not structlog.is_configured():
        _configure_library(structlog)  # imported before floorstream: configured as it was
