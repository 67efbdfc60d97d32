"""What a sink's delivery workers record for the daemon's health, metrics and self-alerts.

One :class:`SinkStats` per sink, shared by its workers (they run in threads, hence the lock;
a delivery costs one uncontended acquire). The outbox table knows what is pending and failed;
these are what only the sending process sees: how long a post took from its commit to the
service, which lanes are failing right now and since when, the last error.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime

from floorstream.model import utcnow

__all__ = ["LATENCY_BUCKETS", "SinkStats"]

#: upper bounds (seconds) of the commit → delivered histogram: milliseconds for immediate
#: posts up to a day for digests released at shift times
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0, 900.0, 3600.0, 14400.0, 86400.0)


class SinkStats:
    """Counters of one sink in this process, and its failing lanes (a lane: one team)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered = 0  # rows delivered
        self.failed = 0  # rows given up (status failed)
        self.retries = 0  # rows whose attempt failed and that wait for a retry
        #: commit → delivered, per LATENCY_BUCKETS (last slot: larger), and the sum
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.last_delivered_at: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        #: team → since when its lane's deliveries fail (until one goes through again)
        self.failing: dict[str, datetime] = {}

    def delivered_rows(self, team: str, committed: Sequence[datetime]) -> None:
        """Rows of ``team``'s lane went out; ``committed``: when each was committed."""
        now = utcnow()
        with self._lock:
            for at in committed:
                seconds = max(0.0, (now - at).total_seconds())
                self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
                self.latency_sum += seconds
            self.delivered += len(committed)
            self.last_delivered_at = now
            self.failing.pop(team, None)

    def failed_rows(self, team: str, rows: int, error: str, *, gave_up: bool) -> None:
        """An attempt for ``rows`` rows of ``team``'s lane failed; ``gave_up``: for good."""
        now = utcnow()
        with self._lock:
            if gave_up:
                self.failed += rows
            else:
                self.retries += rows
            self.last_error, self.last_error_at = error, now
            self.failing.setdefault(team, now)

    @property
    def failing_since(self) -> datetime | None:
        """Since when some lane of the sink fails (its earliest), None when none does."""
        with self._lock:
            return min(self.failing.values(), default=None)
