"""The lease rows, ``fs_source_leases``: which daemon holds a source, since when, and at
which epoch.

A daemon writes its row only while it holds the source's session lock, so the row never
claims a holder the lock does not confirm for longer than the holder's own reaction time.
Taking a lease bumps the epoch in its own short transaction *after* the lock is held and
*before* the checkpoint is read: the UPDATE waits for any commit of the previous holder
still running (those commits read the row ``FOR SHARE``, :mod:`floorstream.fleet.fence`), so
the new holder reads a checkpoint no stale commit can move afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.exc import OperationalError

from floorstream.logs import get_logger
from floorstream.model import utcnow
from floorstream.store import schema
from floorstream.store.dialect import insert_ignore

log = get_logger("floorstream.fleet")

__all__ = ["Lease", "end_stale_commits", "ensure", "give_up", "leases", "report", "take",
           "take_waiting"]


@dataclass(frozen=True)
class Lease:
    source: str
    holder: str | None
    epoch: int
    since: datetime
    lag_ms: int | None = None
    committed_at: datetime | None = None
    reported_at: datetime | None = None


def ensure(conn: Connection, sources: Iterable[str]) -> None:
    """A row per source (held by nobody) where there is none yet."""
    now = utcnow()
    insert_ignore(conn, schema.source_leases,
                  [{"source": s, "holder": None, "epoch": 0, "since": now} for s in sources])


def take(conn: Connection, source: str, daemon: str) -> int:
    """Record ``daemon`` as the holder (it holds the lock); returns the new epoch."""
    t = schema.source_leases
    ensure(conn, [source])
    conn.execute(update(t).where(t.c.source == source).values(
        holder=daemon, epoch=t.c.epoch + 1, since=utcnow(), lag_ms=None, committed_at=None,
        reported_at=None))
    epoch: int = conn.execute(select(t.c.epoch).where(t.c.source == source)).scalar_one()
    return epoch


def end_stale_commits(conn: Connection, older_than: float) -> list[int]:
    """PostgreSQL: end the sessions whose transaction has held lease rows (a commit's ``FOR
    SHARE``) for longer than ``older_than`` seconds; returns their pids.

    A commit cut off by a partition in the middle of a statement is not "idle in
    transaction" to the server (it waits for the rest of the statement), so no timeout ends
    it, and a taker's epoch bump would wait for it until TCP gives up, hours later. A
    daemon's commits take milliseconds; one this old belongs to a holder that lost its lease
    (ended, it can only retry, and the fence then strips it). MariaDB bounds the same case
    with ``net_read_timeout`` (:func:`floorstream.fleet.locks.limit_idle_transactions`).
    """
    if conn.dialect.name != "postgresql":
        return []
    pids = list(conn.execute(text(
        "SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.relation = CAST('fs_source_leases' AS regclass) AND l.granted "
        "AND l.pid <> pg_backend_pid() "
        "AND a.xact_start < clock_timestamp() - make_interval(secs => :age)"),
        {"age": older_than}).scalars())
    for pid in pids:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    return pids


def take_waiting(engine: Engine, source: str, daemon: str, wait: float,
                 stale_after: float) -> int:
    """:func:`take` in its own transaction, waiting at most ``wait`` at a time for a
    previous holder's commit to end, and ending one older than ``stale_after``
    (:func:`end_stale_commits`) before trying again."""
    for attempt in range(5):
        if attempt:
            with engine.begin() as conn:
                ended = end_stale_commits(conn, stale_after)
            log.warning("lease_take_waited", source=source, daemon=daemon,
                        ended_sessions=ended)
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text(f"SET LOCAL lock_timeout = {int(wait * 1000)}"))
                return take(conn, source, daemon)
        except OperationalError as exc:
            if engine.dialect.name != "postgresql" or "lock timeout" not in str(exc):
                raise
    raise OperationalError("take", {}, Exception(
        f"the lease row of {source} stayed locked by another session"))


def give_up(conn: Connection, source: str, daemon: str, epoch: int) -> None:
    """Record that nobody holds ``source`` (when ``daemon`` still is the holder at ``epoch``)."""
    t = schema.source_leases
    conn.execute(update(t).where(t.c.source == source, t.c.holder == daemon,
                                 t.c.epoch == epoch).values(holder=None, since=utcnow()))


def report(conn: Connection, daemon: str, held: Mapping[str, int],
           stats: Mapping[str, tuple[float, datetime | None]]) -> None:
    """The holder's lag and last commit per held source (``stats``: lag seconds, last
    commit), written where it still holds the lease."""
    t = schema.source_leases
    now = utcnow()
    for source, epoch in held.items():
        lag, committed = stats.get(source, (0.0, None))
        conn.execute(update(t).where(t.c.source == source, t.c.holder == daemon,
                                     t.c.epoch == epoch)
                     .values(lag_ms=int(lag * 1000), committed_at=committed, reported_at=now))


def leases(conn: Connection) -> list[Lease]:
    t = schema.source_leases
    rows = conn.execute(select(t.c.source, t.c.holder, t.c.epoch, t.c.since, t.c.lag_ms,
                               t.c.committed_at, t.c.reported_at).order_by(t.c.source))
    return [Lease(*row) for row in rows]
