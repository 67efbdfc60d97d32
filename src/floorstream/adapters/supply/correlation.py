"""ERP correlation: PO number → supplier, promised date and ordered quantity per line.

The lookup is one configured SQL query run through SQLAlchemy, so it works against whatever
ERP database the plant has (Odoo, ERPNext, an SAP replica, the schema in
``research/erp-subset-ddl.sql``, which the default query is written for). The query takes
``:po`` and returns one row per PO line with the columns named below; extra columns are
ignored, missing optional ones are None. Results are cached for ``cache_s`` seconds so a
10,000-file backlog does not run 10,000 identical queries.
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

__all__ = ["DEFAULT_QUERY", "ErpConfig", "ErpLookup", "PoLine", "PurchaseOrder", "line_key"]

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
                                   "deletion_flag]")
    supplier_names: dict[str, str] = Field(default_factory=dict,
                                           description="supplier code → name for posts")
    cache_s: float = Field(default=60.0, ge=0, description="how long a PO lookup is reused")


@dataclass(frozen=True, slots=True)
class PoLine:
    line: str
    ordered: float | None
    received: float | None
    uom: str | None
    promised: datetime | None
    vendor_part: str | None
    deleted: bool


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
        with self.engine.connect() as conn:
            rows = list(conn.execute(self._query, {"po": po}).mappings())
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
            lines[key] = PoLine(
                line=key, ordered=_num(row.get("ordered_qty")), received=_num(
                    row.get("received_qty")), uom=_str(row.get("uom")),
                promised=_datetime(row.get("promised")), vendor_part=_str(row.get("vendor_part")),
                deleted=bool((_str(row.get("deletion_flag")) or "").strip()))
        return PurchaseOrder(po=po, supplier=supplier, lines=lines)

    def close(self) -> None:
        self.engine.dispose()


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
