"""Readers of the change-log shapes real ERPs write, all giving the same :class:`Entry`.

- ``floorstream``: the table the installed triggers fill (``fs_erp_changes``): whole rows
  before and after, as JSON, one log row per changed row.
- ``sap``: CDHDR (header per change number) + CDPOS (one row per changed field, values as
  text; ``fname = 'KEY'`` for whole-row inserts and deletes). ``UDATE``/``UTIME`` are the
  app server's local time: read in the source's ``time_zone`` and converted to UTC here,
  once.
- ``odoo``: ``mail_message`` (one per tracked write) + ``mail_tracking_value`` (one per field,
  values spread over typed columns; selections hold the label, in the writer's language, which
  is mapped back to the key here, see :class:`~.idioms.Idiom`). The field is named by
  ``field_name`` (the shared test DDL), ``field_id`` (Odoo 17+) or ``field`` (≤ 16), the
  last two through ``ir_model_fields``; ``*_value_monetary`` (≤ 16) is read when present.
- ``frappe``: ``tabVersion`` with a JSON ``{"changed": [[field, old, new], …], "added":
  […], "removed": […], "row_changed": […]}`` document; values are formatted text, read back
  into numbers and dates with the site's formats; child-table rows become
  :class:`ChildChange` s.

Each reader returns entries ordered by the log's own id (never by time: timestamps cannot
order changes, see research §0.3) and reads the *whole* log sequence, not only its object's
rows, so that a gap in the ids is a real gap (a transaction still to commit), not another
object's row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, column, inspect, or_, select, table

from floorstream.adapters.erp.config import TableConfig
from floorstream.adapters.erp.idioms import Idiom
from floorstream.adapters.erp.lifecycle import SAP_INDICATORS
from floorstream.adapters.erp.sqlcommon import as_utc

__all__ = ["LOG_TABLE", "ChildChange", "Entry", "log_tables", "read_log", "sap_client_column",
           "sap_time"]

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
    rows: list[ChildChange] = field(default_factory=list)  # frappe: child-table rows


@dataclass
class ChildChange:
    """One child-table row of a Frappe document that a Version added, removed or changed."""

    kind: str  # added | removed | changed
    table: str  # the parent's table field (operations, items)
    number: int | None  # the row's number as people see it (idx, 1-based)
    name: str | None  # the row's own name (a hash)
    values: dict[str, Any] = field(default_factory=dict)  # added/removed: the whole row
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)  # changed: f, old, new


def log_tables(config: TableConfig) -> list[str]:
    """The tables an audit ``style`` reads (the change log itself, not the watched table)."""
    audit = config.audit
    return {"floorstream": [audit.table or LOG_TABLE],
            "sap": [audit.header_table or "change_header", audit.table or "change_item"],
            "odoo": [audit.header_table or "mail_message", audit.table or "mail_tracking_value"],
            "frappe": [audit.table or "tabVersion"]}[audit.style]


def read_log(conn: Connection, config: TableConfig, after: Any, gaps: Sequence[Any],
             limit: int, idiom: Idiom | None = None) -> list[Entry]:
    style = config.audit.style
    reader = {"floorstream": _floorstream, "sap": _sap, "odoo": _odoo, "frappe": _frappe}[style]
    return reader(conn, config, after, list(gaps), limit, idiom or Idiom(config))


def _window(id_col: Any, after: Any, gaps: list[Any]) -> Any:
    if after is None:
        return None
    cond = id_col > after
    return or_(cond, id_col.in_(gaps)) if gaps else cond


def _floorstream(conn: Connection, config: TableConfig, after: Any, gaps: list[Any],
                 limit: int, idiom: Idiom) -> list[Entry]:
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
    try:
        loaded = json.loads(value)
    except ValueError:  # not JSON: nothing to read in it (never a stopped source)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def sap_time(udate: Any, utime: Any, zone: Any) -> datetime | None:
    """CDHDR ``UDATE`` (``YYYYMMDD``) + ``UTIME`` (``HHMMSS``), local time of ``zone``, as
    aware UTC; None for an initial or malformed date (``00000000``). A local time that
    occurs twice (the autumn change) is read as the first of the two."""
    day, clock = str(udate or "").strip(), str(utime or "").strip().zfill(6)
    if len(day) != 8 or not day.isdigit() or not clock[:6].isdigit():
        return None
    try:
        local = datetime(int(day[:4]), int(day[4:6]), int(day[6:8]), int(clock[:2]),
                         int(clock[2:4]), int(clock[4:6]), tzinfo=zone)
    except ValueError:
        return None
    return local.astimezone(UTC)


def _text(value: Any) -> Any:
    """CDPOS values are CHAR254: the padding is not part of the value."""
    return value.strip() if isinstance(value, str) else value


#: (database, table) → the column holding CDHDR/CDPOS's client (``MANDANT``; MANDT in views)
_SAP_CLIENTS: dict[tuple[str, str], str | None] = {}


def sap_client_column(conn: Connection, name: str) -> str | None:
    """The client column of a change-document table as the database spells it: CDHDR and
    CDPOS name it ``MANDANT`` (not ``MANDT``); None when the table has none."""
    key = (str(conn.engine.url), name)
    if key not in _SAP_CLIENTS:
        present = [c["name"] for c in inspect(conn).get_columns(name)]
        _SAP_CLIENTS[key] = next((c for c in present
                                  if c.lower() in ("mandant", "mandt")), None)
    return _SAP_CLIENTS[key]


def _sap(conn: Connection, config: TableConfig, after: Any, gaps: list[Any],
         limit: int, idiom: Idiom) -> list[Entry]:
    head_name = config.audit.header_table or "change_header"
    item_name = config.audit.table or "change_item"
    client = config.site.client
    # change numbers are counted per client: reading one client's documents keeps the gap
    # tracking to that client's own number range, and never posts a training client's edit
    head_client = sap_client_column(conn, head_name) if client else None
    item_client = sap_client_column(conn, item_name) if client else None
    head = table(head_name,
                 *(column(c) for c in ("objectclas", "objectid", "changenr", "username",
                                       "udate", "utime", "tcode", "change_ind")))
    item = table(item_name,
                 *(column(c) for c in ("objectclas", "objectid", "changenr", "tabname",
                                       "tabkey", "fname", "chngind", "value_old",
                                       "value_new")))
    stmt = select(*head.c).order_by(head.c.changenr).limit(limit)
    where = _window(head.c.changenr, after, gaps)
    if where is not None:
        stmt = stmt.where(where)
    if head_client is not None:
        stmt = stmt.where(column(head_client) == client)
    headers = list(conn.execute(stmt))
    zone = config.site.time_zone
    wanted = config.audit.object
    mine = [h for h in headers if wanted is None or h.objectclas == wanted]
    items: dict[tuple[str, str], list[Any]] = {}
    if mine:
        q = select(*item.c).where(item.c.changenr.in_(bindparam("nrs", expanding=True)))
        if item_client is not None:
            q = q.where(column(item_client) == client)
        for it in conn.execute(q, {"nrs": sorted({h.changenr for h in mine})}):
            items.setdefault((it.objectid, it.changenr), []).append(it)
    spelled = {c: c for c in SAP_INDICATORS} | {
        c.lower(): c for c in (*config.track, *config.labels, config.key,
                               *([config.deletion_flag] if config.deletion_flag else []))}
    out = []
    for h in headers:
        is_mine = wanted is None or h.objectclas == wanted
        entry = Entry(log_id=h.changenr, key=h.objectid, op=h.change_ind or "U",
                      occurred_at=sap_time(h.udate, h.utime, zone),
                      user=h.username, mine=is_mine)
        for it in sorted(items.get((h.objectid, h.changenr), []), key=lambda i: i.fname):
            if it.fname == "KEY":
                entry.op = "I" if it.chngind == "I" else "D" if it.chngind in "DE" else entry.op
                continue
            # SAP names fields in capitals (KTEXT); a replica's columns are often lower case
            name = spelled.get(str(it.fname).lower(), it.fname)
            entry.before[name] = _text(it.value_old)
            entry.after[name] = _text(it.value_new)
        out.append(entry)
    return out


_ODOO_TYPES = ("char", "integer", "float", "monetary", "datetime", "text")


def _tracking_shape(conn: Connection, name: str) -> tuple[str, list[str], bool]:
    """How this database's mail_tracking_value names a field (``field_name``,
    ``field_id``, ``field``), which typed value columns it has, and ``field_info``."""
    present = {c["name"] for c in inspect(conn).get_columns(name)}
    by = next((c for c in ("field_name", "field_id", "field") if c in present), "field_name")
    kinds = [k for k in _ODOO_TYPES if f"old_value_{k}" in present]
    return by, kinds, "field_info" in present


_SHAPES: dict[tuple[str, str], tuple[str, list[str], bool]] = {}


def _odoo(conn: Connection, config: TableConfig, after: Any, gaps: list[Any],
          limit: int, idiom: Idiom) -> list[Entry]:
    msg = table(config.audit.header_table or "mail_message",
                *(column(c) for c in ("id", "model", "res_id", "message_type", "author_id",
                                      "date")))
    name = config.audit.table or "mail_tracking_value"
    shape_key = (str(conn.engine.url), name)
    if shape_key not in _SHAPES:
        _SHAPES[shape_key] = _tracking_shape(conn, name)
    by, kinds, has_info = _SHAPES[shape_key]
    cols = ["id", "mail_message_id", by] + [f"{side}_value_{t}" for side in ("old", "new")
                                            for t in kinds]
    if has_info:
        cols.append("field_info")
    track = table(name, *(column(c) for c in cols))
    stmt = select(*msg.c).order_by(msg.c.id).limit(limit)
    where = _window(msg.c.id, after, gaps)
    if where is not None:
        stmt = stmt.where(where)
    messages = list(conn.execute(stmt))
    wanted = config.audit.object or idiom.model
    mine_ids = [m.id for m in messages
                if m.message_type == "notification" and (wanted is None or m.model == wanted)]
    values: dict[Any, list[Any]] = {}
    if mine_ids:
        fields_table = table("ir_model_fields", column("id"), column("name"))
        select_cols: list[Any] = [*track.c]
        source: Any = track
        if by != "field_name":  # Odoo names the field through ir_model_fields
            source = track.outerjoin(fields_table, fields_table.c.id == track.c[by])
            select_cols.append(fields_table.c.name.label("fs_field_name"))
        q = select(*select_cols).select_from(source).where(
            track.c.mail_message_id.in_(bindparam("ids", expanding=True))).order_by(track.c.id)
        for tv in conn.execute(q, {"ids": mine_ids}):
            values.setdefault(tv.mail_message_id, []).append(tv)
    mine_set = set(mine_ids)
    out = []
    for m in messages:
        entry = Entry(log_id=m.id, key=m.res_id, op="U", occurred_at=m.date, user=m.author_id,
                      group=m.date, mine=m.id in mine_set)
        for tv in values.get(m.id, []):
            fname = _odoo_field(tv, by, has_info)
            if fname is None:
                continue
            entry.before[fname] = idiom.key_of(fname, _first(tv, "old", kinds))
            entry.after[fname] = idiom.key_of(fname, _first(tv, "new", kinds))
        out.append(entry)
    return out


def _odoo_field(row: Any, by: str, has_info: bool) -> str | None:
    if by == "field_name":
        return str(row.field_name)
    found = getattr(row, "fs_field_name", None)
    if found:
        return str(found)
    if has_info:  # Odoo 17+: a field since removed is described here
        info = row.field_info
        if isinstance(info, str):
            try:
                info = json.loads(info)
            except ValueError:
                info = None
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            return str(info["name"])
    return None


def _first(row: Any, side: str, kinds: Sequence[str] = _ODOO_TYPES) -> Any:
    """Odoo spreads one value over typed columns: the char (label/display name) wins."""
    for kind in kinds:
        value = getattr(row, f"{side}_value_{kind}")
        if value is not None:
            return value
    return None


def _frappe(conn: Connection, config: TableConfig, after: Any, gaps: list[Any],
            limit: int, idiom: Idiom) -> list[Entry]:
    ver = table(config.audit.table or "tabVersion",
                *(column(c) for c in ("name", "creation", "owner", "ref_doctype", "docname",
                                      "data")))
    stmt = select(*ver.c).order_by(ver.c.creation, ver.c.name).limit(limit)
    if after is not None:  # (creation, name) > after: Version names are random hashes
        created, name = after
        stmt = stmt.where(or_(ver.c.creation > created,
                              (ver.c.creation == created) & (ver.c.name > name)))
    wanted = config.audit.object or idiom.model
    out = []
    for v in conn.execute(stmt):
        entry = Entry(log_id=(v.creation, v.name), key=v.docname, op="U",
                      occurred_at=as_utc(v.creation, config.site.time_zone), user=v.owner,
                      mine=wanted is None or v.ref_doctype == wanted)
        if entry.mine:
            _frappe_doc(entry, _json(v.data), idiom)
        out.append(entry)
    return out


def _frappe_doc(entry: Entry, doc: dict[str, Any], idiom: Idiom) -> None:
    """A Version's JSON diff into the entry: changed fields (typed again), child rows."""
    for change in doc.get("changed") or []:
        if isinstance(change, list) and len(change) == 3:
            fname = str(change[0])
            entry.before[fname] = idiom.parse(fname, change[1])
            entry.after[fname] = idiom.parse(fname, change[2])
    for item in doc.get("row_changed") or []:
        if not (isinstance(item, list) and len(item) == 4 and isinstance(item[3], list)):
            continue
        tfield, a, b, changes = str(item[0]), item[1], item[2], item[3]
        # Frappe writes [field, position (0-based), row name, changes]; its docstring
        # (and older readers) have the name first
        position, name = (a, b) if isinstance(a, int) else (b, a)
        entry.rows.append(ChildChange(
            kind="changed", table=tfield,
            number=position + 1 if isinstance(position, int) else None,
            name=name if isinstance(name, str) else None,
            changes=[(str(c[0]), idiom.parse(str(c[0]), c[1], tfield),
                      idiom.parse(str(c[0]), c[2], tfield))
                     for c in changes if isinstance(c, list) and len(c) == 3]))
    for kind in ("added", "removed"):
        for item in doc.get(kind) or []:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict)):
                continue
            tfield, row = str(item[0]), item[1]
            idx = row.get("idx")
            entry.rows.append(ChildChange(
                kind=kind, table=tfield, number=idx if isinstance(idx, int) else None,
                name=row.get("name") if isinstance(row.get("name"), str) else None,
                values={str(k): idiom.parse(str(k), v, tfield) for k, v in row.items()}))
