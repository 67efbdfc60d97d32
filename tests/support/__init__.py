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

from .daemon import FLOORSTREAM, DaemonRunner, all_posts
from .http import HttpReceiver, Request, http_receiver
from .waiting import sentinel, wait_for

__all__ = ["FLOORSTREAM", "DaemonRunner", "HttpReceiver", "Request", "all_posts",
           "http_receiver", "sentinel", "wait_for"]
