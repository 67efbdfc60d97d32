"""Import structlog without ``rich`` (imported first thing by :mod:`floorstream`).

structlog's ``dev`` module imports rich, when it is installed, the moment structlog is
imported, only to pretty-print tracebacks on a console. floorstream's daemon logs JSON lines
when its output is not a terminal, so that cost (~3.5 MB of RSS, issue 16) buys nothing there.
rich is hidden from that one import; :func:`floorstream.logs.configure_logging` brings it back
(reloads ``structlog.dev``) when a colour terminal asks for console output. A host that wants
structlog's rich tracebacks itself imports structlog before floorstream: then nothing changes.
"""

from __future__ import annotations

import sys

__all__ = ["import_structlog_lean"]


def import_structlog_lean() -> None:
    if "structlog" in sys.modules or "rich" in sys.modules:
        return  # the host imported them already: leave its structlog as it is
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes ``import rich`` fail
    try:
        import structlog.dev  # noqa: F401
    finally:
        del sys.modules["rich"]


import_structlog_lean()
