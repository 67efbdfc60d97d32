"""Who is in the fleet: a row per daemon in ``fs_daemons``, alive while its member lock is.

Each daemon takes a lock ``("daemon", <its id>)`` on its lock session when it joins. A daemon
is *live* exactly while that lock is held, so a daemon killed with SIGKILL leaves the fleet
the moment its session ends, not when a heartbeat grows old; the survivors' shares grow at
once and they take its sources over. The heartbeat column is for people (``floorstream
fleet``) and for clearing away rows of daemons long gone.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from floorstream.fleet.locks import holders
from floorstream.model import utcnow
from floorstream.store import schema
from floorstream.store.dialect import upsert

__all__ = ["Member", "deregister", "fingerprint", "heartbeat", "members", "new_id", "prune",
           "register"]


@dataclass(frozen=True)
class Member:
    """A daemon's row, and whether it is live (its member lock held)."""

    id: str
    host: str
    pid: int
    version: str
    fleet: str
    weight: int
    max_sources: int | None
    session: str
    started_at: datetime
    heartbeat_at: datetime
    live: bool = False


def new_id() -> str:
    """A daemon's id: host, pid and a random part (a restarted daemon is a new member)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def fingerprint(sources: Sequence[tuple[str, str]]) -> str:
    """What makes daemons "the same config": the (name, adapter) of their enabled sources."""
    digest = hashlib.blake2b(digest_size=8)
    for name, adapter in sorted(sources):
        digest.update(f"{name}\x1f{adapter}\x1e".encode())
    return digest.hexdigest()


def register(conn: Connection, member: Member) -> None:
    row = {"id": member.id, "host": member.host, "pid": member.pid, "version": member.version,
           "fleet": member.fleet, "weight": member.weight, "max_sources": member.max_sources,
           "session": member.session, "started_at": member.started_at,
           "heartbeat_at": member.heartbeat_at}
    upsert(conn, schema.daemons, [row], ["id"])


def heartbeat(conn: Connection, daemon: str) -> None:
    d = schema.daemons
    conn.execute(update(d).where(d.c.id == daemon).values(heartbeat_at=utcnow()))


def deregister(conn: Connection, daemon: str) -> None:
    conn.execute(delete(schema.daemons).where(schema.daemons.c.id == daemon))


def members(conn: Connection) -> list[Member]:
    """Every daemon row, live when its member lock is held by the session the row names."""
    d = schema.daemons
    rows = list(conn.execute(select(d).order_by(d.c.started_at, d.c.id)).mappings())
    sessions = holders(conn, [("daemon", row["id"]) for row in rows])
    return [Member(row["id"], row["host"], row["pid"], row["version"], row["fleet"],
                   row["weight"], row["max_sources"], row["session"], row["started_at"],
                   row["heartbeat_at"], sessions.get(("daemon", row["id"])) == row["session"])
            for row in rows]


def prune(conn: Connection, gone: Sequence[Member], older_than: timedelta) -> int:
    """Delete the rows of daemons not live whose heartbeat is older than ``older_than``."""
    cutoff = utcnow() - older_than
    ids = [m.id for m in gone if not m.live and m.heartbeat_at < cutoff]
    if ids:
        d = schema.daemons
        conn.execute(delete(d).where(d.c.id.in_(ids), d.c.heartbeat_at < cutoff))
    return len(ids)
