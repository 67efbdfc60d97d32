"""What a fleet looks like from the store: the daemons, who holds which source, and what
nobody holds. Read by ``floorstream fleet`` (any process that can reach the store; it needs
no daemon), built from the rows and the store's own lock table, so a daemon killed a moment
ago already shows as gone and its sources as held by nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, inspect, select

from floorstream.fleet import leases, membership
from floorstream.model import utcnow
from floorstream.store import schema

__all__ = ["fleet_report"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def fleet_report(engine: Engine, sources: Sequence[str]) -> dict[str, Any]:
    """``daemons`` (live first, each with the sources it holds, their lag and last commit),
    ``unheld`` (configured sources no live daemon holds, and since when)."""
    now = utcnow()
    with engine.connect() as conn:
        if not inspect(conn).has_table(schema.source_leases.name):
            return {"daemons": [], "unheld": [{"source": s, "since": None} for s in sources],
                    "time": _iso(now)}
        found = membership.members(conn)
        rows = {lease.source: lease for lease in leases.leases(conn)}
        c = schema.checkpoints
        commits = dict(conn.execute(select(c.c.source, c.c.updated_at)).all())
    live = {m.id for m in found if m.live}
    daemons = []
    for member in sorted(found, key=lambda m: (not m.live, m.started_at)):
        held = []
        for source, lease in sorted(rows.items()):
            if lease.holder != member.id:
                continue
            held.append({
                "source": source, "epoch": lease.epoch, "since": _iso(lease.since),
                "lag_seconds": lease.lag_ms / 1000 if lease.lag_ms is not None else None,
                "last_commit": _iso(lease.committed_at or commits.get(source)),
                "reported_at": _iso(lease.reported_at)})
        daemons.append({
            "id": member.id, "host": member.host, "pid": member.pid,
            "version": member.version, "live": member.live, "fleet": member.fleet,
            "weight": member.weight, "max_sources": member.max_sources,
            "started": _iso(member.started_at), "heartbeat": _iso(member.heartbeat_at),
            "heartbeat_age_seconds": round((now - member.heartbeat_at).total_seconds(), 1),
            "sources": held})
    unheld = []
    for source in sources:
        found_lease = rows.get(source)
        if found_lease is None or found_lease.holder not in live:
            unheld.append({"source": source,
                           "since": _iso(found_lease.since) if found_lease else None,
                           "last_holder": found_lease.holder if found_lease else None,
                           "last_commit": _iso(commits.get(source))})
    return {"time": _iso(now), "daemons": daemons, "unheld": unheld}
