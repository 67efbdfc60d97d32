"""Pruning ``fs_erp_changes``: the log rows a source has consumed, once old enough.

The installed triggers write one log row per changed row into the ERP's own database, and
nothing else ever deletes them. The source knows what it consumed: its committed checkpoint
holds, per audit-mode table, the last log id read and the ids it still waits for (gaps, a
transaction that took an id and has not committed yet). A row goes when

- it is about a table this source reads from the log (``table_name``), and
- its id is at or below the last id read and below the first id still awaited, and
- it is older than ``retention.erp_changes`` (``changed_at``; a margin for people who read
  the log themselves), and
- it is not the newest row of the log (SQLite gives the next row ``max(id) + 1``: an emptied
  log would reuse ids the source has read past, and their changes would be skipped),

a ``batch`` of rows per transaction, walking the ``(table_name, id)`` index. Rows of tables no
source of this config reads are never touched, nor rows another floorstream (with its own
store) may still need: set ``retention.erp_changes: null`` on every deployment but one when
several read one log.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, column, create_engine, delete, func, select, table

from floorstream.adapters.erp.auditlogs import LOG_TABLE
from floorstream.adapters.erp.config import ErpTableConfig
from floorstream.plugin import Progress, PruneContext

__all__ = ["consumed", "prune_changes"]


def consumed(config: ErpTableConfig, checkpoint: str | None) -> dict[str, list[tuple[str, int]]]:
    """Log table → [(table_name in the log, highest id consumed)] from a checkpoint."""
    tables = _tables(checkpoint)
    found: dict[str, list[tuple[str, int]]] = {}
    for cfg in config.tables:
        if cfg.mode != "audit" or cfg.audit.style != "floorstream":
            continue
        position = tables.get(cfg.table)
        if not isinstance(position, dict):
            continue
        last = position.get("id")
        if isinstance(last, bool) or not isinstance(last, int):
            continue
        waiting = [g[0] for g in position.get("gaps") or []
                   if isinstance(g, list) and g and isinstance(g[0], int)]
        upto = min([last, *(g - 1 for g in waiting)])
        found.setdefault(cfg.audit.table or LOG_TABLE, []).append(
            (cfg.audit.object or cfg.table, upto))
    return found


def prune_changes(config: ErpTableConfig, context: PruneContext,
                  engine: Engine | None = None) -> int:
    """Delete (or count, dry) the consumed log rows; returns how many."""
    wanted = consumed(config, context.checkpoint)
    if not wanted:
        return 0
    own = engine is None
    engine = engine or create_engine(config.url, pool_pre_ping=True)
    cutoff = context.older_than.astimezone(UTC).replace(tzinfo=None)  # naive UTC, as stored
    done = 0
    try:
        for log_name, items in wanted.items():
            log = table(log_name, column("id"), column("table_name"), column("changed_at"))
            with engine.connect() as conn:
                newest = conn.execute(select(func.max(log.c.id))).scalar()
            if newest is None:
                continue
            for name, upto in items:
                # the newest row always stays: SQLite (and an InnoDB of old after a restart)
                # numbers the next row max(id) + 1, so an emptied log would hand out ids
                # again that the source has already read past
                upto = min(upto, int(newest) - 1)
                done += _prune_one(engine, log, name, upto, cutoff, context)
    finally:
        if own:
            engine.dispose()
    return done


def _prune_one(engine: Engine, log: Any, name: str, upto: int, cutoff: datetime,
               context: PruneContext) -> int:
    mine = (log.c.table_name == name, log.c.id <= upto, log.c.changed_at < cutoff)
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(log).where(*mine))
                    .scalar_one())
    if total == 0:
        return 0
    progress = Progress(context.log, "erp_prune_progress", total, log_table=log.name,
                        table=name, dry_run=context.dry_run)
    if context.dry_run:
        progress.advance(total)
        progress.finish()
        return total
    done = 0
    after = -1
    while not context.stop.is_set():
        with engine.begin() as conn:
            ids = list(conn.execute(select(log.c.id).where(*mine, log.c.id > after)
                                    .order_by(log.c.id).limit(context.batch)).scalars())
            if not ids:
                break
            conn.execute(delete(log).where(log.c.id.in_(ids)))
        after = ids[-1]
        done += len(ids)
        progress.advance(len(ids))
        if len(ids) < context.batch:
            break
        if context.pause > 0:
            context.stop.wait(context.pause)
    progress.finish(deleted=done)
    return done


def _tables(checkpoint: str | None) -> dict[str, Any]:
    if not checkpoint:
        return {}
    try:
        data = json.loads(checkpoint)
    except ValueError:
        return {}
    tables = data.get("tables") if isinstance(data, dict) else None
    return tables if isinstance(tables, dict) else {}
