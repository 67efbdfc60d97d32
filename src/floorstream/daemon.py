"""The daemon: adapters in threads feeding one pipeline, stopped cleanly on SIGTERM/SIGINT.

An adapter whose ``run`` raises is logged with its plugin's name and restarted with backoff; it
never takes the daemon down and never spins in a tight crash loop. On stop, adapters are asked
to stop first, then the pipeline drains and commits what was queued, then connections close.

What it knows about itself it tells three ways (docs/daemon.md): the health report
(:meth:`Daemon.health`, :meth:`Daemon.readiness`, served on ``/healthz`` and ``/readyz``),
Prometheus metrics (:mod:`floorstream.metrics`, on ``/metrics``) and self-alerts, posts to the
admin team from the monitor thread (:mod:`floorstream.monitor`).
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

from floorstream.api import Stream
from floorstream.config import Config
from floorstream.fleet import fleet_wanted
from floorstream.health import HealthServer, iso
from floorstream.interest import source_interest
from floorstream.logs import get_logger
from floorstream.malloc import limit_malloc_arenas
from floorstream.metrics import DaemonMetrics
from floorstream.model import utcnow
from floorstream.monitor import Monitor
from floorstream.pipeline import Pipeline
from floorstream.plugin import Interest
from floorstream.plugin.adapter import Adapter, AdapterContext, SourceConfig, SourceHealth
from floorstream.plugins import Plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import Store

if TYPE_CHECKING:  # imported when the config has sinks / a fleet (issue 16: RSS)
    from floorstream.delivery.service import DeliveryService
    from floorstream.fleet.coordinator import Fleet

__all__ = ["Daemon", "SourceStatus", "settle_process"]

log = get_logger("floorstream.daemon")

#: the pseudo-source of the pipeline barrier a fleet daemon waits on when it stops a source
_BARRIER = "@fleet-barrier"


@dataclass
class SourceStatus:
    """A source's adapter thread as the daemon runs it; :meth:`Daemon.source_report` adds
    what the pipeline saw of it."""

    name: str
    adapter: str
    #: starting | running | restarting | finished | stopped; standby: another daemon of the
    #: fleet runs it (or nobody yet)
    state: str = "starting"
    restarts: int = 0
    last_error: str | None = None  # the adapter's last exception (a crash)
    last_error_at: datetime | None = None
    since: datetime = field(default_factory=utcnow)  # when ``state`` last changed
    #: what the adapter reports of its connection (``context.health``), kept across restarts
    health: SourceHealth = field(default_factory=SourceHealth)
    #: the adapter reports its connection (``Adapter.reports_connection``)
    reports: bool = False

    @property
    def connected(self) -> bool:
        """Connected as its adapter reported; one that does not report: while it runs."""
        if self.state not in ("running", "finished"):
            return False
        if self.reports:
            return self.health.is_connected is True
        return self.state == "running"

    @property
    def connection_since(self) -> datetime:
        """Since when :attr:`connected` has been what it is (about)."""
        reported = self.health.since
        if self.reports and reported is not None and self.state == "running":
            return reported
        return self.since

    @property
    def ok(self) -> bool:
        """Ready as far as this source goes: connected, or a finite source that finished."""
        return self.connected or self.state in ("finished", "standby")

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state, self.since = state, utcnow()


class Daemon:
    def __init__(self, config: Config, plugins: Plugins, store: Store | None = None, *,
                 delivery: bool = True) -> None:
        self.config = config
        self.plugins = plugins
        self.store = store or Store.open(config.settings.store)
        self.processor = Processor(config, plugins, states=self.store)
        self.pipeline = Pipeline(self.processor, self.store, config.settings.pipeline, plugins)
        self.stop_event = threading.Event()
        self.started_at = utcnow()
        used = {s.adapter for s in config.sources if s.enabled}  # the others stay unimported
        reports = {e.name: e.item.reports_connection for e in plugins.adapters if e.name in used}
        self.status: dict[str, SourceStatus] = {
            s.name: SourceStatus(s.name, s.adapter, reports=reports.get(s.adapter, False))
            for s in config.sources if s.enabled}
        self._threads: list[threading.Thread] = []
        self._adapters: dict[str, Adapter[Any]] = {}
        #: a fleet on the store (docs/fleet.md): a source runs while this daemon holds its
        #: lease; per source its thread, its stop event, and whether its input is accepted
        self.fleet: Fleet | None = None
        self._running: dict[str, threading.Thread] = {}
        self._stops: dict[str, threading.Event] = {}
        self._active: set[str] = set()
        self._barrier_stuck_until = 0.0  # monotonic: skip the stop barrier until then
        if fleet_wanted(config.settings.store, config.settings.fleet.enabled) and self.status:
            self._setup_fleet()
        self.extra_services: list[Any] = []  # delivery workers, health server: start()/stop()
        self.delivery: DeliveryService | None = None
        if config.sinks and delivery:  # else `floorstream deliver` runs it in its own process
            from floorstream.delivery.service import DeliveryService  # the outbox, workers

            self.delivery = DeliveryService(config, plugins, self.store)
            self.extra_services.append(self.delivery)
        #: store probe, outbox snapshot and self-alerts (started after the pipeline)
        self.monitor = Monitor(self)
        self.metrics = DaemonMetrics(self)
        #: retention: prunes in small batches, shortly after start and every interval
        from floorstream.retention import RetentionService
        self.retention = RetentionService(self)
        self.extra_services.append(self.retention)
        health = config.settings.health
        if health.port is not None:
            self.health_server = HealthServer(health.host, health.port, self.health,
                                              ready=self.readiness, metrics=self.metrics.render)
            self.extra_services.append(self.health_server)

        #: the web feed (docs/web.md) on a thread of its own, reading the store through its
        #: own connections; comments go through this daemon's pipeline
        self.web: Any = None
        if config.settings.web.port is not None:
            from floorstream.web.server import WebServer  # the web extra, needed only then

            self.web = WebServer(config, stream=self.stream())
            self.extra_services.append(self.web)
        #: people's e-mail digests of what they follow (docs/web.md), into the outbox
        self.digests: Any = None
        if config.settings.web.digest_sink is not None:
            from floorstream.delivery.personal import DigestService

            self.digests = DigestService(config, self.store)
            self.extra_services.append(self.digests)

    def stream(self) -> Stream:
        """A library handle publishing through this daemon's own pipeline (same detector
        state, same commits, same ``post_committed`` hooks)."""
        return Stream(self.config, self.plugins, pipeline=self.pipeline)

    def start(self) -> None:
        self.pipeline.start()
        if self.fleet is None:
            checkpoints = self.store.checkpoints()
            for source in self.config.sources:
                if source.enabled:
                    self._launch(source, checkpoints.get(source.name), self.stop_event)
        else:
            self.fleet.start()  # sources start as their leases come (_gain)
        self.monitor.start()
        for service in self.extra_services:
            service.start()
        log.info("daemon_started", sources=[s.name for s in self.config.sources if s.enabled],
                 store=self.store.engine.url.render_as_string(hide_password=True))

    def _launch(self, source: SourceConfig, checkpoint: str | None,
                stop: threading.Event) -> threading.Thread:
        entry = next(e for e in self.plugins.adapters if e.name == source.adapter)
        status = self.status[source.name]
        thread = threading.Thread(
            target=self._run_source, args=(source, entry.item, entry.plugin, checkpoint,
                                           status, stop),
            name=f"source-{source.name}", daemon=True)
        self._threads.append(thread)
        self._running[source.name] = thread
        thread.start()
        return thread

    def _run_source(self, source: SourceConfig, adapter_cls: type[Adapter[Any]], plugin: str,
                    checkpoint: str | None, status: SourceStatus,
                    stop: threading.Event) -> None:
        delay = 1.0
        bound = log.bind(source=source.name, adapter=source.adapter, plugin=plugin)
        while not stop.is_set():
            adapter: Adapter[Any] | None = None
            started = time.monotonic()
            try:
                context = AdapterContext(
                    source.name, checkpoint, self.plugins.decoders, bound,
                    lambda: self.store.checkpoints().get(source.name), health=status.health,
                    load_state=lambda keys: self.store.adapter_states(source.name, keys),
                    load_state_of=self.store.adapter_states,
                    leased=self.fleet is not None, interest=self._interest(source),
                    display_zone=self.config.settings.display.zone)
                adapter = adapter_cls(source, context)
                self._adapters[source.name] = adapter
                self.pipeline.limit_unacked(source.name, adapter.unacked_window())
                status.set_state("running")
                adapter.run(self.pipeline.emitter(source.name), stop)
                if not stop.is_set():
                    bound.info("source_finished")  # a finite source (a replay) ran out
                    status.set_state("finished")
                    return
                break
            except Exception as exc:
                status.last_error, status.last_error_at = repr(exc), utcnow()
                if status.reports:
                    status.health.disconnected(exc)  # its connection went down with it
                bound.exception("adapter_failed", error=repr(exc))
            finally:
                if adapter is not None:
                    try:
                        adapter.close()
                    except Exception as exc:
                        bound.warning("adapter_close_failed", error=repr(exc))
            if stop.is_set():
                break
            if time.monotonic() - started > 60:
                delay = 1.0
            status.set_state("restarting")
            status.restarts += 1
            stop.wait(delay)
            delay = min(delay * 2, 60.0)
            # resume from what is committed now, not from what was committed at start
            checkpoint = self.store.checkpoints().get(source.name, checkpoint)
        status.set_state("stopped")

    def _interest(self, source: SourceConfig) -> Interest:
        """What the source's detectors, summary templates and plugins read of its payloads
        (floorstream.interest): an adapter may read only that."""
        # built from the config as the pipeline builds them (its runtime of the source may be
        # gone meanwhile: a fleet builds it afresh when the lease comes); looked up by name,
        # which imports only the detectors the source uses
        detectors = [self.plugins.detectors.get(spec.name)(spec.options, source.name)
                     for spec in source.detect]
        hook = self.plugins.manager.hook
        return source_interest(
            detectors, source.summary,
            bool(hook.render_post.get_hookimpls() or hook.route_post.get_hookimpls()))

    def stop(self, timeout: float = 30.0) -> None:
        log.info("daemon_stopping")
        self.monitor.stop()  # it submits to the pipeline: stopped before the pipeline drains
        if self.fleet is not None:  # every source stopped and its lease given back
            self.fleet.stop(timeout)
        self.stop_event.set()
        for event in self._stops.values():
            event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        # drain and commit what the adapters queued first, so the outbox already holds the
        # last posts when delivery stops (what it cannot send now it sends on the next start)
        self.pipeline.stop(max(1.0, deadline - time.monotonic()))
        for service in reversed(self.extra_services):
            service.stop()
        self.store.close()
        log.info("daemon_stopped", posts=self.pipeline.committed_posts)

    def start_as_process(self) -> None:
        """:meth:`start`, for a process that runs this daemon until it stops (``run_forever``,
        ``floorstream run``): one malloc arena before the threads start
        (:mod:`floorstream.malloc`), the full collection and ``gc.freeze`` before any input
        can arrive, the young generations collected and frozen once started
        (:func:`settle_process`). An application that embeds a daemon calls :meth:`start` and
        keeps its allocator and collector to itself."""
        limit_malloc_arenas()
        settle_process()
        self.start()
        settle_process(started=True)

    def run_forever(self, duration: float | None = None) -> None:
        """Start, wait for SIGTERM/SIGINT (or ``duration`` seconds), stop."""
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal_received", signal=signal.Signals(signum).name)
            self.stop_event.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start_as_process()
            self.stop_event.wait(duration)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- a fleet on the store (docs/fleet.md) -----------------------------------------------

    def _setup_fleet(self) -> None:
        from floorstream.fleet.coordinator import Fleet  # only a fleet daemon needs these
        from floorstream.fleet.locks import limit_idle_transactions

        settings = self.config.settings.fleet
        managed = frozenset(self.status)
        self.fleet = Fleet(
            self.store.engine, self.store.engine.url.render_as_string(hide_password=False),
            [(s.name, s.adapter) for s in self.config.sources if s.enabled],
            takeover=settings.takeover, weight=settings.weight,
            max_sources=settings.max_sources, version=_version(), start=self._gain,
            halt=self._halt, stop=self._stop_source, stats=self._lease_stats)
        self.store.fence = self.fleet.fence
        # a commit cut off mid-transaction must not hold its lease rows for hours
        limit_idle_transactions(self.store.engine, self.fleet.timings.server_idle)
        self.pipeline.accepts = lambda name: name in self._active or name not in managed
        for name, status in self.status.items():
            self.processor.sources.pop(name, None)  # built afresh when its lease comes
            status.set_state("standby")

    def _gain(self, name: str, epoch: int) -> None:
        """This daemon holds ``name`` now (the lease row says so at ``epoch``): run it from
        the checkpoint committed now, with detector state as committed now."""
        source = next(s for s in self.config.sources if s.name == name)
        runtime = self.processor.fresh_runtime(name)
        with self.pipeline.lock:
            self.processor.sources[name] = runtime
        self._active.add(name)
        stop = self._stops[name] = threading.Event()
        self._launch(source, self.store.checkpoints().get(name), stop)
        log.info("source_leased", source=name, epoch=epoch)

    def _halt(self, name: str) -> None:
        """Stop ``name`` at once, from any thread: its input is no longer processed or acked
        and its adapter is told to stop."""
        self._active.discard(name)
        event = self._stops.get(name)
        if event is not None:
            event.set()

    def _stop_source(self, name: str) -> None:
        """Halt ``name`` and wait until its adapter ended and the pipeline went past what
        it had queued (dropped unacked: the next holder reads it again)."""
        self._halt(name)
        thread = self._running.pop(name, None)
        if thread is not None:
            thread.join(30.0)
            if thread.is_alive():
                log.error("source_stop_slow", source=name,
                          hint="its input is dropped; the adapter thread is still running")
        # the pipeline goes past what was queued (dropped: the gate is closed); when it is
        # stuck (a store cut off mid-commit) the first wait says so and the rest skip it
        if (self.pipeline.alive and time.monotonic() >= self._barrier_stuck_until
                and not self._barrier(5.0)):
            self._barrier_stuck_until = time.monotonic() + 30.0
            log.warning("fleet_barrier_timeout", source=name,
                        hint="the pipeline is stuck (the store?); its input is dropped")
        with self.pipeline.lock:
            self.processor.sources.pop(name, None)
        self.status[name].set_state("standby")
        log.info("source_unleased", source=name)

    def _barrier(self, timeout: float) -> bool:
        """Wait until the pipeline has handled everything queued before now."""
        done = threading.Event()
        self.pipeline.submit(Envelope(_BARRIER, ack=done.set))
        return done.wait(timeout)

    def _lease_stats(self) -> dict[str, tuple[float, datetime | None]]:
        now = time.time()
        stats: dict[str, tuple[float, datetime | None]] = {}
        for name in list(self._active):
            counters = self.pipeline.counter(name)
            last = counters.last_committed
            stats[name] = (counters.lag_now(now),
                           datetime.fromtimestamp(last, UTC) if last is not None else None)
        return stats

    # -- what it knows about itself ---------------------------------------------------------

    def source_report(self, name: str, now: float | None = None) -> dict[str, Any]:
        """One source as ``/healthz`` shows it (times ISO 8601 UTC)."""
        now = time.time() if now is None else now
        status = self.status[name]
        counters = self.pipeline.counter(name)
        runtime = self.processor.sources.get(name)
        health = status.health
        error, error_at = status.last_error, status.last_error_at
        if health.last_error_at is not None and (error_at is None
                                                 or health.last_error_at > error_at):
            error, error_at = health.last_error, health.last_error_at
        return {
            "adapter": status.adapter,
            "state": status.state,
            "state_since": iso(status.since),
            "connected": status.connected,
            "connection_since": iso(status.connection_since),
            "failed_attempts": health.failures if status.reports else None,
            "last_error": error,
            "last_error_at": iso(error_at),
            "restarts": status.restarts,
            "last_received_at": iso(counters.last_received),
            "last_committed_at": iso(counters.last_committed),
            "lag_seconds": round(counters.lag_now(now), 3),
            "received": counters.received,
            "posts": counters.posts,
            "quarantined": dict(counters.quarantined),
            "flood_suppressed": runtime.flood_suppressed if runtime is not None else 0,
        }

    def sink_reports(self) -> dict[str, dict[str, Any]]:
        """Per sink: the outbox rows (as the monitor last counted them) and, when this
        daemon delivers, what its workers saw."""
        outbox = self.monitor.outbox
        names = [s.name for s in self.config.sinks]
        names += sorted(n for n in outbox.sinks if n not in names)
        stats = self.sink_stats()
        now = time.time()
        reports: dict[str, dict[str, Any]] = {}
        for name in names:
            rows = outbox.sinks.get(name)
            oldest = rows.oldest_pending if rows is not None else None
            report: dict[str, Any] = {
                "pending": rows.pending if rows else 0,
                "held": rows.held if rows else 0,
                "sending": rows.sending if rows else 0,
                "failed": rows.failed if rows else 0,
                "oldest_pending_at": iso(oldest),
                "oldest_pending_age_seconds": (round(max(0.0, now - oldest.timestamp()), 3)
                                               if oldest is not None else None),
            }
            sink = stats.get(name)
            if sink is not None:
                since = sink.failing_since
                report.update({
                    "delivered": sink.delivered, "gave_up": sink.failed,
                    "failing": since is not None, "failing_since": iso(since),
                    "last_delivered_at": iso(sink.last_delivered_at),
                    "last_error": sink.last_error, "last_error_at": iso(sink.last_error_at)})
            reports[name] = report
        return reports

    def sink_stats(self) -> dict[str, Any]:
        """The delivery workers' :class:`~floorstream.delivery.stats.SinkStats` per sink (none
        when ``floorstream deliver`` delivers in its own process)."""
        if self.delivery is None:
            return {}
        return {group[0].name_: group[0].stats for group in self.delivery.groups if group}

    def health(self) -> dict[str, Any]:
        """Liveness and everything else known: ``status`` "ok" while the pipeline runs."""
        pipeline = self.pipeline
        ok = pipeline.alive and pipeline.error is None
        now = time.time()
        ready, reasons = self._readiness()
        return {
            "status": "ok" if ok else "failing",
            "ready": ready,
            "reasons": reasons,
            "time": iso(now),
            "started_at": iso(self.started_at),
            "pipeline": {"alive": pipeline.alive,
                         "error": repr(pipeline.error) if pipeline.error else None},
            "queue": {"depth": pipeline.queue.qsize(), "capacity": pipeline.queue.maxsize},
            "committed": {"batches": pipeline.committed_batches,
                          "posts": pipeline.committed_posts,
                          "last_commit": iso(pipeline.last_commit)},
            "store": self._store_report(),
            "sources": {name: self.source_report(name, now) for name in self.status},
            "sinks": self.sink_reports(),
            "alerts": self.monitor.open_alerts(),
            **({"fleet": self.fleet.report()} if self.fleet is not None else {}),
            **({"digests": self.digests.health()} if self.digests is not None else {}),
        }

    def readiness(self) -> dict[str, Any]:
        """``status`` "ready" when every enabled source is connected (or finished) and the
        store is reachable; else "not ready" and ``reasons``."""
        report = self.health()
        report["live"] = report["status"] == "ok"
        report["status"] = "ready" if report["ready"] else "not ready"
        return report

    def _readiness(self) -> tuple[bool, list[str]]:
        reasons: list[str] = []
        pipeline = self.pipeline
        if not pipeline.alive or pipeline.error is not None:
            reasons.append("the pipeline is not running"
                           + (f": {pipeline.error!r}" if pipeline.error else ""))
        store = self._store_report()
        if not store["reachable"]:
            reasons.append(f"the store is unreachable: {store['error'] or 'no answer'}")
        if self.fleet is not None and not self.fleet.connected:
            reasons.append("the fleet's store session is down"
                           + (f": {self.fleet.error}" if self.fleet.error else "")
                           + " (this daemon runs no source until it is back)")
        for name, status in self.status.items():
            if not status.ok:
                error = status.health.last_error or status.last_error
                reasons.append(f"source {name} is {status.state}, not connected since "
                               f"{iso(status.connection_since)}"
                               + (f": {error}" if error else ""))
        return not reasons, reasons

    def _store_report(self) -> dict[str, Any]:
        probe = self.monitor.store
        commit_error = self.pipeline.store_error
        reachable = probe.reachable and commit_error is None
        return {"reachable": reachable,
                "checked_at": iso(probe.checked_at),
                "error": commit_error or probe.error,
                "error_at": iso(self.pipeline.store_error_at if commit_error else probe.error_at),
                **({"wal": self.store.wal.report()} if self.store.wal is not None else {})}


def settle_process(*, started: bool = False) -> None:
    """For a process that runs a daemon until it stops (``run_forever``, ``floorstream run``):
    move every object alive (modules, config, the plugins' classes, compiled templates) to the
    collector's permanent generation (``gc.freeze``). A full collection during a steady stream
    then scans only what the stream allocates instead of the start's ~86,000 objects as well:
    on the peers harness's config that was a 130 ms pause of every thread (loaded machine)
    once in 50,000 messages, the worst latency of the run.

    Called twice. Before :meth:`Daemon.start` it collects fully first: that collection took
    34-38 ms, and run after the start it fell on the first messages of the stream the sources
    had just subscribed to (the one 18-32 ms p99 of a paced run in three). Once started
    (``started=True``) it collects only the young generations (what the start made, ~1 ms)
    and freezes again. (Not in :meth:`Daemon.start` itself: an application that embeds a
    daemon, or a test run that starts hundreds, owns its own collector.)"""
    if started:
        gc.collect(1)
    else:
        gc.collect()
    gc.freeze()


def _version() -> str:
    from floorstream import __version__
    return __version__
