"""Retention: what floorstream wrote is deleted once it is older than ``retention:`` says.

Six kinds (docs/daemon.md, "Retention"): posts (with their ``fs_post_teams`` rows and
their outbox rows), delivered outbox rows, failed outbox rows, quarantined input, detector
state of subjects gone quiet, and the rows of ``fs_erp_changes`` an ERP source consumed (in
the ERP's database, through :meth:`Adapter.prune <floorstream.plugin.Adapter.prune>`).

Everything goes in small transactions (``retention.batch`` rows, 1,000 by default) with a
short rest between them, so a pipeline commit never waits behind a prune for long
(``bench/prune.py`` measures it). Rules that keep it safe:

- a post whose outbox still holds a row that is not ``delivered`` or ``failed`` (pending,
  held for a digest, being sent) is never deleted, whatever its age: the check is part of
  the ``DELETE`` itself, so a row made pending again meanwhile (``deliveries retry``) wins;
- a delivered row that holds the service's message reference (a Slack ``ts``, a Message-ID)
  stays while its post does: a later update or resolution threads to it;
- detector state goes per subject, all its detectors at once, only when none of them changed
  for the whole period; source-wide rows (subject ``""``: the replay guard) stay;
- the walk goes by id, oldest first, and stops at the first page with nothing old in it, so
  a run costs what it deletes plus one page, not a scan of the table.

The daemon runs :class:`RetentionService` (a thread; first pass shortly after start, then
every ``retention.interval``), ``floorstream prune [--dry-run]`` runs :func:`prune` once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, exists, func, select, text, tuple_

from floorstream.config.settings import RetentionSettings
from floorstream.logs import get_logger
from floorstream.model import utcnow
from floorstream.plugin import Progress, PruneContext, SourceConfig
from floorstream.progress import logged
from floorstream.store import schema
from floorstream.store.store import Store

if TYPE_CHECKING:
    from floorstream.daemon import Daemon
    from floorstream.plugins import Plugins

__all__ = ["KINDS", "PruneReport", "RetentionService", "prune"]

log = get_logger("floorstream.retention")

#: the kinds in the order they are pruned (outbox rows before posts: a post whose failed
#: rows just went can go in the same run)
KINDS = ("quarantine", "failed", "delivered", "posts", "detector_state", "erp_changes")
#: outbox states after which a row no longer needs its post
_DONE = ("delivered", "failed")
#: source of the daemon's own alerts (processing.HEALTH_SOURCE): its state is not pruned
_HEALTH_SOURCE = "@floorstream"

#: progress of one kind: (kind, total or None) → a Progress
ProgressFactory = Callable[[str, "int | None"], Progress]


@dataclass
class PruneReport:
    """What one run deleted (or, dry, would delete), per kind."""

    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    #: old posts kept because a delivery of theirs is still pending
    kept_pending: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def prune(store: Store, settings: RetentionSettings, *, sources: Iterable[SourceConfig] = (),
          plugins: Plugins | None = None, dry_run: bool = False, now: datetime | None = None,
          stop: threading.Event | None = None, progress: ProgressFactory | None = None,
          kinds: Iterable[str] = KINDS, writer: Any = None) -> PruneReport:
    """One retention pass over every kind ``settings`` gives a duration to. ``writer``: the
    lock the pipeline holds while it processes and commits a batch (the daemon's), taken for
    each transaction on SQLite (see :class:`Pruner`)."""
    return Pruner(store, settings, sources=sources, plugins=plugins, dry_run=dry_run, now=now,
                  stop=stop, progress=progress, writer=writer).run(kinds)


class Pruner:
    def __init__(self, store: Store, settings: RetentionSettings, *,
                 sources: Iterable[SourceConfig] = (), plugins: Plugins | None = None,
                 dry_run: bool = False, now: datetime | None = None,
                 stop: threading.Event | None = None,
                 progress: ProgressFactory | None = None, writer: Any = None) -> None:
        self.store = store
        self.engine = store.engine
        self.settings = settings
        self.sources = list(sources)
        self.plugins = plugins
        self.dry_run = dry_run
        self.now = now or utcnow()
        self.stop = stop or threading.Event()
        self.progress = progress or (lambda kind, total: logged(
            log, "retention_progress", total, kind=kind, dry_run=dry_run))
        #: rows per transaction now: starts small, grows while transactions stay under
        #: ``hold`` (up to ``retention.batch``), shrinks when one takes longer
        self.batch = min(settings.batch, 100)
        self.hold = settings.hold if settings.hold is not None else (
            0.01 if self.engine.dialect.name == "sqlite" else 0.2)
        self._started = 0.0
        #: SQLite has one writer: a commit that finds it busy sleeps in SQLite's backoff
        #: steps (1, 2, 5, 10, 15 … ms) well past the end of the prune's transaction. In the
        #: daemon each transaction takes the pipeline's own lock instead, so a batch waits
        #: for the prune's short transaction and goes on the moment it ends.
        self.writer = writer if self.engine.dialect.name == "sqlite" else None
        self._postgres = self.engine.dialect.name == "postgresql"

    def run(self, kinds: Iterable[str] = KINDS) -> PruneReport:
        started = time.monotonic()
        report = PruneReport(dry_run=self.dry_run)
        for kind in kinds:
            keep = getattr(self.settings, kind)
            if keep is None or self.stop.is_set():
                continue
            cutoff = self.now - timedelta(seconds=keep)
            try:
                report.counts[kind] = getattr(self, f"_{kind}")(cutoff, report)
            except Exception as exc:  # one kind failing must not keep the others
                report.errors[kind] = f"{type(exc).__name__}: {exc}"
                log.error("retention_failed", kind=kind, error=repr(exc))
        report.seconds = round(time.monotonic() - started, 3)
        return report

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction of the pass, timed (see :meth:`_rest`), under the pipeline's lock
        on SQLite when there is one."""
        with self.writer if self.writer is not None else nullcontext():
            self._started = time.monotonic()
            with self.engine.begin() as conn:
                if self._postgres:
                    # a prune lost in a crash is done again by the next pass: its commit
                    # need not wait for the WAL flush the pipeline's commits wait for
                    conn.execute(text("SET LOCAL synchronous_commit = off"))
                yield conn

    def _rest(self) -> None:
        """After a transaction that deleted something: size the next one so it holds the
        database at most ``hold`` (SQLite has one writer: a pipeline commit waits for the
        whole of it), then rest ``pause``."""
        took = time.monotonic() - self._started
        if took > self.hold:
            self.batch = max(50, int(self.batch * self.hold / took))
        elif took < self.hold / 2:
            self.batch = min(self.settings.batch, self.batch * 2)
        # rest at least as long as the transaction took: the prune has the database (and
        # the machine's cores) at most half of the time
        rest = max(self.settings.pause, took if self.settings.pause > 0 else 0.0)
        if rest > 0:
            self.stop.wait(rest)

    def _count(self, query: Any) -> int | None:
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one())
        except Exception:  # a total is nice to have; the prune does not depend on it
            return None

    def _count_older(self, cutoff: datetime) -> int | None:
        """How many posts were made before ``cutoff`` (the progress total), without reading
        every post: posts are numbered as they are made, so the old ones are a prefix of
        ``seq``, whose end a bisection finds in ~20 primary-key probes for a million posts.
        ``created_at`` has no index, and a count over it scanned the whole table on every
        pass (0.3 s of CPU for 1,000,000 posts on SQLite, usually to find none)."""
        p = schema.posts
        try:
            with self.engine.connect() as conn:
                low, high = conn.execute(select(func.min(p.c.seq), func.max(p.c.seq))).one()
                if low is None:
                    return 0

                def made(seq: int) -> datetime:  # the first post at or after seq
                    found: datetime = conn.execute(
                        select(p.c.created_at).where(p.c.seq >= seq).order_by(p.c.seq)
                        .limit(1)).scalar_one()
                    return found.replace(tzinfo=UTC) if found.tzinfo is None else found

                if made(low) >= cutoff:
                    return 0
                while low < high:  # made(low) < cutoff: find the last such seq
                    middle = (low + high + 1) // 2
                    if made(middle) < cutoff:
                        low = middle
                    else:
                        high = middle - 1
                return int(conn.execute(select(func.count()).select_from(p).where(
                    p.c.seq <= low)).scalar_one())
        except Exception:  # a total is nice to have; the prune does not depend on it
            return None

    # -- walking a table by its id, a page at a time ---------------------------------------------

    def _page_end(self, conn: Any, id_col: Any, after: int) -> int | None:
        """The highest id of the next ``batch`` rows past ``after`` (None: no more rows).

        Every statement of a pass works on the id range (after, end]: a fixed statement with
        three parameters, not a list of a thousand ids, so the database does the work and the
        daemon's pipeline thread (which shares the interpreter) hardly notices."""
        page = select(id_col.label("i")).where(id_col > after).order_by(id_col).limit(
            self.batch).subquery()
        found = conn.execute(select(func.max(page.c.i))).scalar()
        return None if found is None else int(found)

    # -- posts ------------------------------------------------------------------------------

    def _posts(self, cutoff: datetime, report: PruneReport) -> int:
        """Posts made before ``cutoff`` whose outbox holds nothing still to send; with them
        their team rows and their (delivered or failed) outbox rows, in one transaction per
        page of ``batch`` posts."""
        p, pt, d = schema.posts, schema.post_teams, schema.deliveries
        total = self._count_older(cutoff)
        progress = self.progress("posts", total)
        pending = exists().where(d.c.post_id == p.c.id, d.c.status.not_in(_DONE))
        done = 0
        last = 0
        while not self.stop.is_set():
            with self._begin() as conn:
                end = self._page_end(conn, p.c.seq, last)
                if end is None:
                    break
                span = and_(p.c.seq > last, p.c.seq <= end)
                old = int(conn.execute(select(func.count()).select_from(p).where(
                    span, p.c.created_at < cutoff)).scalar_one())
                if not old:
                    break  # posts are numbered as they are made: the rest are newer
                if self.dry_run:
                    gone = int(conn.execute(select(func.count()).select_from(p).where(
                        span, p.c.created_at < cutoff, ~pending)).scalar_one())
                else:
                    # the outbox rows of this page's posts lie in one id range (a post and
                    # its rows are committed together): noted before the posts go
                    first, final = conn.execute(
                        select(func.min(d.c.id), func.max(d.c.id)).select_from(
                            d.join(p, p.c.id == d.c.post_id)).where(span)).one()
                    # the pending check is part of the DELETE: a row made pending again
                    # meanwhile (deliveries retry) keeps its post
                    gone = int(conn.execute(delete(p).where(
                        span, p.c.created_at < cutoff, ~pending)).rowcount)
                    if gone:
                        orphan = ~exists().where(p.c.seq == pt.c.post_seq)
                        conn.execute(delete(pt).where(pt.c.post_seq > last,
                                                      pt.c.post_seq <= end, orphan))
                        if first is not None:
                            conn.execute(delete(d).where(
                                d.c.id >= first, d.c.id <= final, d.c.status.in_(_DONE),
                                ~exists().where(p.c.id == d.c.post_id)))
                report.kept_pending += old - gone
            last = end
            done += gone
            progress.advance(old)
            if gone and not self.dry_run:
                self._rest()
        progress.finish(deleted=done)
        return done

    # -- the outbox -------------------------------------------------------------------------

    def _delivered(self, cutoff: datetime, report: PruneReport) -> int:
        d = schema.deliveries
        doomed = and_(d.c.status == "delivered", d.c.delivered_at < cutoff,
                      d.c.remote_ref.is_(None))
        return self._outbox("delivered", cutoff, doomed)

    def _failed(self, cutoff: datetime, report: PruneReport) -> int:
        d = schema.deliveries
        return self._outbox("failed", cutoff, and_(d.c.status == "failed",
                                                    d.c.created_at < cutoff))

    def _outbox(self, kind: str, cutoff: datetime, doomed: Any) -> int:
        """Outbox rows matching ``doomed``, walked by id; a row is made before it is
        delivered or failed, so a page with no row made before ``cutoff`` ends the walk."""
        d = schema.deliveries
        progress = self.progress(kind, self._count(
            select(func.count()).select_from(d).where(doomed)))
        done = 0
        last = 0
        while not self.stop.is_set():
            with self._begin() as conn:
                end = self._page_end(conn, d.c.id, last)
                if end is None:
                    break
                span = and_(d.c.id > last, d.c.id <= end)
                if not conn.execute(select(exists().where(span, d.c.created_at < cutoff))
                                    ).scalar():
                    break
                # the condition is part of the DELETE: a row retried meanwhile stays
                if self.dry_run:
                    gone = int(conn.execute(select(func.count()).select_from(d).where(
                        span, doomed)).scalar_one())
                else:
                    gone = int(conn.execute(delete(d).where(span, doomed)).rowcount)
            last = end
            done += gone
            progress.advance(gone)
            if gone and not self.dry_run:
                self._rest()
        progress.finish(deleted=done)
        return done

    # -- quarantine ---------------------------------------------------------------------------

    def _quarantine(self, cutoff: datetime, report: PruneReport) -> int:
        q = schema.quarantine
        old = q.c.received_at < cutoff
        progress = self.progress("quarantine", self._count(
            select(func.count()).select_from(q).where(old)))
        done = 0
        last = 0
        while not self.stop.is_set():
            with self._begin() as conn:
                end = self._page_end(conn, q.c.id, last)
                if end is None:
                    break
                span = and_(q.c.id > last, q.c.id <= end)
                if self.dry_run:
                    gone = int(conn.execute(select(func.count()).select_from(q).where(
                        span, old)).scalar_one())
                else:
                    gone = int(conn.execute(delete(q).where(span, old)).rowcount)
            last = end
            if not gone:
                break
            done += gone
            progress.advance(gone)
            if not self.dry_run:
                self._rest()
        progress.finish(deleted=done)
        return done

    # -- detector state -------------------------------------------------------------------------

    def _detector_state(self, cutoff: datetime, report: PruneReport) -> int:
        """Subjects none of whose detectors changed since ``cutoff``: all their rows go.
        Walks the rows changed before ``cutoff`` in (updated_at, key) order (the v5 index)."""
        t = schema.detector_state
        old_rows = and_(t.c.updated_at < cutoff, t.c.subject != "",
                        t.c.source != _HEALTH_SOURCE)
        progress = self.progress("detector_state", self._count(
            select(func.count()).select_from(t).where(old_rows)))
        key = tuple_(t.c.updated_at, t.c.source, t.c.subject, t.c.detector)
        last: tuple[Any, ...] | None = None
        done = 0
        while not self.stop.is_set():
            with self._begin() as conn:
                query = (select(t.c.updated_at, t.c.source, t.c.subject, t.c.detector)
                         .where(old_rows).order_by(t.c.updated_at, t.c.source, t.c.subject,
                                                   t.c.detector).limit(self.batch))
                if last is not None:
                    query = query.where(key > tuple_(*last))
                page = list(conn.execute(query))
                if not page:
                    break
                last = tuple(page[-1])
                pairs = list(dict.fromkeys((r.source, r.subject) for r in page))
                pair = tuple_(t.c.source, t.c.subject)
                fresh = {(r.source, r.subject) for r in conn.execute(
                    select(t.c.source, t.c.subject).where(
                        pair.in_(pairs), t.c.updated_at >= cutoff).distinct())}
                quiet = [x for x in pairs if x not in fresh]
                rows = 0
                if quiet:
                    if self.dry_run:
                        rows = int(conn.execute(select(func.count()).select_from(t).where(
                            pair.in_(quiet))).scalar_one())
                    else:
                        # (a row changed meanwhile stays: the daemon writes it again anyway)
                        rows = int(conn.execute(delete(t).where(
                            pair.in_(quiet), t.c.updated_at < cutoff)).rowcount)
            done += rows
            progress.advance(len(page))
            if rows and not self.dry_run:
                self._rest()
        progress.finish(deleted=done)
        return done

    # -- the sources' own logs (fs_erp_changes) -----------------------------------------------

    def _erp_changes(self, cutoff: datetime, report: PruneReport) -> int:
        if self.plugins is None:
            return 0
        checkpoints = self.store.checkpoints()
        done = 0
        for source in self.sources:
            if not source.enabled or self.stop.is_set():
                continue
            try:
                adapter = self.plugins.adapters.get(source.adapter)
            except Exception:
                continue
            context = PruneContext(
                source=source.name, checkpoint=checkpoints.get(source.name),
                older_than=cutoff, batch=self.batch, dry_run=self.dry_run,
                log=log.bind(source=source.name), stop=self.stop, pause=self.settings.pause)
            try:
                done += int(adapter.prune(source, context))
            except Exception as exc:  # an ERP database away: its rows wait for the next run
                report.errors[f"erp_changes:{source.name}"] = f"{type(exc).__name__}: {exc}"
                log.warning("retention_source_failed", source=source.name, error=repr(exc))
        return done


class RetentionService:
    """The daemon's retention thread: a pass shortly after start, then every
    ``retention.interval`` (read again before each pass, so a reload applies). Stops between
    two batches when the daemon stops."""

    first_delay = 2.0

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # passes done (metrics)
        self.last_report: PruneReport | None = None
        self.last_run_at: datetime | None = None
        self.last_error: str | None = None
        self.wake = threading.Event()  # set to run a pass now (tests, a reload)

    @property
    def settings(self) -> RetentionSettings:
        return self.daemon.config.settings.retention

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="floorstream-retention",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        delay = self.first_delay
        while True:
            self.wake.wait(delay)
            self.wake.clear()
            if self._stop.is_set() or self.daemon.stop_event.is_set():
                return
            self.run_once()
            delay = self.settings.interval

    def run_once(self) -> PruneReport:
        daemon = self.daemon
        try:
            report = prune(daemon.store, self.settings, sources=daemon.config.sources,
                           plugins=daemon.plugins, stop=self._stop,
                           writer=daemon.pipeline.lock)
        except Exception as exc:
            self.last_error = repr(exc)
            log.error("retention_failed", error=repr(exc))
            return PruneReport(errors={"*": repr(exc)})
        self.runs += 1
        self.last_report, self.last_run_at = report, utcnow()
        self.last_error = "; ".join(f"{k}: {v}" for k, v in report.errors.items()) or None
        log.info("retention_run", deleted=report.counts, kept_pending=report.kept_pending,
                 seconds=report.seconds, errors=report.errors or None)
        return report
