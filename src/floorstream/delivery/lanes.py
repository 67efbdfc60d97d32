"""One claimer per outbox lane at a time, across every daemon that shares the store.

A lane — the rows of one (sink, team) — must be sent in commit order, so two workers must never
take two halves of it. ``SELECT … FOR UPDATE SKIP LOCKED`` alone would let the second claimer
skip the first one's rows and take the next ones (a split lane), so each claim first takes a
lock on the lane itself, without waiting (a taken lane is simply someone else's work):

- PostgreSQL: ``pg_try_advisory_xact_lock``, released by the claim transaction's commit;
- MariaDB ≥ 10.6 / MySQL ≥ 8: ``GET_LOCK(name, 0)``, which belongs to the session, so it is
  released explicitly once the claim transaction has committed. Claims there run in READ
  COMMITTED: under InnoDB's default REPEATABLE READ the "is this lane busy?" read would see a
  snapshot from before another daemon's claim committed, and gap locks would make the
  pipeline's inserts of new outbox rows wait for a claim;
- SQLite (and servers without SKIP LOCKED): one claimer per process; SQLite has one writer per
  database anyway, and the claim transaction starts with a write, so it holds that lock from
  its first statement. (Older MariaDB/MySQL claim in READ COMMITTED too.)
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, func, select, text

__all__ = ["lane_key", "lane_transaction", "supports_skip_locked"]

_PROCESS_LOCK = threading.Lock()


def lane_key(sink: str, team: str) -> int:
    """A signed 64-bit number per lane (the PostgreSQL advisory lock key)."""
    digest = hashlib.blake2b(f"floorstream-lane\x1f{sink}\x1f{team}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _is_mysql(engine: Engine) -> bool:
    return engine.dialect.name in ("mysql", "mariadb")


def supports_skip_locked(engine: Engine) -> bool:
    """True where several daemons may claim concurrently: PostgreSQL, MariaDB ≥ 10.6,
    MySQL ≥ 8.0.1."""
    if engine.dialect.name == "postgresql":
        return True
    if not _is_mysql(engine):
        return False
    with engine.connect():  # the dialect learns the server version on the first connect
        pass
    version = engine.dialect.server_version_info or (0,)
    if getattr(engine.dialect, "is_mariadb", False):
        return tuple(version[:2]) >= (10, 6)
    return tuple(version[:3]) >= (8, 0, 1)


@contextmanager
def lane_transaction(engine: Engine, sink: str, team: str, *,
                     shared: bool) -> Iterator[Connection | None]:
    """A transaction that owns the lane, or None when another claimer has it right now.

    ``shared``: the store supports concurrent claimers (see :func:`supports_skip_locked`);
    otherwise claims are serialised in this process."""
    if not shared:
        with _PROCESS_LOCK, engine.connect() as conn:
            if _is_mysql(engine):  # older MariaDB/MySQL: no gap locks against the pipeline
                conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                yield conn
        return
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            locked = conn.execute(
                select(func.pg_try_advisory_xact_lock(lane_key(sink, team)))).scalar()
            yield conn if locked else None
        return
    name = f"floorstream-lane-{lane_key(sink, team) & 0xFFFFFFFFFFFFFFFF:016x}"
    with engine.connect() as conn:
        conn.execution_options(isolation_level="READ COMMITTED")
        got = conn.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": name}).scalar()
        conn.commit()
        if not got:
            yield None
            return
        try:
            with conn.begin():
                yield conn
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            conn.commit()
