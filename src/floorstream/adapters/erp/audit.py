"""``mode: audit``: read a change log, exact before/after per field, every intermediate value.

Entries are taken in the log's id order, so three transitions of one row inside one second
are three changes, each with its own ``before``. Ids come from sequences, and a transaction
that took id 100 may commit after the one that took 101: an id skipped while reading is kept
as a *gap* (with the time it was noticed, in the checkpoint) and asked for again on every poll
until it shows up or ``overlap`` has passed (rolled-back transactions leave permanent holes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine, bindparam, column, func, select, table

from floorstream.adapters.erp.auditlogs import LOG_TABLE, Entry, read_log
from floorstream.adapters.erp.config import TableConfig
from floorstream.adapters.erp.publish import NO_GROUP, RowChange, SubjectMaker
from floorstream.adapters.erp.sqlcommon import as_utc, decode, encode
from floorstream.adapters.erp.values import Humanizer, plain

__all__ = ["AuditWatcher"]

_MAX_GAPS = 10_000
_KINDS = {"I": "row.created", "U": "row.updated", "D": "row.deleted"}


class AuditWatcher:
    def __init__(self, config: TableConfig, saved: Any,
                 columns: Callable[[], list[str] | None]) -> None:
        self.config = config
        self.columns = columns  # the watched table's columns, None when it cannot be read
        self.humanizer = Humanizer(config)
        self.subject = SubjectMaker(config)
        self.initialized = isinstance(saved, dict)
        state = saved if isinstance(saved, dict) else {}
        self.last: Any = _decode_id(state.get("id"))
        self.gaps: dict[Any, float] = {_decode_id(k): t for k, t in state.get("gaps", [])}
        self.last_query_s = 0.0

    @property
    def position(self) -> dict[str, Any]:
        return {"id": _encode_id(self.last),
                "gaps": [[_encode_id(k), t] for k, t in self.gaps.items()]}

    def poll(self, engine: Engine) -> Iterator[RowChange]:
        cfg = self.config
        if not self.initialized:
            self.initialized = True
            if cfg.initial == "baseline":  # the log so far is history, not news
                with engine.connect() as conn:
                    self.last = _latest(conn, cfg)
                return
        self._expire()
        while True:
            started = time.perf_counter()
            with engine.connect() as conn:
                entries = read_log(conn, cfg, self.last, list(self.gaps), cfg.batch)
                self.last_query_s = time.perf_counter() - started
                mine = [e for e in entries if e.mine and (e.before or e.after)]
                current = self._current_rows(conn, mine)
                pairs = self._humanize(conn, mine, current)
            positions = {id(e): self._observe(e) for e in entries}
            for entry, (data, before) in zip(mine, pairs, strict=True):
                yield self._change(entry, data, before, positions[id(entry)])
            if len(entries) < cfg.batch:
                break

    # -- ids and gaps -------------------------------------------------------------------

    def _observe(self, entry: Entry) -> dict[str, Any]:
        log_id = entry.log_id
        if log_id in self.gaps:
            del self.gaps[log_id]
        elif self.last is None or log_id > self.last:
            if self.last is not None:
                now = time.time()
                for missing in _between(self.last, log_id):
                    if len(self.gaps) >= _MAX_GAPS:
                        break
                    self.gaps[missing] = now
            self.last = log_id
        return self.position

    def _expire(self) -> None:
        limit = time.time() - self.config.overlap
        self.gaps = {k: t for k, t in self.gaps.items() if t >= limit}

    # -- values -------------------------------------------------------------------------

    def _current_rows(self, conn: Any, entries: list[Entry]) -> dict[str, dict[str, Any]]:
        """The watched rows as they are now: context (name, product…) for partial logs."""
        if not entries or all(e.full_rows for e in entries):
            return {}
        names = self.columns()
        if not names or self.config.key not in names:
            return {}
        src = table(self.config.table, *(column(n) for n in names))
        stmt = select(*src.c).where(src.c[self.config.key].in_(
            bindparam("keys", expanding=True)))
        keys = sorted({str(e.key) for e in entries})
        try:
            found = conn.execute(stmt, {"keys": keys})
        except Exception:  # key types differ (text log key, int column): try them as ints
            conn.rollback()
            if not all(k.lstrip("-").isdigit() for k in keys):
                return {}
            found = conn.execute(stmt, {"keys": [int(k) for k in keys]})
        return {str(plain(r._mapping[self.config.key])): dict(r._mapping) for r in found}

    def _humanize(self, conn: Any, entries: list[Entry], current: dict[str, dict[str, Any]]
                  ) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        raw_pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for e in entries:
            if e.full_rows:
                after = e.after if e.op != "D" else e.before
                before = e.before if e.op == "U" else None
            else:
                row = current.get(str(e.key), {self.config.key: e.key})
                after = {**row, **e.after}
                before = {**after, **e.before} if e.op == "U" else None
            raw_pairs.append((after, before))
        flat = [a for a, _ in raw_pairs] + [b for _, b in raw_pairs if b is not None]
        shown = iter(self.humanizer.rows(conn, flat))
        afters = [next(shown) for _ in raw_pairs]
        return [(a, next(shown) if b is not None else None)
                for a, (_, b) in zip(afters, raw_pairs, strict=True)]

    def _change(self, entry: Entry, data: dict[str, Any], before: dict[str, Any] | None,
                after: dict[str, Any]) -> RowChange:
        cfg = self.config
        log_id = entry.log_id[1] if isinstance(entry.log_id, tuple) else entry.log_id
        return RowChange(
            table=cfg.table, key=entry.key, kind=_KINDS.get(entry.op, "row.updated"),
            position=f"{cfg.table}:log:{log_id}", data=data, before=before,
            occurred_at=as_utc(entry.occurred_at),
            group=entry.group if entry.group is not None else NO_GROUP, after=after,
            subject=self.subject(entry.key, data),
            attrs={"by": str(entry.user)} if entry.user is not None else {})


def _between(low: Any, high: Any) -> list[Any]:
    """The ids strictly between two log ids (ints, or SAP's zero-padded digit strings)."""
    if isinstance(low, int) and isinstance(high, int):
        return list(range(low + 1, min(high, low + 1 + _MAX_GAPS)))
    if isinstance(low, str) and isinstance(high, str) and low.isdigit() and high.isdigit():
        width = len(high)
        a, b = int(low), int(high)
        return [str(n).zfill(width) for n in range(a + 1, min(b, a + 1 + _MAX_GAPS))]
    return []  # (creation, name) of Frappe versions: no sequence to find gaps in


def _encode_id(value: Any) -> Any:
    if isinstance(value, tuple):
        return [encode(value[0]), value[1]]
    return encode(value)


def _decode_id(value: Any) -> Any:
    if isinstance(value, list):
        return (decode(value[0]), value[1])
    return decode(value)


def _latest(conn: Any, cfg: TableConfig) -> Any:
    audit = cfg.audit
    if audit.style == "frappe":
        ver = table(audit.table or "tabVersion", column("creation"), column("name"))
        row = conn.execute(select(ver.c.creation, ver.c.name)
                           .order_by(ver.c.creation.desc(), ver.c.name.desc()).limit(1)).first()
        return None if row is None else (row[0], row[1])
    name, col = {"floorstream": (audit.table or LOG_TABLE, "id"),
                 "sap": (audit.header_table or "change_header", "changenr"),
                 "odoo": (audit.header_table or "mail_message", "id")}[audit.style]
    src = table(name, column(col))
    latest = conn.execute(select(func.max(src.c[col]))).scalar()
    if latest is None:  # an empty log: ids start after 0, so a late first commit is a gap too
        return "0" if audit.style == "sap" else 0
    return latest
