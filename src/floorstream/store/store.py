"""The Store: every read and write of floorstream's own tables.

The one write that matters is :meth:`Store.commit`: posts, their team rows, outbox rows,
checkpoints, detector state and quarantined input of one batch go in one transaction. Either
all of a batch is durable or none of it, which is what lets adapters ack only after commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import make_url

from floorstream.model import Post, Severity, utcnow
from floorstream.store import schema, sqlitecommit
from floorstream.store.dialect import insert_ignore, upsert
from floorstream.store.migrations import ensure_schema

if TYPE_CHECKING:
    from floorstream.store.walcheckpoint import WalCheckpointer

__all__ = ["ADAPTER_STATE", "CommitBatch", "QuarantineItem", "QuarantinedRow", "Store"]

#: the ``detector`` column of an adapter's own keyed state rows (``Emitter.checkpoint(state=)``)
#: in ``fs_detector_state``: no detector key starts with "@"
ADAPTER_STATE = "@adapter"


@dataclass(frozen=True)
class QuarantineItem:
    """Input that could not be decoded or processed, kept as received."""

    source: str
    raw: bytes
    error: str
    position: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    received_at: datetime = field(default_factory=utcnow)

    @property
    def key(self) -> str:
        """Same input at the same position → same key, so a replay does not quarantine twice."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self.source.encode())
        digest.update(b"\x1f" + (self.position or "").encode() + b"\x1f")
        digest.update(self.raw)
        if self.position is None:
            digest.update(self.received_at.isoformat().encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class QuarantinedRow:
    id: int
    source: str
    position: str | None
    error: str
    raw: bytes
    context: dict[str, Any]
    received_at: datetime


@dataclass
class CommitBatch:
    """Everything one pipeline batch writes, committed together."""

    posts: list[Post] = field(default_factory=list)
    #: (post id, team, sink name) outbox rows
    deliveries: list[tuple[str, str, str]] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    #: (source, subject, detector key) → state
    states: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    quarantined: list[QuarantineItem] = field(default_factory=list)
    #: quarantine rows a replay got through: deleted in the same transaction as its posts
    unquarantined: list[int] = field(default_factory=list)
    #: quarantine rows a replay found still failing: row id → the error now
    requarantined: dict[int, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.posts or self.deliveries or self.checkpoints or self.states
                    or self.quarantined or self.unquarantined or self.requarantined)


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    """The writer's connections while a :class:`WalCheckpointer` checkpoints instead."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """floorstream's tables in one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        #: called first inside every commit's transaction; may strip from the batch the work of
        #: sources this daemon no longer holds (a fleet's commit fence, floorstream.fleet)
        self.fence: Callable[[Connection, CommitBatch], None] | None = None
        #: SQLite: checkpoints the log off the commit path while a pipeline runs
        self.wal: WalCheckpointer | None = None

    @classmethod
    def open(cls, url: str, *, create: bool = True, **engine_args: Any) -> Store:
        """Connect, and create or upgrade the schema (``create=False`` only checks it)."""
        parsed = make_url(url)
        engine_args.setdefault("json_serializer", schema.json_text)
        engine_args.setdefault("json_deserializer", orjson.loads)
        if parsed.get_backend_name() == "sqlite":
            engine_args.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        else:
            engine_args.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **engine_args)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if create:
            with engine.begin() as conn:
                ensure_schema(conn)
        return store

    def close(self) -> None:
        self.checkpoint_in_commits()
        self.engine.dispose()

    def checkpoint_in_background(self) -> WalCheckpointer | None:
        """For a long-running writer (the daemon's pipeline) on a SQLite file: WAL checkpoints
        on a thread of their own, not inside commits (why: :mod:`.walcheckpoint`). Until
        :meth:`checkpoint_in_commits` the engine's connections do not checkpoint. Other
        stores, and an in-memory SQLite, are left alone (None)."""
        if self.wal is not None:
            return self.wal
        database = self.engine.url.database
        if self.dialect != "sqlite" or not database or database == ":memory:" \
                or database.startswith("file:") or self.engine.url.query.get("uri"):
            return None
        from floorstream.store.walcheckpoint import WalCheckpointer

        self.wal = WalCheckpointer(database)
        event.listen(self.engine, "connect", _no_autocheckpoint)
        self.engine.dispose()  # pooled connections reconnect with the setting
        self.wal.start()
        return self.wal

    def checkpoint_in_commits(self) -> None:
        """Back to SQLite's own checkpoints, after a last one of the background thread."""
        wal, self.wal = self.wal, None
        if wal is None:
            return
        wal.stop()
        event.remove(self.engine, "connect", _no_autocheckpoint)
        self.engine.dispose()

    # -- writes ---------------------------------------------------------------------------

    def commit(self, batch: CommitBatch) -> list[Post]:
        """Write a batch in one transaction; returns the posts that were new (not replays)."""
        if not batch:
            return []
        now = utcnow()
        with self.engine.begin() as conn:
            if self.fence is not None:
                self.fence(conn, batch)
            new_posts: list[Post] = []
            db = conn.connection.driver_connection if self.dialect == "sqlite" else None
            if db is not None:  # the driver's cursor, same statements (why: .sqlitecommit)
                stamp = sqlitecommit.stamp(now, conn.dialect)
                with sqlitecommit.driver_errors(conn.dialect):
                    if batch.posts:
                        new_posts = sqlitecommit.write_posts(db, batch.posts, conn.dialect)
                    sqlitecommit.write_checkpoints(db, batch.checkpoints, stamp)
                    sqlitecommit.write_states(db, batch.states, stamp)
            else:
                new_posts = self._write_posts(conn, batch.posts)
                upsert(conn, schema.checkpoints, [
                    {"source": s, "position": p, "updated_at": now}
                    for s, p in batch.checkpoints.items()], keys=("source",))
                upsert(conn, schema.detector_state, [
                    {"source": s, "subject": subj, "detector": d, "state": data,
                     "updated_at": now}
                    for (s, subj, d), data in batch.states.items()],
                    keys=("source", "subject", "detector"))
            if batch.deliveries:
                fresh = {p.id for p in new_posts}
                insert_ignore(conn, schema.deliveries, [
                    {"post_id": post_id, "team": team, "sink": sink, "status": "pending",
                     "attempts": 0, "next_attempt_at": now, "created_at": now}
                    for post_id, team, sink in batch.deliveries if post_id in fresh])
            insert_ignore(conn, schema.quarantine, [
                {"key": q.key, "source": q.source, "position": q.position, "error": q.error,
                 "raw": q.raw, "context": q.context, "received_at": q.received_at}
                for q in batch.quarantined])
            q = schema.quarantine
            for chunk in iter_chunks(batch.unquarantined, 500):
                conn.execute(delete(q).where(q.c.id.in_(list(chunk))))
            if batch.requarantined:
                conn.execute(update(q).where(q.c.id == bindparam("row_id")).values(
                    error=bindparam("new_error")),
                    [{"row_id": i, "new_error": e} for i, e in batch.requarantined.items()])
        if self.wal is not None:
            self.wal.written()
        return new_posts

    @staticmethod
    def _write_posts(conn: Connection, posts: list[Post]) -> list[Post]:
        """PostgreSQL and MariaDB: the posts not already stored, and their team rows."""
        if not posts:
            return []
        existing = set(conn.execute(select(schema.posts.c.id).where(
            schema.posts.c.id.in_([p.id for p in posts]))).scalars())
        new_posts: list[Post] = []
        for post in posts:
            if post.id not in existing:
                existing.add(post.id)
                new_posts.append(post)
        insert_ignore(conn, schema.posts, [_post_row(p) for p in new_posts])
        if not new_posts:
            return new_posts
        seqs = {post_id: seq for post_id, seq in conn.execute(
            select(schema.posts.c.id, schema.posts.c.seq)
            .where(schema.posts.c.id.in_([p.id for p in new_posts])))}
        insert_ignore(conn, schema.post_teams, [
            {"team": team, "post_id": p.id, "post_seq": seqs[p.id],
             "severity": int(p.severity), "created_at": p.created_at}
            for p in new_posts for team in p.teams])
        return new_posts

    # -- reads used by the pipeline ---------------------------------------------------------

    def checkpoints(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.checkpoints.c.source,
                                       schema.checkpoints.c.position))
            return {source: position for source, position in rows}

    def detector_states(self, source: str, detectors: Collection[str] | None = None
                        ) -> dict[tuple[str, str], dict[str, Any]]:
        """(subject, detector key) → state for one source, optionally for some detectors."""
        t = schema.detector_state
        query = select(t.c.subject, t.c.detector, t.c.state).where(t.c.source == source)
        if detectors is not None:
            query = query.where(t.c.detector.in_(list(detectors)))
        with self.engine.connect() as conn:
            rows = conn.execute(query)
            return {(subject, detector): state for subject, detector, state in rows}

    def subject_states(self, source: str, subject: str) -> dict[str, dict[str, Any]]:
        """detector key → state for one subject of one source."""
        t = schema.detector_state
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.detector, t.c.state)
                                .where(t.c.source == source, t.c.subject == subject))
            return {detector: state for detector, state in rows}

    def subjects_states(self, source: str, subjects: Collection[str]
                        ) -> dict[str, dict[str, dict[str, Any]]]:
        """subject → detector key → state for many subjects of one source (chunked IN)."""
        t = schema.detector_state
        names = list(subjects)
        found: dict[str, dict[str, dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(names), 500):
                rows = conn.execute(select(t.c.subject, t.c.detector, t.c.state).where(
                    t.c.source == source, t.c.subject.in_(names[start:start + 500])))
                for subject, detector, state in rows:
                    found.setdefault(subject, {})[detector] = state
        return found

    def adapter_states(self, source: str, keys: Collection[str]) -> dict[str, dict[str, Any]]:
        """key → row of an adapter's own state (``AdapterContext.load_state``), through the
        primary key (source, subject, detector), 500 keys a query."""
        names = list(keys)
        found: dict[str, dict[str, Any]] = {}
        query = _ADAPTER_STATES
        with self.engine.connect() as conn:
            for start in range(0, len(names), 500):
                rows = conn.execute(query, {"source": source, "keys": names[start:start + 500]})
                for subject, state in rows:
                    found[subject] = state
        return found

    # -- reads for people -------------------------------------------------------------------

    def feed(self, team: str, *, limit: int = 50, since: datetime | None = None,
             until: datetime | None = None, min_severity: Severity | None = None,
             after_seq: int | None = None) -> list[Post]:
        """A team's posts, newest first (or oldest first after ``after_seq``, for --follow)."""
        pt = schema.post_teams
        query = select(pt.c.post_seq).where(pt.c.team == team)
        if min_severity is not None:
            query = query.where(pt.c.severity >= int(min_severity))
        if since is not None:
            query = query.where(pt.c.created_at >= since)
        if until is not None:
            query = query.where(pt.c.created_at < until)
        if after_seq is not None:
            query = query.where(pt.c.post_seq > after_seq).order_by(pt.c.post_seq.asc())
        else:
            query = query.order_by(pt.c.post_seq.desc())
        query = query.limit(limit)
        with self.engine.connect() as conn:
            seqs = list(conn.execute(query).scalars())
            return self._posts_by_seq(conn, seqs)

    def _posts_by_seq(self, conn: Any, seqs: Sequence[int]) -> list[Post]:
        if not seqs:
            return []
        p, pt = schema.posts, schema.post_teams
        rows = {r["seq"]: r for r in conn.execute(select(p).where(p.c.seq.in_(seqs))).mappings()}
        teams: dict[str, list[str]] = {}
        for post_id, team in conn.execute(
                select(pt.c.post_id, pt.c.team).where(pt.c.post_seq.in_(seqs))):
            teams.setdefault(post_id, []).append(team)
        return [_row_post(rows[s], teams) for s in seqs if s in rows]

    def post(self, post_id: str) -> Post | None:
        with self.engine.connect() as conn:
            seq = conn.execute(select(schema.posts.c.seq)
                               .where(schema.posts.c.id == post_id)).scalar_one_or_none()
            found = self._posts_by_seq(conn, [seq]) if seq is not None else []
        return found[0] if found else None

    def thread(self, thread: str, *, limit: int = 200) -> list[Post]:
        """A thread's posts, oldest first: one story across sources (an index lookup)."""
        p = schema.posts
        with self.engine.connect() as conn:
            seqs = list(conn.execute(select(p.c.seq).where(p.c.thread == thread)
                                     .order_by(p.c.seq.desc()).limit(limit)).scalars())
            return self._posts_by_seq(conn, seqs[::-1])

    def replies(self, post_id: str) -> list[Post]:
        """The posts that update, resolve or retract ``post_id``, oldest first."""
        p = schema.posts
        with self.engine.connect() as conn:
            seqs = list(conn.execute(select(p.c.seq).where(p.c.refers_to == post_id)
                                     .order_by(p.c.seq)).scalars())
            return self._posts_by_seq(conn, seqs)

    def post_seq(self, post_id: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(schema.posts.c.seq)
                                .where(schema.posts.c.id == post_id)).scalar_one_or_none()

    def count_posts(self, source: str | None = None) -> int:
        query = select(func.count()).select_from(schema.posts)
        if source is not None:
            query = query.where(schema.posts.c.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def teams(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(schema.post_teams.c.team).distinct()
                                     .order_by(schema.post_teams.c.team)).scalars())

    def quarantined(self, *, source: str | None = None, limit: int = 50) -> list[QuarantinedRow]:
        q = schema.quarantine
        query = select(q).order_by(q.c.id.desc()).limit(limit)
        if source is not None:
            query = query.where(q.c.source == source)
        with self.engine.connect() as conn:
            return [_quarantine_row(r) for r in conn.execute(query).mappings()]

    def quarantined_item(self, item_id: int) -> QuarantinedRow | None:
        q = schema.quarantine
        with self.engine.connect() as conn:
            row = conn.execute(select(q).where(q.c.id == item_id)).mappings().first()
        return _quarantine_row(row) if row is not None else None

    def quarantined_after(self, after_id: int, *, limit: int = 100, source: str | None = None,
                          ids: Collection[int] | None = None) -> list[QuarantinedRow]:
        """Quarantined items with an id above ``after_id``, oldest first (a replay's pages)."""
        q = schema.quarantine
        query = select(q).where(q.c.id > after_id).order_by(q.c.id).limit(limit)
        if source is not None:
            query = query.where(q.c.source == source)
        if ids is not None:
            query = query.where(q.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [_quarantine_row(r) for r in conn.execute(query).mappings()]

    def count_quarantined(self, *, source: str | None = None,
                          ids: Collection[int] | None = None) -> int:
        q = schema.quarantine
        query = select(func.count()).select_from(q)
        if source is not None:
            query = query.where(q.c.source == source)
        if ids is not None:
            query = query.where(q.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def quarantine_summaries(self, *, source: str | None = None, batch: int = 5000
                             ) -> Iterable[tuple[int, str, str, dict[str, Any], datetime]]:
        """(id, source, error, context, received_at) of every quarantined item, in pages by
        id and without the raw bytes (for counts by reason)."""
        q = schema.quarantine
        after = 0
        while True:
            query = (select(q.c.id, q.c.source, q.c.error, q.c.context, q.c.received_at)
                     .where(q.c.id > after).order_by(q.c.id).limit(batch))
            if source is not None:
                query = query.where(q.c.source == source)
            with self.engine.connect() as conn:
                rows = list(conn.execute(query))
            for row in rows:
                yield row.id, row.source, row.error, dict(row.context or {}), row.received_at
            if len(rows) < batch:
                return
            after = rows[-1].id

    def discard_quarantined(self, *, ids: Collection[int] | None = None,
                            source: str | None = None, batch: int = 1000) -> int:
        """Delete quarantined items: these ids, a source's, or (neither given) all of them,
        ``batch`` rows per transaction. Returns how many went."""
        q = schema.quarantine
        removed = 0
        if ids is not None:
            wanted = sorted(set(ids))
            for chunk in iter_chunks(wanted, batch):
                with self.engine.begin() as conn:
                    removed += int(conn.execute(delete(q).where(q.c.id.in_(list(chunk))))
                                   .rowcount)
            return removed
        while True:
            query = select(q.c.id).order_by(q.c.id).limit(batch)
            if source is not None:
                query = query.where(q.c.source == source)
            with self.engine.begin() as conn:
                found = list(conn.execute(query).scalars())
                if found:
                    removed += int(conn.execute(delete(q).where(q.c.id.in_(found))).rowcount)
            if len(found) < batch:
                return removed


#: built once: an adapter reads its state rows once per file or more
_ADAPTER_STATES = select(schema.detector_state.c.subject, schema.detector_state.c.state).where(
    schema.detector_state.c.source == bindparam("source"),
    schema.detector_state.c.detector == ADAPTER_STATE,
    schema.detector_state.c.subject.in_(bindparam("keys", expanding=True)))


def _post_row(post: Post) -> dict[str, Any]:
    return {
        "id": post.id, "type": post.type, "source": post.source, "subject": post.subject,
        "severity": int(post.severity), "summary": post.summary, "body": post.body,
        "tags": post.tags, "links": post.links, "fields": post.fields,
        "routing": post.routing, "clears": post.clears,
        "occurred_at": post.occurred_at, "created_at": post.created_at,
        "thread": post.thread or post.subject, "relation": post.relation,
        "refers_to": post.refers_to,
    }


def _row_post(row: RowMapping, teams: dict[str, list[str]]) -> Post:
    routing = tuple(row["routing"] or ())
    order = [r["team"] for r in routing]
    found = teams.get(row["id"], [])
    ordered = [t for t in order if t in found] + sorted(t for t in found if t not in order)
    return Post.model_construct(
        id=row["id"], type=row["type"], source=row["source"], subject=row["subject"],
        summary=row["summary"], body=row["body"], severity=Severity(row["severity"]),
        teams=tuple(ordered), tags=tuple(row["tags"] or ()), links=dict(row["links"] or {}),
        occurred_at=row["occurred_at"], created_at=row["created_at"],
        thread=row["thread"] or row["subject"], relation=row["relation"] or "new",
        refers_to=row["refers_to"], fields=dict(row["fields"] or {}), routing=routing,
    )


def _quarantine_row(row: RowMapping) -> QuarantinedRow:
    return QuarantinedRow(id=row["id"], source=row["source"], position=row["position"],
                          error=row["error"], raw=bytes(row["raw"]),
                          context=dict(row["context"] or {}), received_at=row["received_at"])


def iter_chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
