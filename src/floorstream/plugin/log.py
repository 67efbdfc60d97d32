"""The logger floorstream's modules and plugins log through (``AdapterContext.log``):
structlog's, named after the module — ``log.warning("event", key=value)``, ``bind``,
``exception``.

It is part of the plugin API, so a plugin takes its logger from here and never from the
host's :mod:`floorstream.logs`, which chooses the output: the daemon's JSON lines or console
(:func:`floorstream.logs.configure_logging`), or the library's hand-over to ``logging``
(:func:`floorstream.logs.library_logging`). structlog is the project's logging library by
choice (it is fixed in the design); an earlier round wrote the JSON lines by hand to save
its import, and that was put back: in an install without the dev tools (no rich, no
pygments), importing structlog costs 1.8 MB of RSS.
"""

from __future__ import annotations

from typing import Any

import structlog

__all__ = ["Logger", "get_logger"]

#: what :func:`get_logger` returns: a structlog bound logger, whose class the configuration
#: decides (a filtering bound logger in the daemon, a stdlib one in the library)
Logger = Any


def get_logger(name: str) -> Any:
    """structlog's logger for ``name`` (a module's ``__name__``)."""
    return structlog.get_logger(name)
