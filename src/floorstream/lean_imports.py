"""Import structlog without ``rich`` (imported first thing by :mod:`floorstream`).

structlog's ``dev`` module imports rich, when it is installed (the development venv), the
moment structlog is imported, only to pretty-print tracebacks in its console renderer.
floorstream never uses that: :func:`floorstream.logs.configure_logging` renders exceptions as
plain text (``format_exc_info``) before either renderer, on a terminal too, and the daemon
logs JSON lines otherwise; so rich's ~3.5 MB of RSS (issue 16) bought nothing. rich is hidden
from that one import only. A host that wants structlog's rich tracebacks in its own console
renderer imports structlog before floorstream: then nothing changes.
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
