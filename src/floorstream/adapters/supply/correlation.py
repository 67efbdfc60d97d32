"""ERP correlation: PO number → supplier, promised date and ordered quantity per line.

The lookup is one configured SQL query run through SQLAlchemy, so it works against whatever
ERP database the plant has (Odoo, ERPNext, an SAP replica, the schema in
``tests/supply/erp-subset-ddl.sql``, which the default query is written for). The query takes
``:po`` and returns one row per PO line with the columns named below; extra columns are
ignored, missing optional ones are None. Results are cached for ``cache_s`` seconds so a
10,000-file backlog does not run 10,000 identical queries.

Flags are read by their SQL type, not by their text: a deletion flag may be a real boolean
(``deletion_flag boolean default false``), an integer (``0``/``1``, ERPNext's ``docstatus`` 2
= cancelled is configurable through the query) or SAP's character indicator (``''`` active,
``'L'`` deleted, ``'S'`` blocked). ``False``, ``0`` and ``''`` never mean deleted.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, create_engine, text

from floorstream.plugin import alpha_in, alpha_out

__all__ = ["DEFAULT_QUERY", "ErpConfig", "ErpLookup", "PoLine", "PurchaseOrder", "deletion_flag",
           "line_key"]

DEFAULT_QUERY = """
SELECT po.name AS po, po.vendor_code AS supplier, l.line_no AS line,
       l.product_qty AS ordered_qty, l.qty_received AS received_qty, l.uom AS uom,
       COALESCE(l.date_planned, po.date_planned) AS promised,
       l.vendor_product_code AS vendor_part, l.deletion_flag AS deletion_flag
FROM purchase_order po
LEFT JOIN purchase_order_line l ON l.order_id = po.id
WHERE po.name = :po
ORDER BY l.line_no
"""


class ErpConfig(BaseModel):
    """``erp:`` key of a supply source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="SQLAlchemy URL of the ERP database (read access suffices)")
    query: str = Field(default=DEFAULT_QUERY,
                       description="SQL taking :po, one row per PO line: po, supplier, line, "
                                   "ordered_qty, uom, promised[, received_qty, vendor_part, "
                                   "deletion_flag, alt_uom, alt_factor]")
    supplier_names: dict[str, str] = Field(default_factory=dict,
                                           description="supplier code → name for posts")
    cache_s: float = Field(default=60.0, ge=0, description="how long a PO lookup is reused")
    po_alpha: int | None = Field(
        default=10, ge=1, le=40,
        description="SAP ALPHA: a numeric PO not found as written is looked up again without "
                    "its leading zeros and zero-padded to this length (EKKO-EBELN: 10), so "
                    "4500012 finds 0004500012 and back; null: only as written")


@dataclass(frozen=True, slots=True)
class PoLine:
    line: str
    ordered: float | None
    received: float | None
    uom: str | None
    promised: datetime | None
    vendor_part: str | None
    deleted: bool
    blocked: bool = False  # SAP LOEKZ 'S': the line stays but must not be delivered
    alt_uom: str | None = None  # an alternative unit of this line (a case, a pallet)…
    alt_factor: float | None = None  # …and how many ``uom`` one of it holds


@dataclass(frozen=True, slots=True)
class PurchaseOrder:
    po: str
    supplier: str | None
    lines: dict[str, PoLine] = field(default_factory=dict)

    def find(self, line: str | None, vendor_part: str | None) -> PoLine | None:
        """The PO line an ASN line means: by line number, else by the vendor's part number
        (partners disagree on whether LIN01 is the PO line or just a counter)."""
        if line is not None and line_key(line) in self.lines:
            return self.lines[line_key(line)]
        if vendor_part:
            for candidate in self.lines.values():
                if candidate.vendor_part == vendor_part:
                    return candidate
        return None


def line_key(line: str | int) -> str:
    """``"00010"``, ``"10"`` and ``10`` are the same PO line."""
    text = str(line).strip()
    return text.lstrip("0") or "0" if text.isdigit() else text


class ErpLookup:
    """Cached PO lookups; thread-safe (the inbox serves requests on several threads)."""

    def __init__(self, config: ErpConfig, engine: Engine | None = None,
                 max_entries: int = 10_000) -> None:
        self.config = config
        self.engine = engine or create_engine(config.url, pool_pre_ping=True)
        self._query = text(config.query)
        self._cache: OrderedDict[str, tuple[float, PurchaseOrder | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def order(self, po: str) -> PurchaseOrder | None:
        """The purchase order, or None when the ERP does not know it."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(po)
            if cached is not None and now - cached[0] < self.config.cache_s:
                return cached[1]
        found = self._load(po)
        with self._lock:
            self._cache[po] = (now, found)
            self._cache.move_to_end(po)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return found

    def _load(self, po: str) -> PurchaseOrder | None:
        rows: list[Any] = []
        with self.engine.connect() as conn:
            for form in self._forms(po):
                rows = list(conn.execute(self._query, {"po": form}).mappings())
                if rows:
                    break
        if not rows:
            return None
        first = rows[0]
        code = _str(first.get("supplier"))
        supplier = self.config.supplier_names.get(code or "", code)
        lines: dict[str, PoLine] = {}
        for row in rows:
            if row.get("line") is None:
                continue
            key = line_key(row["line"])
            flag = deletion_flag(row.get("deletion_flag"))
            lines[key] = PoLine(
                line=key, ordered=_num(row.get("ordered_qty")), received=_num(
                    row.get("received_qty")), uom=_str(row.get("uom")),
                promised=_datetime(row.get("promised")), vendor_part=_str(row.get("vendor_part")),
                deleted=flag == "deleted", blocked=flag == "blocked",
                alt_uom=_str(row.get("alt_uom")), alt_factor=_num(row.get("alt_factor")))
        return PurchaseOrder(po=po, supplier=supplier, lines=lines)

    def _forms(self, po: str) -> list[str]:
        """The PO as written, then (a number, ``po_alpha`` set) its other ALPHA forms: the
        partner writes ``4500012``, an SAP replica stores ``0004500012``, or the other way."""
        length = self.config.po_alpha
        if length is None or not po.strip().isdigit():
            return [po]
        return list(dict.fromkeys([po, alpha_out(po), alpha_in(po, length)]))

    def close(self) -> None:
        self.engine.dispose()


#: character flags that mean "not deleted" (SAP's blank, Y/N and T/F columns, '0' in text)
_ACTIVE_TEXT = frozenset({"", "0", "N", "NO", "F", "FALSE"})
#: SAP LOEKZ 'S': blocked, the row stays; other non-blank indicators ('L', 'X', '1') delete
_BLOCKED_TEXT = frozenset({"S"})


def deletion_flag(value: Any) -> str | None:
    """``"deleted"``, ``"blocked"`` or None (active), by the column's SQL type.

    A boolean column arrives as ``bool`` (SQLite and MariaDB hand back ``0``/``1``), an integer
    as ``int``/``Decimal``: non-zero is deleted. A character indicator is deleted unless it is
    blank or a spelled-out "no" (``N``, ``false``, ``0``); ``S`` is SAP's blocked. Before, any
    text was deleted, so ``str(False)`` marked every line of a boolean column as deleted."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "deleted" if value else None
    if isinstance(value, int | float | Decimal):
        return "deleted" if value else None
    if isinstance(value, bytes | bytearray | memoryview):  # BIT(1) on MySQL
        return "deleted" if any(bytes(value)) else None
    text = str(value).strip().upper()
    if text in _ACTIVE_TEXT:
        return None
    return "blocked" if text in _BLOCKED_TEXT else "deleted"


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _datetime(value: Any) -> datetime | None:
    """ERP dates are naive UTC (Odoo style); SQLite hands them back as text."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None
