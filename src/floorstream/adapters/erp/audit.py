"""``mode: audit``: read a change log, exact before/after per field, every intermediate value.

Entries are taken in the log's id order, so three transitions of one row inside one second
are three changes, each with its own ``before``. Ids come from sequences, and a transaction
that took id 100 may commit after the one that took 101: an id skipped while reading is kept
as a *gap* (with the time it was noticed, in the checkpoint) and asked for again on every poll
until it shows up or ``overlap`` has passed (rolled-back transactions leave permanent holes).

ERP idioms on top (:mod:`.idioms`): Odoo labels come back as keys, Frappe values as numbers
and dates, SAP times in UTC (:mod:`.auditlogs`); a Frappe Version's child-table rows become
events of their own, named by the parent and the row (``record.row_changed``, ``…_added``,
``…_removed``); and a record made from another (an amendment, a backorder) is announced
only by the first log entry about it, so an old amendment's next edit is not news.

An Odoo model whose tracked columns never reach ``mail_tracking_value`` (``stock.move`` is no
``mail.thread``; ``mrp.workorder.state`` was untracked up to 17; the database's
``ir_model_fields.tracking`` says so where it is readable) falls back by itself: cursor mode
on ``write_date`` when the table has it, else snapshot mode, with one log line saying why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, column, func, literal, select, table

from floorstream.adapters.erp.auditlogs import LOG_TABLE, ChildChange, Entry, read_log
from floorstream.adapters.erp.config import TableConfig
from floorstream.adapters.erp.idioms import untracked_fields
from floorstream.adapters.erp.lifecycle import LIFECYCLE, lifecycle
from floorstream.adapters.erp.publish import NO_GROUP, EventSpec, RowChange, SubjectMaker
from floorstream.adapters.erp.sqlcommon import (
    SchemaProblem,
    as_utc,
    client_filter,
    decode,
    encode,
)
from floorstream.adapters.erp.values import Humanizer, plain
from floorstream.plugin.log import get_logger

__all__ = ["AuditWatcher"]

_log = get_logger("floorstream.erp")

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
        self.saved = saved
        #: the cursor or snapshot watcher an untracked Odoo model falls back to
        self.inner: Any = None
        self.decided = config.audit.style != "odoo"

    @property
    def position(self) -> dict[str, Any]:
        if self.inner is not None:
            position: dict[str, Any] = self.inner.position
            return position
        return {"id": _encode_id(self.last),
                "gaps": [[_encode_id(k), t] for k, t in self.gaps.items()]}

    def _fallback(self, engine: Engine) -> Any:
        """Odoo: the watcher to use instead when the tracked columns are not tracked."""
        cfg = self.config
        idiom = self.humanizer.idiom
        with engine.connect() as conn:
            untracked = idiom.tracked_in_database(conn, cfg.track)
        if untracked is None:
            untracked = untracked_fields(idiom.model, idiom.version, cfg.track)
        if not untracked:
            return None
        names = self.columns()
        if names is None:
            raise SchemaProblem(f"table {cfg.table} does not exist")
        from floorstream.adapters.erp.cursor import CursorWatcher
        from floorstream.adapters.erp.snapshot import SnapshotWatcher

        def columns() -> list[str]:
            found = self.columns()
            if not found:
                raise SchemaProblem(f"table {cfg.table} does not exist")
            return found
        saved = self.saved if isinstance(self.saved, dict) else None
        if "write_date" in names:
            fallback = cfg.model_copy(update={"mode": "cursor", "cursor": "write_date"})
            watcher: Any = CursorWatcher(fallback, saved if saved and "c" in saved else None,
                                         columns)
        else:
            fallback = cfg.model_copy(update={"mode": "snapshot"})
            watcher = SnapshotWatcher(fallback, saved if saved and "h" in saved else None,
                                      columns)
        _log.warning("erp_audit_fallback", table=cfg.table, model=idiom.model,
                     untracked=untracked, mode=fallback.mode,
                     reason="these fields never reach mail_tracking_value")
        return watcher

    def poll(self, engine: Engine) -> Iterator[RowChange | None]:
        if not self.decided:
            self.inner = self._fallback(engine)
            self.decided = True
        if self.inner is not None:
            yield from self.inner.poll(engine)
            self.last_query_s = self.inner.last_query_s
            return
        yield from self._poll(engine)

    def _poll(self, engine: Engine) -> Iterator[RowChange]:
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
                self.humanizer.prepare(conn)
                entries = read_log(conn, cfg, self.last, list(self.gaps), cfg.batch,
                                   self.humanizer.idiom)
                self.last_query_s = time.perf_counter() - started
                mine = [e for e in entries if e.mine and (e.before or e.after or e.rows)]
                current = self._current_rows(conn, mine)
                pairs = self._humanize(conn, mine, current)
                if any("_origin" in data for data, _ in pairs):
                    self._first_news(conn, mine, pairs)
                rows = {id(e): self._child_rows(conn, e, data)
                        for e, (data, _) in zip(mine, pairs, strict=True) if e.rows}
            positions = {id(e): self._observe(e) for e in entries}
            for entry, (data, before) in zip(mine, pairs, strict=True):
                children = rows.get(id(entry), [])
                if entry.before or entry.after:
                    change = self._change(entry, data, before, positions[id(entry)])
                    if children:
                        change.after = None  # the entry's last event carries its position
                    yield change
                for n, child in enumerate(children, 1):
                    child.after = positions[id(entry)] if n == len(children) else None
                    yield child
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
        held = client_filter(self.config.site.client, names)
        if held is not None:  # SAP: the client's row, never training's with the same key
            stmt = stmt.where(held)
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
        if self.humanizer.virtual:  # the virtual fields describe the row after the change
            afters = self.humanizer.rows(conn, [a for a, _ in raw_pairs])
            befores = iter(self.humanizer.rows(
                conn, [b for _, b in raw_pairs if b is not None], virtual=False))
            pairs = [(a, next(befores) if b is not None else None)
                     for a, (_, b) in zip(afters, raw_pairs, strict=True)]
            for (after, _), (_, raw_before) in zip(pairs, raw_pairs, strict=True):
                life = after.get(LIFECYCLE)
                if isinstance(life, dict) and raw_before is not None:
                    was = lifecycle(life["field"], raw_before, bool(self.config.deletion_flag))
                    if was is not None:  # the log's before image says what it was
                        life["was"] = was["state"]
            self._status_of_then(entries, pairs)
            return pairs
        flat = [a for a, _ in raw_pairs] + [b for _, b in raw_pairs if b is not None]
        shown = iter(self.humanizer.rows(conn, flat))
        afters = [next(shown) for _ in raw_pairs]
        return [(a, next(shown) if b is not None else None)
                for a, (_, b) in zip(afters, raw_pairs, strict=True)]

    @staticmethod
    def _status_of_then(entries: list[Entry],
                        pairs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> None:
        """A submit read from the log together with later entries of the same document: the
        status the row has *now* is not the one the submit left, so it is only named when
        the entry itself set it or no later entry of the document follows in this batch."""
        last = {str(e.key): i for i, e in enumerate(entries)}
        for i, (entry, (data, _)) in enumerate(zip(entries, pairs, strict=True)):
            action = data.get("_action")
            if isinstance(action, dict) and action.get("status") \
                    and action["status"] not in entry.after and last[str(entry.key)] != i:
                data["_action"] = {**action, "status": None}

    def _first_news(self, conn: Connection, entries: list[Entry],
                    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> None:
        """Keep ``_origin`` (an amendment, a backorder) only on the first log entry about
        its record: the one the ERP wrote when it was made, or its first change since."""
        cfg = self.config
        audit = cfg.audit
        for entry, (data, _) in zip(entries, pairs, strict=True):
            if "_origin" not in data:
                continue
            if audit.style == "floorstream":
                first = entry.op == "I"
            else:
                first = not _earlier(conn, cfg, entry, self.humanizer.idiom.model)
            if not first:
                del data["_origin"]

    def _child_rows(self, conn: Connection, entry: Entry, data: dict[str, Any]
                    ) -> list[RowChange]:
        """Frappe child-table rows of one Version: one event each, named by the parent and
        the row ("MFG-WO-2024-00001: operations row 2 (Assembly): completed qty 0 → 5")."""
        cfg = self.config
        thread = data.get("_thread") if isinstance(data.get("_thread"), str) else None
        subject = self.subject(entry.key, data)
        names = self._row_names(conn, entry.rows)
        log_id = entry.log_id[1] if isinstance(entry.log_id, tuple) else entry.log_id
        out = []
        for n, row in enumerate(entry.rows):
            child = cfg.children.get(row.table)
            label = (child.label if child and child.label else row.table.replace("_", " "))
            labels = child.labels if child else {}
            track = set(child.track) if child and child.track else None
            fields: dict[str, Any] = {"table": row.table, "table_label": label,
                                      "number": row.number,
                                      "row_label": names.get((row.table, row.name))
                                      or _row_label(child, row.values)}
            if row.kind == "changed":
                changes = [{"field": f, "label": labels.get(f, f.replace("_", " ")),
                            "before": self._shown(row.table, f, old),
                            "after": self._shown(row.table, f, new)}
                           for f, old, new in row.changes
                           if f not in _META and (track is None or f in track)]
                if not changes:
                    continue
                fields["changes"] = changes
            else:
                fields["values"] = {f: self._shown(row.table, f, v)
                                    for f, v in row.values.items()
                                    if f not in _META and not f.startswith("_")
                                    and (track is None or f in track)}
            out.append(RowChange(
                table=cfg.table, key=entry.key, kind="row.updated",
                position=f"{cfg.table}:log:{log_id}#{row.table}:{row.name or n}:{row.kind}",
                data=fields, occurred_at=as_utc(entry.occurred_at), subject=subject,
                attrs={"by": str(entry.user)} if entry.user is not None else {},
                event=EventSpec(type=f"record.row_{row.kind}", fields=fields, thread=thread)))
        return out

    def _shown(self, child: str, col: str, value: Any) -> Any:
        shown = self.humanizer.value(f"{child}.{col}", value)
        return plain(shown)

    def _row_names(self, conn: Connection, rows: list[ChildChange]
                   ) -> dict[tuple[str, str | None], str]:
        """The name field of changed child rows, read from their table (one query per
        child table and Version)."""
        out: dict[tuple[str, str | None], str] = {}
        idiom = self.humanizer.idiom
        wanted: dict[str, list[str]] = {}
        for row in rows:
            if row.kind == "changed" and row.name:
                wanted.setdefault(row.table, []).append(row.name)
        for tfield, keys in wanted.items():
            child = self.config.children.get(tfield)
            if child is None or not child.name:
                continue
            doctype = idiom.child_doctypes.get(tfield)
            where = child.table or (f"tab{doctype}" if doctype else None)
            if where is None:
                continue
            src = table(where, column("name"), column(child.name))
            try:
                found = conn.execute(select(src.c.name, src.c[child.name]).where(
                    src.c.name.in_(bindparam("k", expanding=True))), {"k": keys})
                out.update({(tfield, str(k)): str(v) for k, v in found if v})
            except Exception:  # a child table of another shape: rows named by number only
                conn.rollback()
        return out

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


#: Frappe's own columns of every child row: never news
_META = frozenset({"name", "idx", "parent", "parentfield", "parenttype", "doctype", "owner",
                   "creation", "modified", "modified_by", "docstatus", "__islocal",
                   "__unsaved"})


def _row_label(child: Any, values: dict[str, Any]) -> str | None:
    """The name field of an added or removed row, from the row itself."""
    if child is not None and child.name and values.get(child.name) not in (None, ""):
        return str(values[child.name])
    return None


def _earlier(conn: Connection, cfg: TableConfig, entry: Entry, model: str | None) -> bool:
    """Whether the log holds an entry about the same record before ``entry``."""
    audit = cfg.audit
    wanted = audit.object or (model if audit.style in ("odoo", "frappe") else None)
    if audit.style == "frappe":
        ver = table(audit.table or "tabVersion", column("name"), column("creation"),
                    column("ref_doctype"), column("docname"))
        created, name = entry.log_id
        stmt = select(literal(1)).select_from(ver).where(
            ver.c.docname == entry.key,
            (ver.c.creation < created) | ((ver.c.creation == created) & (ver.c.name < name)))
        if wanted:
            stmt = stmt.where(ver.c.ref_doctype == wanted)
    elif audit.style == "odoo":
        msg = table(audit.header_table or "mail_message", column("id"), column("model"),
                    column("res_id"), column("message_type"))
        stmt = select(literal(1)).select_from(msg).where(
            msg.c.res_id == entry.key, msg.c.id < entry.log_id,
            msg.c.message_type == "notification")
        if wanted:
            stmt = stmt.where(msg.c.model == wanted)
    elif audit.style == "sap":
        head = table(audit.header_table or "change_header", column("objectclas"),
                     column("objectid"), column("changenr"))
        stmt = select(literal(1)).select_from(head).where(
            head.c.objectid == entry.key, head.c.changenr < entry.log_id)
        if audit.object:
            stmt = stmt.where(head.c.objectclas == audit.object)
    else:
        return False
    return conn.execute(stmt.limit(1)).first() is not None


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
