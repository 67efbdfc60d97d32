"""Small SQL helpers shared by the capture modes: typed cursor values in JSON checkpoints,
moving a cursor back by the overlap window, reading a table's columns, schema problems."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, column, inspect

__all__ = ["CLIENT_COLUMN", "SchemaProblem", "as_utc", "client_column", "client_filter", "decode",
           "encode", "naive_zone", "present_columns", "shift"]


class SchemaProblem(Exception):
    """A watched table lost a column the config needs (renamed, dropped) or vanished."""


#: SAP's client column: every client-dependent SAP table starts with it
CLIENT_COLUMN = "mandt"


def client_column(columns: Iterable[str]) -> str | None:
    """The table's MANDT column as the database spells it (``mandt``, ``MANDT``), if any."""
    return next((c for c in columns if c.lower() == CLIENT_COLUMN), None)


def client_filter(client: str | None, columns: Iterable[str]) -> ColumnElement[bool] | None:
    """``mandt = '100'`` for a table with a MANDT column when the source names its SAP client;
    None otherwise (a table without MANDT is client-independent, as TJ02T is in SAP)."""
    name = client_column(columns) if client else None
    return None if name is None else column(name) == client


def encode(value: Any) -> Any:
    """A raw cursor/key value as JSON that :func:`decode` turns back into the same type."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {"t": "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {"t": "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {"t": "decimal", "v": str(value)}
    return str(value)


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        kind, raw = value.get("t"), str(value.get("v"))
        if kind == "datetime":
            return datetime.fromisoformat(raw)
        if kind == "date":
            return date.fromisoformat(raw)
        if kind == "decimal":
            return Decimal(raw)
    return value


def shift(value: Any, overlap: float) -> Any:
    """``value`` moved back by the overlap window (seconds for times, units for numbers)."""
    if not overlap or value is None or isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return value - timedelta(seconds=overlap)
    if isinstance(value, date):
        return value - timedelta(days=max(1, int(overlap // 86400)))
    if isinstance(value, int):
        return value - int(overlap)
    if isinstance(value, float):
        return value - overlap
    if isinstance(value, Decimal):
        return value - Decimal(str(overlap))
    if isinstance(value, str):
        return _shift_text(value, overlap)
    return value


def _shift_text(value: str, overlap: float) -> str:
    """SQLite timestamps are text: shift them in the same format so text comparison holds."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    moved = parsed - timedelta(seconds=overlap)
    if len(value) <= 10:
        return moved.date().isoformat()
    text = moved.replace(tzinfo=None).isoformat(sep=value[10], timespec="microseconds")
    if "." in value[19:]:
        digits = len(value[20:].split("+")[0].split("Z")[0])
        return text[: 20 + digits]
    return text[:19]


def as_utc(value: Any, zone: tzinfo = UTC) -> datetime | None:
    """A source time for ``Change.occurred_at``: a naive value is read in ``zone`` (Odoo
    stores UTC; Frappe and most SAP tables the site's or plant's local time) and converted
    to UTC; an ambiguous hour is read as its first occurrence."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        moment: datetime = value if value.tzinfo else value.replace(tzinfo=zone)
        return moment.astimezone(UTC)
    return None


def naive_zone(system: str | None, zone: tzinfo) -> tzinfo:
    """The zone of the ERP's timestamps that carry none: Odoo writes every datetime in UTC
    whatever its users' zone, so the source's ``time_zone`` (the plant's) is not applied to
    Odoo; Frappe (System Settings time zone), SAP and plain databases store local time."""
    return UTC if system == "odoo" else zone


def present_columns(conn: Connection, table: str) -> list[str]:
    """The table's columns now; raises :class:`SchemaProblem` when the table is gone."""
    inspector = inspect(conn)
    if not inspector.has_table(table):
        raise SchemaProblem(f"table {table} does not exist")
    return [c["name"] for c in inspector.get_columns(table)]


def require(columns: Iterable[str], needed: Iterable[str], table: str) -> None:
    have = set(columns)
    missing = [c for c in needed if c not in have]
    if missing:
        raise SchemaProblem(f"table {table} has no column {', '.join(missing)} any more "
                            "(renamed or dropped?)")
