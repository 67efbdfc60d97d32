"""Prometheus metrics of one daemon, served on ``/metrics`` (docs/daemon.md lists them).

Each daemon has a registry of its own (two daemons in one process, as the tests run them,
never mix their numbers). Almost everything is read at scrape time from what the daemon keeps
anyway — the pipeline's per-source counters, the processors' flood counters, the delivery
workers' :class:`~floorstream.delivery.stats.SinkStats`, the monitor's outbox counts — by one
custom collector (:mod:`floorstream.metrics_collector`), so the hot path pays no metrics call
per message. The one metric observed as it happens is the commit latency (once per batch),
counted here into plain buckets.

prometheus_client is imported at the first scrape, not when the daemon is built: a daemon
with no ``health.port`` is never scraped and should not carry it (issue 16, memory).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from floorstream.daemon import Daemon

__all__ = ["COMMIT_BUCKETS", "CommitHistogram", "DaemonMetrics"]

#: upper bounds (seconds) of the commit-latency histogram
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                  30.0)


class CommitHistogram:
    """Commit durations by bucket (one count per bound, plus +Inf), and their sum."""

    def __init__(self, bounds: tuple[float, ...] = COMMIT_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # le semantics: a value equal to a bound falls in that bound's bucket
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds


class DaemonMetrics:
    """The metrics of one daemon; :meth:`render` is what ``/metrics`` serves."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.commit_seconds = CommitHistogram()
        daemon.pipeline.on_commit = self.commit_seconds.observe
        self._registry: CollectorRegistry | None = None

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if self._registry is None:
            from floorstream.metrics_collector import registry_for

            self._registry = registry_for(self.daemon, self.commit_seconds)
        return generate_latest(self._registry), CONTENT_TYPE_LATEST
