"""Stored values → what people read: enum labels, dates, decimals, foreign keys by name.

Unknown enum values are shown raw, never dropped (ERPs grow custom states). Foreign keys are
resolved in one query per batch and cached with a TTL, so a poll of a thousand rows costs one
lookup query, not a thousand. Labels come from ``values:`` first, then from the ERP itself
(:class:`~.idioms.Idiom`: Odoo selections of the release and the database, Frappe docstatus);
SAP ALPHA columns (``alpha:``) are shown without their leading zeros.

A humanised row may carry *virtual* fields, which start with ``_`` and are never columns
(the ``field_change`` detector and the publisher read them, templates may):

- ``_thread``: the thread the row's posts join (``thread:``, or the first record of its
  ``parent:`` chain, or an Odoo split's base name);
- ``_origin``: ``{"verb": "amended"|"backorder"|"split", "of": <parent subject>}`` for a
  record made from another one;
- ``_action``: Frappe, ``{"field": "docstatus", "verb": "submitted"|"cancelled", "status":
  "status"}``: what the document's docstatus says was done to it;
- ``_attrs``: the ``row_attrs`` (canonical stored values), taken out by the publisher;
- ``_lifecycle``: ``{"field", "state", "flag"}``: the record's life as its ERP flags it
  (archived, deleted, blocked, active; see :mod:`.lifecycle`);
- ``_steps``: ``{"polled_every_s": s}`` on a row change read by comparing states (cursor and
  snapshot modes): the change is from the state seen at the last poll to this one, and
  steps between may be missing; the ``field_change`` detector says so in its posts.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Connection, bindparam, column, inspect, select, table, text
from sqlalchemy.exc import DBAPIError, NoSuchTableError

from floorstream.adapters.erp.alpha import alpha_out, canonical
from floorstream.adapters.erp.config import LookupConfig, TableConfig
from floorstream.adapters.erp.idioms import Idiom
from floorstream.adapters.erp.lifecycle import LIFECYCLE, lifecycle, lifecycle_column
from floorstream.adapters.erp.sqlcommon import naive_zone

__all__ = ["ATTRS", "STEPS", "Humanizer", "LookupCache", "plain", "row_hash", "steps_unseen"]

#: the virtual field carrying a row's ``row_attrs`` to the publisher
ATTRS = "_attrs"
#: the virtual field of a change compared across polls: steps between may be missing
STEPS = "_steps"


def steps_unseen(config: TableConfig) -> dict[str, Any]:
    """The ``_steps`` of a table read by comparing states every poll interval."""
    return {"polled_every_s": config.interval or config.site.interval}


def plain(value: Any) -> Any:
    """A JSON-able stand-in for a raw database value (for hashes and checkpoints)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def row_hash(row: Mapping[str, Any], columns: Iterable[str] | None = None) -> str:
    """Short content hash of a row (of the given columns), stable across processes."""
    names = sorted(columns if columns is not None else row)
    payload = json.dumps([[n, plain(row.get(n))] for n in names], separators=(",", ":"))
    return hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()


def _boolean_columns(conn: Connection, name: str) -> frozenset[str]:
    """Columns of ``name`` declared BOOLEAN: MariaDB/MySQL keep them as TINYINT(1) and SQLite
    as an integer, so their rows say 0/1 where PostgreSQL's say true/false."""
    try:
        columns = inspect(conn).get_columns(name)
    except (NoSuchTableError, DBAPIError):
        conn.rollback()
        return frozenset()
    return frozenset(
        c["name"] for c in columns if isinstance(c["type"], Boolean)
        or (type(c["type"]).__name__ == "TINYINT" and getattr(c["type"], "display_width", None)
            == 1))


def _midnight(value: datetime) -> bool:
    return value.hour == value.minute == value.second == value.microsecond == 0


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        return str(value)
    text_ = format(value.normalize(), "f")
    return text_


class LookupCache:
    """Names of foreign keys, cached per column with a TTL and a size bound (LRU)."""

    def __init__(self, config: LookupConfig) -> None:
        self.config = config
        self._names: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self.queries = 0

    def resolve(self, conn: Connection, values: Iterable[Any]) -> dict[Any, Any]:
        now = time.monotonic()
        wanted = {v for v in values if v is not None}
        found: dict[Any, Any] = {}
        missing = []
        for value in wanted:
            hit = self._names.get(value)
            if hit is not None and now - hit[0] < self.config.ttl:
                self._names.move_to_end(value)
                found[value] = hit[1]
            else:
                missing.append(value)
        if missing:
            fetched = self._fetch(conn, missing)
            for value in missing:
                name = fetched.get(value, fetched.get(str(value)))
                if name is not None:
                    found[value] = name
                    self._names[value] = (now, name)
            while len(self._names) > self.config.cache_size:
                self._names.popitem(last=False)
        return found

    def _fetch(self, conn: Connection, values: list[Any]) -> dict[Any, Any]:
        cfg = self.config
        self.queries += 1
        if cfg.sql is not None:
            query = text(cfg.sql)
            out = {}
            for value in values:
                row = conn.execute(query, {"value": value}).first()
                if row is not None:
                    out[value] = row[0]
            return out
        assert cfg.table is not None
        src = table(cfg.table, column(cfg.key), column(cfg.name))
        stmt = select(src.c[cfg.key], src.c[cfg.name]).where(
            src.c[cfg.key].in_(bindparam("keys", expanding=True)))
        return {k: n for k, n in conn.execute(stmt, {"keys": values})}


class Humanizer:
    """Turns one table's raw rows into the values posts show."""

    def __init__(self, config: TableConfig) -> None:
        self.config = config
        self.lookups = {col: LookupCache(cfg) for col, cfg in config.lookups.items()}
        self.idiom = Idiom(config)
        self.alpha = frozenset(config.alpha)
        #: columns declared boolean, whatever the driver returns (see :meth:`prepare`)
        self.booleans: frozenset[str] = frozenset()
        #: the zone of the datetimes the ERP stores without one
        self.stored_zone = naive_zone(self.idiom.system, config.site.time_zone)
        self.labels: dict[str, dict[str, str]] = {}
        self._merge_labels()
        self.lineage: Any = None
        if self.idiom.parent is not None or self.idiom.split_names is not None \
                or config.thread:
            from floorstream.adapters.erp.lineage import Lineage
            self.lineage = Lineage(config, self)
        #: records an ERP flags as archived or deleted (see :mod:`.lifecycle`)
        self.flags_life = bool(self.idiom.system in ("odoo", "sap") or config.deletion_flag)
        self.virtual = bool(self.lineage is not None or self.idiom.actions
                            or config.row_attrs or self.flags_life)

    def _merge_labels(self) -> None:
        """Per column: the ERP's labels, overridden by ``values:``."""
        merged = {col: dict(m) for col, m in self.idiom.value_labels.items()}
        for col, mapping in self.config.values.items():
            merged[col] = {**merged.get(col, {}), **mapping}
        self.labels = merged

    def prepare(self, conn: Connection) -> None:
        """Read what the ERP's own tables add (once; see :class:`~.idioms.Idiom`), and which
        columns are booleans the driver hands over as numbers."""
        if not self.idiom.loaded:
            self.idiom.load(conn)
            self._merge_labels()
            self.booleans = _boolean_columns(conn, self.config.table)

    def rows(self, conn: Connection, rows: list[dict[str, Any]], *, virtual: bool = True
             ) -> list[dict[str, Any]]:
        """Rows as posts show them; with ``virtual`` the virtual fields too (not for the
        before images of an audit log: they describe the row as it is now)."""
        if not self.idiom.loaded:
            self.prepare(conn)
        names: dict[str, dict[Any, Any]] = {}
        for col, cache in self.lookups.items():
            names[col] = cache.resolve(conn, (r.get(col) for r in rows))
        shown = [self._row(r, names) for r in rows]
        if virtual and self.virtual and rows:
            self._virtual(conn, rows, shown)
        return shown

    def _virtual(self, conn: Connection, raws: list[dict[str, Any]],
                 shown: list[dict[str, Any]]) -> None:
        cfg, actions = self.config, self.idiom.actions
        life = lifecycle_column(self.idiom.system, raws[0], cfg.deletion_flag) \
            if self.flags_life else None
        for raw, data in zip(raws, shown, strict=True):
            if life is not None and (state := lifecycle(life, raw, bool(cfg.deletion_flag))):
                data[LIFECYCLE] = state
            if cfg.row_attrs:
                data[ATTRS] = {attr: canonical(plain(raw.get(col)))
                               for attr, col in cfg.row_attrs.items()
                               if raw.get(col) not in (None, "")}
            if actions and "docstatus" in raw:
                verb = actions.get(str(plain(raw["docstatus"])))
                if verb is not None:
                    data["_action"] = {"field": "docstatus", "verb": verb,
                                       "status": "status" if "status" in raw else None}
        if self.lineage is not None:
            self.lineage.apply(conn, raws, shown)

    def _row(self, row: Mapping[str, Any], names: Mapping[str, Mapping[Any, Any]]
             ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for col, value in row.items():
            if col in names and value is not None:
                out[col] = names[col].get(value, value)
            else:
                out[col] = self.value(col, value)
        return out

    def value(self, col: str, value: Any) -> Any:
        """One value as people read it; enum maps first, then by type."""
        if col in self.alpha:
            value = alpha_out(value)
        mapping = self.labels.get(col)
        if mapping is not None and value is not None:
            return mapping.get(str(value), value if isinstance(value, str) else plain(value))
        if col in self.booleans and isinstance(value, int) and value in (0, 1):
            return bool(value)  # MariaDB BOOLEAN is TINYINT(1), SQLite's an integer: yes/no
        if isinstance(value, datetime):
            return self._datetime(value)
        if isinstance(value, date):
            return value.strftime(self.config.date_format)
        if isinstance(value, Decimal):
            return _decimal(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).hex()
        if isinstance(value, str):
            return self._maybe_timestamp(value)
        return value

    def _datetime(self, value: datetime) -> str:
        """A datetime on the plant's clock, labelled: "25 Nov 2026 10:15 CET". Stored
        without a zone it is in the ERP's (``time_zone``; Odoo: UTC); shown in the display
        zone, else in that one. A date kept as a datetime (midnight where the ERP keeps
        local time, or on the shown clock for Odoo's UTC) is shown as a date."""
        cfg = self.config
        local_clock = not value.tzinfo and self.idiom.system != "odoo"
        if local_clock and _midnight(value):
            return value.strftime(cfg.date_format)  # a date kept as datetime
        moment = value if value.tzinfo else value.replace(tzinfo=self.stored_zone)
        shown = moment.astimezone(cfg.site.display_zone or self.stored_zone)
        if not local_clock and _midnight(shown):
            return shown.strftime(cfg.date_format)
        return f"{shown.strftime(cfg.datetime_format)} {shown.tzname() or ''}".rstrip()

    def _maybe_timestamp(self, value: str) -> str:
        """SQLite keeps timestamps as text: format ISO-looking strings like real datetimes."""
        if len(value) < 10 or not (value[4] == "-" and value[7] == "-" and value[:4].isdigit()):
            return value
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        if len(value) == 10:
            return parsed.strftime(self.config.date_format)
        return self._datetime(parsed)
