"""The prometheus side of :mod:`floorstream.metrics`: one collector that reads the daemon's
own counters at scrape time. Imported at the first scrape only (a daemon with no
``health.port`` never loads prometheus_client)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from floorstream.delivery.stats import LATENCY_BUCKETS
from floorstream.pipeline import QUARANTINE_REASONS

if TYPE_CHECKING:
    from floorstream.daemon import Daemon
    from floorstream.metrics import CommitHistogram

__all__ = ["registry_for"]


def registry_for(daemon: Daemon, commits: CommitHistogram) -> CollectorRegistry:
    """A registry of this daemon's own (never the process-wide default registry)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DaemonCollector(daemon, commits))
    return registry


class _DaemonCollector(Collector):
    def __init__(self, daemon: Daemon, commits: CommitHistogram) -> None:
        self.daemon = daemon
        self.commits = commits

    def collect(self) -> Iterable[Metric]:
        yield self._commits()
        yield from self._sources()
        yield from self._pipeline()
        yield from self._sinks()
        yield from self._alerts()
        yield from self._fleet()

    def _sources(self) -> Iterable[Metric]:
        daemon = self.daemon
        now = time.time()
        changes = CounterMetricFamily(
            "floorstream_source_changes", "Inputs committed from the source (changes, adapter "
            "events, quarantined input)", labels=["source"])
        posts = CounterMetricFamily("floorstream_source_posts", "New posts committed",
                                    labels=["source"])
        quarantined = CounterMetricFamily(
            "floorstream_source_quarantined", "Inputs quarantined, by reason category",
            labels=["source", "reason"])
        flood = CounterMetricFamily(
            "floorstream_flood_suppressed", "Posts flood control held back (folded into a "
            "digest)", labels=["source"])
        settle = CounterMetricFamily(
            "floorstream_settle_suppressed", "State transitions not posted on their own: "
            "folded into a later post or a 'briefly' line (settled), or held while the stream "
            "was flapping (flapping); each is counted in the post that stands for it",
            labels=["source", "reason"])
        connected = GaugeMetricFamily(
            "floorstream_source_connected", "1 while the source is connected (as its adapter "
            "reports; an adapter that does not report: while it runs)", labels=["source"])
        lag = GaugeMetricFamily(
            "floorstream_source_lag_seconds", "Observed → committed for the oldest input of the "
            "source's last batch (growing while a batch waits for its commit)",
            labels=["source"])
        restarts = CounterMetricFamily("floorstream_source_restarts",
                                       "Adapter restarts after a crash", labels=["source"])
        names = list(daemon.status)
        names += sorted(n for n in list(daemon.pipeline.counters) if n not in daemon.status)
        runtimes = daemon.processor.sources
        for name in names:
            counters = daemon.pipeline.counter(name)
            changes.add_metric([name], counters.received)
            posts.add_metric([name], counters.posts)
            by_reason = dict(counters.quarantined)
            for reason in (*QUARANTINE_REASONS, *sorted(set(by_reason) - set(QUARANTINE_REASONS))):
                quarantined.add_metric([name, reason], by_reason.get(reason, 0))
            runtime = runtimes.get(name)
            flood.add_metric([name], runtime.flood_suppressed if runtime is not None else 0)
            stage = runtime.settle if runtime is not None else None
            settle.add_metric([name, "settled"], stage.folded if stage is not None else 0)
            settle.add_metric([name, "flapping"], stage.flapped if stage is not None else 0)
            lag.add_metric([name], counters.lag_now(now))
            status = daemon.status.get(name)
            if status is not None:
                connected.add_metric([name], 1.0 if status.connected else 0.0)
                restarts.add_metric([name], status.restarts)
        yield from (changes, posts, quarantined, flood, settle, connected, lag, restarts)

    def _commits(self) -> Metric:
        histogram = self.commits
        family = HistogramMetricFamily(
            "floorstream_pipeline_commit_seconds",
            "Duration of the pipeline's commit transactions (posts, outbox rows, checkpoints "
            "and detector state of one batch)")
        cumulative, buckets = 0, []
        for bound, count in zip((*histogram.bounds, float("inf")), list(histogram.counts),
                                strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        family.add_metric([], buckets, sum_value=histogram.total)
        return family

    def _pipeline(self) -> Iterable[Metric]:
        pipeline = self.daemon.pipeline
        yield GaugeMetricFamily("floorstream_pipeline_queue_depth",
                                "Inputs waiting in the pipeline queue",
                                value=pipeline.queue.qsize())
        yield GaugeMetricFamily("floorstream_pipeline_queue_capacity",
                                "Size of the pipeline queue (pipeline.queue_size)",
                                value=pipeline.queue.maxsize)
        yield CounterMetricFamily("floorstream_pipeline_commits", "Batches committed",
                                  value=pipeline.committed_batches)
        yield GaugeMetricFamily("floorstream_pipeline_up",
                                "1 while the pipeline thread runs without a fatal error",
                                value=1.0 if pipeline.alive and pipeline.error is None else 0.0)
        store = self.daemon.monitor.store
        up = store.reachable and pipeline.store_error is None
        yield GaugeMetricFamily("floorstream_store_up", "1 while the store answers",
                                value=1.0 if up else 0.0)
        wal = self.daemon.store.wal
        if wal is not None:  # SQLite: the log's checkpoints, off the commit path
            yield CounterMetricFamily("floorstream_store_wal_checkpoints",
                                      "SQLite WAL checkpoints of the background thread",
                                      value=wal.checkpoints)
            yield CounterMetricFamily("floorstream_store_wal_checkpoint_failures",
                                      "SQLite WAL checkpoints that failed (the log grows)",
                                      value=wal.failures)
            yield GaugeMetricFamily("floorstream_store_wal_uncopied_pages",
                                    "Pages of the SQLite WAL the last checkpoint could not copy "
                                    "(a reader holds an old snapshot)",
                                    value=wal.behind_pages)

    def _sinks(self) -> Iterable[Metric]:
        daemon = self.daemon
        outbox = daemon.monitor.outbox.sinks
        stats = daemon.sink_stats()
        names = [s.name for s in daemon.config.sinks]
        names += sorted(n for n in outbox if n not in names)
        now = time.time()
        pending = GaugeMetricFamily(
            "floorstream_sink_pending", "Outbox rows not yet delivered (pending, held for a "
            "digest, being sent)", labels=["sink"])
        rows = GaugeMetricFamily("floorstream_outbox_rows", "Outbox rows by status",
                                 labels=["sink", "status"])
        oldest = GaugeMetricFamily(
            "floorstream_sink_oldest_pending_seconds", "Age of the oldest outbox row not yet "
            "delivered (0: none)", labels=["sink"])
        delivered = CounterMetricFamily("floorstream_sink_delivered",
                                        "Outbox rows delivered by this process", labels=["sink"])
        failed = CounterMetricFamily(
            "floorstream_sink_failed", "Outbox rows given up by this process (status failed)",
            labels=["sink"])
        retries = CounterMetricFamily(
            "floorstream_sink_retries", "Delivery attempts that failed and will be retried "
            "(per row)", labels=["sink"])
        failing = GaugeMetricFamily(
            "floorstream_sink_failing", "1 while the last attempt on some lane of the sink "
            "failed", labels=["sink"])
        latency = HistogramMetricFamily(
            "floorstream_sink_delivery_seconds", "Commit → delivered, per outbox row",
            labels=["sink"])
        for name in names:
            found = outbox.get(name)
            pending.add_metric([name], found.waiting if found else 0)
            for status in ("pending", "held", "sending", "failed"):
                rows.add_metric([name, status], getattr(found, status) if found else 0)
            age = (max(0.0, now - found.oldest_pending.timestamp())
                   if found is not None and found.oldest_pending is not None else 0.0)
            oldest.add_metric([name], age)
            sink = stats.get(name)
            if sink is None:
                continue
            delivered.add_metric([name], sink.delivered)
            failed.add_metric([name], sink.failed)
            retries.add_metric([name], sink.retries)
            failing.add_metric([name], 1.0 if sink.failing_since is not None else 0.0)
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), list(sink.buckets),
                                    strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric([name], buckets, sum_value=sink.latency_sum)
        yield from (pending, rows, oldest, delivered, failed, retries, failing, latency)

    def _fleet(self) -> Iterable[Metric]:
        """A fleet on the store (docs/fleet.md): what this daemon's fleet thread last saw."""
        fleet = self.daemon.fleet
        if fleet is None:
            return
        report = fleet.report()
        yield GaugeMetricFamily("floorstream_fleet_connected", "1 while this daemon's store "
                                "session (which holds its leases) is up",
                                value=1.0 if report["connected"] else 0.0)
        yield GaugeMetricFamily("floorstream_fleet_live_daemons", "Live daemons of the fleet "
                                "(this one included)", value=report["live_daemons"])
        yield GaugeMetricFamily("floorstream_fleet_share", "Sources this daemon may hold",
                                value=report["share"])
        held = GaugeMetricFamily("floorstream_fleet_source_held", "1 while this daemon holds "
                                 "the source's lease", labels=["source"])
        for name in self.daemon.status:
            held.add_metric([name], 1.0 if name in report["held"] else 0.0)
        yield held
        yield GaugeMetricFamily("floorstream_fleet_sources_unheld", "Sources no live daemon "
                                "holds (as this daemon last read the lease rows)",
                                value=len(report["unheld"]))
        for name, value, text in (
                ("acquisitions", report["acquisitions"], "Leases this daemon took"),
                ("releases", report["releases"], "Leases this daemon gave back"),
                ("losses", report["losses"], "Times this daemon lost its store session while "
                                             "holding leases"),
                ("fenced_batches", report["fenced_batches"], "Commits that had work of a "
                                                              "source held elsewhere stripped")):
            yield CounterMetricFamily(f"floorstream_fleet_{name}", text, value=value)

    def _alerts(self) -> Iterable[Metric]:
        monitor = self.daemon.monitor
        raised = CounterMetricFamily("floorstream_alerts", "Self-alerts posted to the admin "
                                     "team", labels=["kind"])
        open_ = GaugeMetricFamily("floorstream_alerts_open", "Self-alerts not yet cleared",
                                  labels=["kind"])
        opened: dict[str, int] = dict.fromkeys(monitor.raised, 0)
        for alert in monitor.open_alerts():
            opened[alert["kind"]] = opened.get(alert["kind"], 0) + 1
        for kind, count in monitor.raised.items():
            raised.add_metric([kind], count)
        for kind, count in opened.items():
            open_.add_metric([kind], count)
        yield from (raised, open_)
