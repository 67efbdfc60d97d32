"""Shared helpers of the test suite (imported as ``support``: ``tests/`` is on ``sys.path``).

- :mod:`support.waiting`: :func:`wait_for` (the one polling helper) and :func:`sentinel`
  (assert "nothing more arrived" only after a marker sent behind the input came through);
- :mod:`support.http`: :func:`http_receiver`, one threaded HTTP server that records requests
  and answers configurable status codes, bodies and ``Retry-After``;
- :mod:`support.daemon`: :class:`DaemonRunner`, one way to run a daemon in process or as a
  ``floorstream`` process, stopped cleanly;
- :mod:`support.erp`: ERP databases (production orders, purchasing) and :class:`ErpRun`;
- :mod:`support.mqtt`: a publisher, a private Mosquitto, waiting for a subscription.

Services (PostgreSQL, MariaDB, Mosquitto) come from the fixtures in ``tests/conftest.py``.
"""

from __future__ import annotations

import importlib
from typing import Any

# imported on first use, so ``conftest.py`` (which needs only ``support.services``) does not
# import the daemon and every plugin before a single test is collected
_WHERE = {"FLOORSTREAM": "daemon", "DaemonRunner": "daemon", "all_posts": "daemon",
          "HttpReceiver": "http", "Request": "http", "http_receiver": "http",
          "sentinel": "waiting", "wait_for": "waiting"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'support' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
