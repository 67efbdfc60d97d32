"""``mode: snapshot``: for small tables without a usable cursor, diff against row hashes.

Every poll reads the whole table (paged by key) and compares each row's content hash with the
hashes of the last committed snapshot, which travel in the checkpoint. New keys are inserts,
changed hashes updates, keys no longer present hard deletes. The new hashes are committed with
the last change of the diff, so a crash mid-diff replays the same diff (same positions, same
event ids) and nothing is posted twice. Meant for tables of a few thousand rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine, column, select, table

from floorstream.adapters.erp.config import TableConfig
from floorstream.adapters.erp.publish import BASELINE, RowChange, SubjectMaker
from floorstream.adapters.erp.sqlcommon import client_filter
from floorstream.adapters.erp.values import STEPS, Humanizer, plain, row_hash, steps_unseen

__all__ = ["SnapshotWatcher"]

_GROUP = "snapshot"


class SnapshotWatcher:
    def __init__(self, config: TableConfig, saved: Any, columns: Callable[[], list[str]]) -> None:
        self.config = config
        self.columns = columns
        self.humanizer = Humanizer(config)
        self.subject = SubjectMaker(config)
        self.initialized = isinstance(saved, dict)
        # key → "hash" or "hash|subject" (the subject is kept to name a deleted row)
        self.hashes: dict[str, str] = dict(saved.get("h", {})) if isinstance(saved, dict) else {}
        #: diffs that posted something so far: part of each position, so a row whose content
        #: comes back (state 0 → 1 → 0 → 1) is a new change, not the first one's id again
        self.generation = int(saved.get("g", 0)) if isinstance(saved, dict) else 0
        self.last_query_s = 0.0
        #: called with the number of rows of each page read (the adapter's progress lines)
        self.on_rows: Callable[[int], None] | None = None

    @property
    def position(self) -> dict[str, Any]:
        at: dict[str, Any] = {"h": self.hashes}
        if self.generation:
            at["g"] = self.generation
        return at

    def poll(self, engine: Engine) -> Iterator[RowChange]:
        cfg = self.config
        names = self.columns()
        src = table(cfg.table, *(column(n) for n in names))
        key = src.c[cfg.key]
        base = select(*src.c).order_by(key).limit(cfg.batch)
        held = client_filter(cfg.site.client, names)
        if held is not None:  # SAP: this client's rows only (MANDT)
            base = base.where(held)
        stmt = base
        new: dict[str, str] = {}
        pending: list[RowChange] = []
        first = not self.initialized
        g = self.generation + 1
        while True:
            with engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(stmt).mappings().all()]
                if self.on_rows is not None:
                    self.on_rows(len(rows))
                changed = []
                for row in rows:
                    skey = str(plain(row[cfg.key]))
                    digest = row_hash(row)[:12]
                    old = self.hashes.get(skey)
                    if old is None or old.split("|", 1)[0] != digest:
                        changed.append((row, skey, digest, old))
                    else:
                        new[skey] = old
                shown = self.humanizer.rows(conn, [r for r, *_ in changed]) if changed else []
            for (row, skey, digest, old), data in zip(changed, shown, strict=True):
                subject = self.subject(row[cfg.key], data)
                new[skey] = digest if cfg.subject is None else f"{digest}|{subject}"
                if first:
                    kind = BASELINE if cfg.initial == "baseline" else "row.created"
                else:
                    kind = "row.created" if old is None else "row.upserted"
                    if old is not None:  # two states compared: edits between are not seen
                        data[STEPS] = steps_unseen(cfg)
                pending.append(RowChange(
                    table=cfg.table, key=row[cfg.key], kind=kind,
                    position=f"{cfg.table}:{skey}:{g}:{digest}", data=data, group=_GROUP,
                    subject=subject))
            if len(rows) < cfg.batch:
                break
            stmt = base.where(key > rows[-1][cfg.key])
        for skey, old in self.hashes.items():
            if skey not in new:
                digest, _, subject = old.partition("|")
                pending.append(RowChange(
                    table=cfg.table, key=skey, kind="row.deleted",
                    position=f"{cfg.table}:{skey}:{g}:deleted:{digest}",
                    data={cfg.key: skey},
                    group=_GROUP, subject=subject or f"{cfg.table}:{skey}"))
        self.hashes = new
        self.initialized = True
        if pending:
            self.generation = g
            pending[-1].after = self.position
        yield from pending
