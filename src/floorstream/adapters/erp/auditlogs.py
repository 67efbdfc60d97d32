"""Readers of the change-log shapes real ERPs write, all giving the same :class:`Entry`.

- ``floorstream``: the table the installed triggers fill (``fs_erp_changes``): whole rows
  before and after, as JSON, one log row per changed row.
- ``sap``: CDHDR (header per change number) + CDPOS (one row per changed field, values as
  text; ``fname = 'KEY'`` for whole-row inserts and deletes).
- ``odoo``: ``mail_message`` (one per tracked write) + ``mail_tracking_value`` (one per field,
  values spread over typed columns; selections hold the label, not the key).
- ``frappe``: ``tabVersion`` with a JSON ``{"changed": [[field, old, new], …]}`` document.

Each reader returns entries ordered by the log's own id (never by time: timestamps cannot
order changes, see research §0.3) and reads the *whole* log sequence, not only its object's
rows, so that a gap in the ids is a real gap (a transaction still to commit), not another
object's row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, column, or_, select, table

from floorstream.adapters.erp.config import TableConfig

__all__ = ["LOG_TABLE", "Entry", "read_log"]

#: the change-log table the installed triggers write
LOG_TABLE = "fs_erp_changes"


@dataclass
class Entry:
    """One logged change of one record: raw values of the fields it changed."""

    log_id: Any  # int, or zero-padded text (SAP change numbers)
    key: Any
    op: str  # I | U | D
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    occurred_at: Any = None
    user: Any = None
    group: Any = None
    mine: bool = True  # False: another object's log row, read only to see the id sequence
    full_rows: bool = False  # before/after hold whole rows (trigger log)


def read_log(conn: Connection, config: TableConfig, after: Any, gaps: Sequence[Any],
             limit: int) -> list[Entry]:
    style = config.audit.style
    reader = {"floorstream": _floorstream, "sap": _sap, "odoo": _odoo, "frappe": _frappe}[style]
    return reader(conn, config, after, list(gaps), limit)


def _window(id_col: Any, after: Any, gaps: list[Any]) -> Any:
    if after is None:
        return None
    cond = id_col > after
    return or_(cond, id_col.in_(gaps)) if gaps else cond


def _floorstream(conn: Connection, config: TableConfig, after: Any, gaps: list[Any],
                 limit: int) -> list[Entry]:
    name = config.audit.table or LOG_TABLE
    log = table(name, *(column(c) for c in ("id", "table_name", "row_key", "op", "changed_at",
                                            "tx", "before_row", "after_row")))
    stmt = select(*log.c).order_by(log.c.id).limit(limit)
    where = _window(log.c.id, after, gaps)
    if where is not None:
        stmt = stmt.where(where)
    wanted = config.audit.object or config.table
    out = []
    for row in conn.execute(stmt):
        mine = row.table_name == wanted
        out.append(Entry(
            log_id=row.id, key=row.row_key, op=row.op, occurred_at=row.changed_at,
            group=row.tx, mine=mine, full_rows=True,
            before=_json(row.before_row) if mine else {},
            after=_json(row.after_row) if mine else {}))
    return out


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    loaded = json.loads(value)
    return loaded if isinstance(loaded, dict) else {}


def _sap(conn: Connection, config: TableConfig, after: Any, gaps: list[Any],
         limit: int) -> list[Entry]:
    head = table(config.audit.header_table or "change_header",
                 *(column(c) for c in ("objectclas", "objectid", "changenr", "username",
                                       "udate", "utime", "tcode", "change_ind")))
    item = table(config.audit.table or "change_item",
                 *(column(c) for c in ("objectclas", "objectid", "changenr", "tabname",
                                       "tabkey", "fname", "chngind", "value_old",
                                       "value_new")))
    stmt = select(*head.c).order_by(head.c.changenr).limit(limit)
    where = _window(head.c.changenr, after, gaps)
    if where is not None:
        stmt = stmt.where(where)
    headers = list(conn.execute(stmt))
    wanted = config.audit.object
    mine = [h for h in headers if wanted is None or h.objectclas == wanted]
    items: dict[tuple[str, str], list[Any]] = {}
    if mine:
        q = select(*item.c).where(item.c.changenr.in_(bindparam("nrs", expanding=True)))
        for it in conn.execute(q, {"nrs": sorted({h.changenr for h in mine})}):
            items.setdefault((it.objectid, it.changenr), []).append(it)
    out = []
    for h in headers:
        is_mine = wanted is None or h.objectclas == wanted
        entry = Entry(log_id=h.changenr, key=h.objectid, op=h.change_ind or "U",
                      occurred_at=f"{h.udate[:4]}-{h.udate[4:6]}-{h.udate[6:8]} "
                                  f"{h.utime[:2]}:{h.utime[2:4]}:{h.utime[4:6]}",
                      user=h.username, mine=is_mine)
        for it in sorted(items.get((h.objectid, h.changenr), []), key=lambda i: i.fname):
            if it.fname == "KEY":
                entry.op = "I" if it.chngind == "I" else "D" if it.chngind in "DE" else entry.op
                continue
            entry.before[it.fname] = it.value_old
            entry.after[it.fname] = it.value_new
        out.append(entry)
    return out


_ODOO_TYPES = ("char", "integer", "float", "datetime", "text")


def _odoo(conn: Connection, config: TableConfig, after: Any, gaps: list[Any],
          limit: int) -> list[Entry]:
    msg = table(config.audit.header_table or "mail_message",
                *(column(c) for c in ("id", "model", "res_id", "message_type", "author_id",
                                      "date")))
    cols = ["mail_message_id", "field_name"] + [f"{side}_value_{t}" for side in ("old", "new")
                                                for t in _ODOO_TYPES]
    track = table(config.audit.table or "mail_tracking_value",
                  *(column(c) for c in ["id", *cols]))
    stmt = select(*msg.c).order_by(msg.c.id).limit(limit)
    where = _window(msg.c.id, after, gaps)
    if where is not None:
        stmt = stmt.where(where)
    messages = list(conn.execute(stmt))
    wanted = config.audit.object
    mine_ids = [m.id for m in messages
                if m.message_type == "notification" and (wanted is None or m.model == wanted)]
    values: dict[Any, list[Any]] = {}
    if mine_ids:
        q = select(*track.c).where(
            track.c.mail_message_id.in_(bindparam("ids", expanding=True))).order_by(track.c.id)
        for tv in conn.execute(q, {"ids": mine_ids}):
            values.setdefault(tv.mail_message_id, []).append(tv)
    mine_set = set(mine_ids)
    out = []
    for m in messages:
        entry = Entry(log_id=m.id, key=m.res_id, op="U", occurred_at=m.date, user=m.author_id,
                      group=m.date, mine=m.id in mine_set)
        for tv in values.get(m.id, []):
            entry.before[tv.field_name] = _first(tv, "old")
            entry.after[tv.field_name] = _first(tv, "new")
        out.append(entry)
    return out


def _first(row: Any, side: str) -> Any:
    """Odoo spreads one value over typed columns: the char (label/display name) wins."""
    for kind in _ODOO_TYPES:
        value = getattr(row, f"{side}_value_{kind}")
        if value is not None:
            return value
    return None


def _frappe(conn: Connection, config: TableConfig, after: Any, gaps: list[Any],
            limit: int) -> list[Entry]:
    ver = table(config.audit.table or "tabVersion",
                *(column(c) for c in ("name", "creation", "owner", "ref_doctype", "docname",
                                      "data")))
    stmt = select(*ver.c).order_by(ver.c.creation, ver.c.name).limit(limit)
    if after is not None:  # (creation, name) > after: Version names are random hashes
        created, name = after
        stmt = stmt.where(or_(ver.c.creation > created,
                              (ver.c.creation == created) & (ver.c.name > name)))
    wanted = config.audit.object
    out = []
    for v in conn.execute(stmt):
        entry = Entry(log_id=(v.creation, v.name), key=v.docname, op="U",
                      occurred_at=v.creation, user=v.owner,
                      mine=wanted is None or v.ref_doctype == wanted)
        if entry.mine:
            doc = _json(v.data)
            for change in doc.get("changed") or []:
                if isinstance(change, list) and len(change) == 3:
                    entry.before[str(change[0])] = change[1]
                    entry.after[str(change[0])] = change[2]
        out.append(entry)
    return out
