"""``mode: cursor``: follow a monotonic column with the key as tie-breaker.

Rows are read in ``(cursor, key)`` order, ``batch`` at a time, so a thousand rows with the same
``write_date`` are paged through without loss. Each poll first reads the rows past the last
position (the latency-critical part), then re-reads ``overlap`` behind it: a transaction that
committed late with an older timestamp is still found there, and rows already seen with the
same content (hash) are skipped. After a restart the in-memory
hashes are gone; the overlap rows are emitted again, and the ``field_change`` detector, which
keeps the last tracked values as state, finds nothing changed, so nothing is posted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    and_,
    column,
    literal,
    or_,
    select,
    table,
    tuple_,
)

from floorstream.adapters.erp.config import TableConfig
from floorstream.adapters.erp.publish import BASELINE, FLUSH, NO_GROUP, RowChange, SubjectMaker
from floorstream.adapters.erp.sqlcommon import (
    as_utc,
    client_filter,
    decode,
    encode,
    naive_zone,
    shift,
)
from floorstream.adapters.erp.values import STEPS, Humanizer, plain, row_hash, steps_unseen

__all__ = ["CursorWatcher"]

#: rows humanised and emitted at a time (lookups are resolved once per slice)
_SLICE = 100


class CursorWatcher:
    def __init__(self, config: TableConfig, saved: Any, columns: Callable[[], list[str]]) -> None:
        assert config.cursor is not None
        self.config = config
        self.cursor = config.cursor
        self.columns = columns
        self.humanizer = Humanizer(config)
        self.subject = SubjectMaker(config)
        self.zone = naive_zone(config.site.system, config.site.time_zone)
        # a position saved while the first start's baseline was still being read carries
        # "b": the rest of the table is still baseline after a restart, not new rows
        self.initialized = isinstance(saved, dict) and not saved.get("b")
        state = saved if isinstance(saved, dict) else {}
        self.last_c: Any = decode(state.get("c"))
        self.last_k: Any = decode(state.get("k"))
        #: the cursor whose overlap window is still to be re-read (set while new rows are
        #: handed over before the window is): a restart re-reads from there, not from last_c
        self.window: Any = decode(state["w"]) if "w" in state else None
        #: key → (cursor, row values, hash) of rows emitted within the overlap window
        self.seen: dict[str, tuple[Any, tuple[Any, ...], str]] = {}
        self.last_query_s = 0.0
        #: called with the number of rows of each page read (the adapter's progress lines)
        self.on_rows: Callable[[int], None] | None = None

    @property
    def position(self) -> dict[str, Any]:
        at = {"c": encode(self.last_c), "k": encode(self.last_k)}
        if self.window is not None:
            at["w"] = encode(self.window)
        if not self.initialized:
            at["b"] = 1  # the first start's baseline is not finished yet
        return at

    def poll(self, engine: Engine) -> Iterator[RowChange | None]:
        """New rows first, then the overlap window behind the old position.

        The rows past ``(last_cursor, last_key)`` are what carries the latency, so they are
        read (an index range scan on ``(cursor, key)``) and handed over before the window
        is re-read for late commits. Until the window is done the checkpoint keeps its old
        edge (``w``), so a crash in between still re-reads it after the restart.
        """
        cfg = self.config
        names = self.columns()
        src = table(cfg.table, *(column(n) for n in names))
        cur, key = src.c[self.cursor], src.c[cfg.key]
        base = select(*src.c).order_by(cur, key).limit(cfg.batch)
        held = client_filter(cfg.site.client, names)
        if held is not None:  # SAP: this client's rows only (MANDT)
            base = base.where(held)
        kind = "row.upserted"
        if not self.initialized:
            kind = BASELINE if cfg.initial == "baseline" else "row.created"
        self.last_query_s = 0.0
        if self.last_c is None:
            yield from self._pages(engine, base, base, cur, key, kind)
        else:
            edge_c, edge_k = self.last_c, self.last_k
            if self.window is None:
                self.window = edge_c
            after = _after(engine, cur, key, edge_c, edge_k)
            yield from self._pages(engine, base.where(after), base, cur, key, kind)
            yield FLUSH  # the new rows go out before the window is re-read
            low = shift(self.window, cfg.overlap)
            upto = _not_after(engine, cur, key, edge_c, edge_k)
            yield from self._pages(engine, base.where(cur >= low, upto), base.where(upto),
                                   cur, key, kind)
            self.window = None  # the adapter commits this final position with a mark
        self.initialized = True
        self._prune()

    def _pages(self, engine: Engine, stmt: Select[Any], rest: Select[Any], cur: Any,
               key: Any, kind: str) -> Iterator[RowChange]:
        """``stmt``, then ``rest`` past the last row read, a batch at a time."""
        cfg = self.config
        while True:
            started = time.perf_counter()
            with engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(stmt).mappings().all()]
                self.last_query_s += time.perf_counter() - started
                if self.on_rows is not None:
                    self.on_rows(len(rows))
                # humanised and handed over in slices, so the pipeline commits the first
                # posts while the rest are still being formatted
                for at in range(0, len(rows), _SLICE):
                    fresh = [(r, h) for r in rows[at:at + _SLICE] if (h := self._digest(r))]
                    if not fresh:
                        continue
                    shown = self.humanizer.rows(conn, [r for r, _ in fresh])
                    for (raw, digest), data in zip(fresh, shown, strict=True):
                        self._advance(raw[self.cursor], raw[cfg.key])
                        yield self._change(raw, data, digest, kind)
            if len(rows) < cfg.batch:
                return
            stmt = rest.where(_after(engine, cur, key, rows[-1][self.cursor],
                                     rows[-1][cfg.key]))

    def _digest(self, row: dict[str, Any]) -> str:
        """The row's content hash, or "" when this content was already emitted."""
        skey = str(row[self.config.key])
        values = tuple(row.values())
        known = self.seen.get(skey)
        if known is not None and known[1] == values:
            return ""  # the overlap re-read of an emitted row: equal values, no hashing
        digest = row_hash(row)
        if known is not None and known[2] == digest:
            return ""
        self.seen[skey] = (row[self.cursor], values, digest)
        return digest

    def _advance(self, c: Any, k: Any) -> None:
        if self.last_c is None or (c, k) > (self.last_c, self.last_k):
            self.last_c, self.last_k = c, k

    def _prune(self) -> None:
        if self.last_c is None:
            return
        low = shift(self.last_c, self.config.overlap)
        try:
            self.seen = {k: v for k, v in self.seen.items() if v[0] is not None and v[0] >= low}
        except TypeError:  # mixed cursor types: keep nothing rather than compare wrongly
            self.seen = {}

    def _change(self, raw: dict[str, Any], data: dict[str, Any], digest: str,
                kind: str) -> RowChange:
        cfg = self.config
        k, c = raw[cfg.key], raw[self.cursor]
        if kind == "row.upserted":  # this row as it is now against the last seen: edits
            data[STEPS] = steps_unseen(cfg)  # between two polls are not seen one by one
        return RowChange(
            table=cfg.table, key=k, kind=kind,
            position=f"{cfg.table}:{plain(k)}:{plain(c)}:{digest}", data=data,
            occurred_at=as_utc(c, self.zone), group=c if self.cursor != cfg.key else NO_GROUP,
            after=self.position, subject=self.subject(k, data))



def _row_values(engine: Engine) -> bool:
    """Whether ``(a, b) > (x, y)`` is a plain index range scan here (PostgreSQL, SQLite);
    MySQL/MariaDB get the equivalent ``a >= x AND (a > x OR b > y)``."""
    return engine.dialect.name in ("postgresql", "sqlite")


def _after(engine: Engine, cur: Any, key: Any, c: Any, k: Any) -> ColumnElement[bool]:
    if _row_values(engine):
        return tuple_(cur, key) > tuple_(literal(c), literal(k))
    return and_(cur >= c, or_(cur > c, key > k))


def _not_after(engine: Engine, cur: Any, key: Any, c: Any, k: Any) -> ColumnElement[bool]:
    if _row_values(engine):
        return tuple_(cur, key) <= tuple_(literal(c), literal(k))
    return and_(cur <= c, or_(cur < c, key <= k))
