"""A record's life as its ERP flags it: archived, flagged for deletion, blocked, active.

ERPs rarely delete business records; they flag them, and the flag is a column like any other.
Read as a field change it misleads: "active yes → no" for an Odoo record archived, "deletion
indicator (empty) → L" for an SAP purchase order item deleted. The columns that carry a
record's life, by ERP:

- Odoo: ``active`` (boolean): false is *archived*, back to true *restored*;
- SAP: the deletion indicators ``LOEKZ`` (EKKO, EKPO, EBAN, AUFK …), ``LVORM`` (MARA, MARC:
  flagged for deletion at plant level) and ``LOEVM`` (KNA1, LFA1): blank is active, ``S``
  (EKPO) *blocked*, anything else (``L``, ``X``) *deleted*;
- any ERP: the table's ``deletion_flag:`` column (a boolean, 0/1, or an SAP indicator).

The adapter gives each row the virtual field ``_lifecycle`` (``{"field": column, "state":
"active"|"archived"|"deleted"|"blocked", "flag": stored value}``, plus ``"was"`` when an
audit log's before image says what it was) and the ``field_change`` detector posts the
change of state as ``record.archived``, ``record.deleted``, ``record.blocked`` or
``record.restored`` instead of a field change of that column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["LIFECYCLE", "SAP_INDICATORS", "lifecycle", "lifecycle_column", "lifecycle_of"]

#: the virtual field carrying a row's lifecycle to the ``field_change`` detector
LIFECYCLE = "_lifecycle"
#: SAP deletion indicators (lower case; SAP spells them in capitals)
SAP_INDICATORS = ("loekz", "lvorm", "loevm")
_FALSE = frozenset({"", "0", "f", "false", "n", "no"})


def lifecycle_column(system: str | None, columns: Iterable[str],
                     configured: str | None = None) -> str | None:
    """The column of ``columns`` (as the database spells it) that carries a record's life:
    the table's ``deletion_flag:``, else the ERP's own (Odoo ``active``, SAP ``LOEKZ`` …)."""
    by_lower = {c.lower(): c for c in columns}
    if configured is not None:
        return by_lower.get(configured.lower())
    if system == "odoo":
        return by_lower.get("active")
    if system == "sap":
        return next((by_lower[c] for c in SAP_INDICATORS if c in by_lower), None)
    return None


def _truthy(value: Any) -> bool:
    if isinstance(value, bool | int | float):
        return bool(value)
    return str(value).strip().lower() not in _FALSE


def lifecycle_of(column: str, value: Any, configured: bool = False) -> str:
    """``active``, ``archived``, ``deleted`` or ``blocked`` for ``column`` holding ``value``:
    Odoo's ``active`` is archived when false; a deletion indicator or flag is deleted when
    set, blocked when SAP's ``S``."""
    if not configured and column.lower() == "active":
        return "active" if value is None or _truthy(value) else "archived"
    if value is None:
        return "active"
    text = str(value).strip().upper()
    if text == "S" and (configured or column.lower() in SAP_INDICATORS):
        return "blocked"
    return "deleted" if _truthy(value) else "active"


def lifecycle(column: str, row: Mapping[str, Any], configured: bool = False
              ) -> dict[str, Any] | None:
    """The ``_lifecycle`` of ``row`` (raw values) when it holds ``column``."""
    if column not in row:
        return None
    value = row[column]
    flag = value if value is None or isinstance(value, bool | int | float | str) \
        else str(value)
    return {"field": column, "state": lifecycle_of(column, value, configured),
            "flag": flag.strip() if isinstance(flag, str) else flag}
