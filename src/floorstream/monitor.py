"""The daemon's monitor thread: store probe, outbox counts, and self-alerts.

Every tick (a second at most) it asks the store ``SELECT 1``, unless a commit just went through;
every couple of seconds it counts the outbox rows per sink and status. The health endpoints
read those results instead of querying themselves, so a probe never hangs on a database outage.

Self-alerts (``alerts:`` in the config, docs/daemon.md): a source disconnected for longer than
``alerts.source_down``, a sink whose deliveries fail for longer than ``alerts.sink_failing``, or
a source quarantining more than ``alerts.quarantine_rate`` inputs a minute (averaged over
``alerts.quarantine_window``) gives one post to the admin team, and the end of it one recovery
post (a resolution of the first). The posts are events of the source ``@floorstream`` submitted
to the pipeline like every other input, so they are committed, routed and delivered like every
other post. Their ids derive from (what, its name, since when it is bad): submitting one twice
adds nothing. A bad stretch ends only once things stayed well for ``alerts.recover_after``, so
a connection that flaps gives one alert, not one per flap. Before posting, the monitor looks at
the last post of the alert's thread in the store: an alert still open from before a restart, or
raised by another daemon on the same store, is taken over instead of repeated (and one that
other daemon already cleared is not cleared twice).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from floorstream.health import iso
from floorstream.logs import get_logger
from floorstream.model import Event, Post, Severity
from floorstream.plugin import phrasing
from floorstream.processing import HEALTH_SOURCE, Envelope
from floorstream.store import schema

if TYPE_CHECKING:
    from floorstream.daemon import Daemon

__all__ = ["Monitor", "OutboxRows", "OutboxSnapshot", "StoreProbe", "Watch"]

log = get_logger("floorstream.monitor")

OUTBOX_EVERY = 2.0  # seconds between outbox counts
STALE_AFTER = 15.0  # a store probe older than this counts as no answer


@dataclass
class StoreProbe:
    """The last ``SELECT 1`` on the store (epoch seconds)."""

    ok: bool = True
    checked_at: float | None = None
    error: str | None = None
    error_at: float | None = None

    @property
    def reachable(self) -> bool:
        fresh = self.checked_at is not None and time.time() - self.checked_at < STALE_AFTER
        return self.ok and fresh


@dataclass
class OutboxRows:
    """One sink's outbox rows by status; ``oldest_pending``: the oldest not yet delivered."""

    pending: int = 0
    held: int = 0
    sending: int = 0
    failed: int = 0
    oldest_pending: datetime | None = None

    @property
    def waiting(self) -> int:
        return self.pending + self.held + self.sending


@dataclass
class OutboxSnapshot:
    sinks: dict[str, OutboxRows] = field(default_factory=dict)
    checked_at: float | None = None


@dataclass
class Watch:
    """One thing that can be alerted on: a source, a sink, a source's quarantine rate."""

    kind: str  # source_down | sink_failing | quarantine_rate
    name: str
    bad_since: float | None = None  # start of the current bad stretch (epoch seconds)
    good_since: float | None = None  # well again since (the stretch ends after recover_after)
    alert_id: str | None = None  # the open alert's post id
    raised_at: float | None = None
    detail: str = ""

    @property
    def thread(self) -> str:
        return f"floorstream:{self.kind}:{self.name}"


_NOUN = {"source_down": "source", "sink_failing": "sink", "quarantine_rate": "quarantine"}


class Monitor:
    """Started by the daemon after its pipeline, stopped before it (it submits events)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.settings = daemon.config.settings.alerts
        self.store = StoreProbe()
        self.outbox = OutboxSnapshot()
        self.watches: dict[tuple[str, str], Watch] = {}
        self.raised = {kind: 0 for kind in _NOUN}  # alerts posted, per kind (metrics)
        #: per source: (time, quarantined so far) samples over the quarantine window
        self._samples: dict[str, deque[tuple[float, int]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_outbox = 0.0

    @property
    def interval(self) -> float:
        """Seconds between ticks: a tenth of the shortest threshold, 0.1 to 1 (read anew each
        tick, so a reload that changes ``alerts:`` takes effect)."""
        s = self.settings
        shortest = min(s.source_down, s.sink_failing, s.recover_after or s.source_down)
        return min(1.0, max(0.1, shortest / 10))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self.check()
        if self.settings.enabled:
            self._load_open_alerts()
        self._thread = threading.Thread(target=self._run, name="floorstream-monitor",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as exc:  # the monitor must outlive whatever it watches
                log.exception("monitor_failed", error=repr(exc))

    def check(self, now: float | None = None) -> None:
        """One tick: probe the store, count the outbox when due, judge the alerts."""
        now = time.time() if now is None else now
        self._probe(now)
        if now >= self._next_outbox and self.daemon.config.sinks:  # no sinks, no outbox rows
            self._next_outbox = now + OUTBOX_EVERY
            self._count_outbox(now)
        if self.settings.enabled:
            self._judge(now)

    # -- store and outbox ------------------------------------------------------------------

    def _probe(self, now: float) -> None:
        last_commit = self.daemon.pipeline.last_commit
        if last_commit is not None and now - last_commit < self.interval and self.store.ok:
            self.store = StoreProbe(True, now, self.store.error, self.store.error_at)
            return  # a commit just went through: the store answers, no query needed
        try:
            with self.daemon.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            if self.store.ok:
                log.warning("store_unreachable", error=str(exc))
            self.store = StoreProbe(False, now, _clip(str(exc)), now)
            return
        if not self.store.ok:
            log.info("store_reachable")
        self.store = StoreProbe(True, now, self.store.error, self.store.error_at)

    def _count_outbox(self, now: float) -> None:
        d = schema.deliveries
        query = (select(d.c.sink, d.c.status, func.count(), func.min(d.c.created_at))
                 .where(d.c.status.in_(("pending", "held", "sending", "failed")))
                 .group_by(d.c.sink, d.c.status))
        try:
            with self.daemon.store.engine.connect() as conn:
                rows = list(conn.execute(query))
        except Exception as exc:
            log.debug("outbox_count_failed", error=str(exc))
            return
        sinks: dict[str, OutboxRows] = {}
        for sink, status, count, oldest in rows:
            found = sinks.setdefault(sink, OutboxRows())
            setattr(found, status, int(count))
            if status != "failed" and oldest is not None:
                oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
                if found.oldest_pending is None or oldest < found.oldest_pending:
                    found.oldest_pending = oldest
        self.outbox = OutboxSnapshot(sinks, now)

    # -- alerts ----------------------------------------------------------------------------

    def watch(self, kind: str, name: str) -> Watch:
        found = self.watches.get((kind, name))
        if found is None:
            found = self.watches[(kind, name)] = Watch(kind, name)
        return found

    def open_alerts(self) -> list[dict[str, Any]]:
        return [{"kind": w.kind, "name": w.name, "since": iso(w.bad_since),
                 "raised_at": iso(w.raised_at), "post": w.alert_id, "detail": w.detail}
                for w in list(self.watches.values()) if w.alert_id is not None]

    def _judge(self, now: float) -> None:
        s = self.settings
        daemon = self.daemon
        for name, status in list(daemon.status.items()):
            error = status.health.last_error or status.last_error or status.state
            self._update(self.watch("source_down", name), not status.ok,
                         status.connection_since.timestamp(), now, s.source_down,
                         _clip(error))
        for name, stats in daemon.sink_stats().items():
            since = stats.failing_since
            self._update(self.watch("sink_failing", name), since is not None,
                         since.timestamp() if since is not None else None, now,
                         s.sink_failing, _clip(stats.last_error or "deliveries fail"))
        if s.quarantine_rate is not None:
            for name in list(daemon.status):
                rate, reason = self._quarantine_rate(name, now)
                watch = self.watch("quarantine_rate", name)
                limit = s.quarantine_rate / 2 if watch.bad_since is not None else s.quarantine_rate
                self._update(watch, rate > limit, now, now, 0.0,
                             f"{phrasing.number(round(rate, 1))} a minute, mostly {reason}"
                             if reason else f"{phrasing.number(round(rate, 1))} a minute")

    def _quarantine_rate(self, source: str, now: float) -> tuple[float, str | None]:
        """Inputs quarantined a minute over the window, and the most frequent reason."""
        counters = self.daemon.pipeline.counter(source)
        total = sum(counters.quarantined.values())
        samples = self._samples.setdefault(source, deque([(now, total)]))
        samples.append((now, total))
        window = self.settings.quarantine_window
        while len(samples) > 1 and samples[1][0] <= now - window:
            samples.popleft()
        rate = (total - samples[0][1]) / (window / 60.0)
        reason = max(counters.quarantined, key=lambda r: counters.quarantined[r],
                     default=None)
        return rate, reason

    def _update(self, watch: Watch, bad: bool, since: float | None, now: float,
                threshold: float, detail: str) -> None:
        if bad:
            watch.good_since = None
            watch.detail = detail
            if watch.bad_since is None:
                watch.bad_since = min(since, now) if since is not None else now
            if watch.alert_id is None and now - watch.bad_since >= threshold:
                self._raise(watch, now)
        elif watch.bad_since is not None:
            if watch.good_since is None:
                watch.good_since = now
            if now - watch.good_since >= self.settings.recover_after:
                if watch.alert_id is not None:
                    self._clear(watch, now)
                watch.bad_since = watch.good_since = None

    def _raise(self, watch: Watch, now: float) -> None:
        assert watch.bad_since is not None
        last = self._last_post(watch)
        if last is not None and last.relation == "new":
            # another daemon on this store (a standby pair) raised it already: adopt it
            self._adopt(watch, last)
            return
        took = phrasing.duration(now - watch.bad_since)
        noun = _NOUN[watch.kind]
        if watch.kind == "source_down":
            summary, severity = f"Source {watch.name} down for {took}: {watch.detail}", \
                Severity.CRITICAL
        elif watch.kind == "sink_failing":
            summary, severity = (f"Sink {watch.name}: deliveries failing for {took}: "
                                 f"{watch.detail}"), Severity.CRITICAL
        else:
            limit = phrasing.number(self.settings.quarantine_rate or 0)
            summary, severity = (f"Source {watch.name} quarantines {watch.detail} (limit "
                                 f"{limit} a minute)"), Severity.WARNING
        event = self._event(watch, "alert", now, summary, severity, None)
        watch.alert_id, watch.raised_at = event.id, now
        self.raised[watch.kind] += 1
        log.warning("self_alert_raised", kind=watch.kind, **{noun: watch.name},
                    since=iso(watch.bad_since), detail=watch.detail, post=event.id)
        self.daemon.pipeline.submit(Envelope(HEALTH_SOURCE, event=event))

    def _clear(self, watch: Watch, now: float) -> None:
        assert watch.bad_since is not None and watch.alert_id is not None
        last = self._last_post(watch)
        if last is not None and (last.relation, last.refers_to) == ("resolution",
                                                                    watch.alert_id):
            watch.alert_id = watch.raised_at = None  # another daemon cleared it already
            return
        took = phrasing.duration((watch.good_since or now) - watch.bad_since)
        if watch.kind == "source_down":
            summary = f"Source {watch.name} is back after {took} down"
        elif watch.kind == "sink_failing":
            summary = f"Sink {watch.name} delivers again after {took} of failures"
        else:
            summary = f"Source {watch.name}: quarantine rate back to normal after {took}"
        event = self._event(watch, "recovery", now, summary, Severity.INFO, watch.alert_id)
        log.info("self_alert_cleared", kind=watch.kind, name=watch.name,
                 since=iso(watch.bad_since), alert=watch.alert_id, post=event.id)
        watch.alert_id = watch.raised_at = None
        self.daemon.pipeline.submit(Envelope(HEALTH_SOURCE, event=event))

    def _event(self, watch: Watch, what: str, now: float, summary: str, severity: Severity,
               clears: str | None) -> Event:
        since = iso(watch.bad_since)
        return Event.create(
            type=f"floorstream.{watch.kind}", source=HEALTH_SOURCE,
            subject=f"{_NOUN[watch.kind]} {watch.name}",
            position=f"{watch.kind}:{watch.name}:{since}:{what}",
            occurred_at=datetime.fromtimestamp(now, UTC), severity=severity,
            fields={"summary": summary, "kind": watch.kind, "name": watch.name,
                    "since": since, "detail": watch.detail},
            thread=watch.thread, clears=clears)

    def _load_open_alerts(self) -> None:
        """Alerts a previous run raised and did not clear: the last post of their thread."""
        daemon = self.daemon
        keys = [("source_down", n) for n in daemon.status]
        if daemon.delivery is not None:  # (its workers start after the monitor)
            keys += [("sink_failing", s.name) for s in daemon.config.sinks]
        if self.settings.quarantine_rate is not None:
            keys += [("quarantine_rate", n) for n in daemon.status]
        for kind, name in keys:
            watch = self.watch(kind, name)
            last = self._last_post(watch)
            if last is not None and last.relation == "new":
                self._adopt(watch, last)

    def _last_post(self, watch: Watch) -> Post | None:
        """The newest post of the watch's thread in the store (None also when unreadable)."""
        try:
            found = self.daemon.store.thread(watch.thread, limit=1)
        except Exception as exc:
            log.warning("alert_thread_unreadable", thread=watch.thread, error=str(exc))
            return None
        return found[-1] if found else None

    def _adopt(self, watch: Watch, post: Post) -> None:
        """Take over an open alert found in the store (a previous run's, another daemon's)."""
        since = post.fields.get("since")
        try:
            watch.bad_since = datetime.fromisoformat(str(since)).timestamp()
        except ValueError:
            watch.bad_since = post.occurred_at.timestamp()
        watch.alert_id, watch.raised_at = post.id, post.created_at.timestamp()
        watch.detail = str(post.fields.get("detail") or watch.detail)
        log.info("self_alert_open", kind=watch.kind, name=watch.name, since=since, post=post.id)


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
