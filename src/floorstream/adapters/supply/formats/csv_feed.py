"""Supplier CSV drops with a configured column mapping.

There is no standard: each supplier invents columns, delimiters (``;`` in Europe), decimal
commas, date formats and sometimes a BOM. The mapping names which header holds which field;
the delimiter is sniffed from the header line unless configured, and the decimal separator
follows the delimiter (``;`` files use ``,``) unless configured. A row that cannot be read
fails the whole file with its line number: half an ASN would be worse than none.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from datetime import UTC, datetime

from floorstream.adapters.supply.csv_mapping import CsvMapping
from floorstream.adapters.supply.documents import Asn, AsnLine, AsnOrder, Parsed
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.text import decode, plausible, zoneless

__all__ = ["CsvMapping", "parse"]


def parse(raw: bytes, mapping: CsvMapping, name: str = "") -> Parsed:
    try:
        return _parse(raw, mapping, name)
    except csv.Error as exc:  # a NUL byte, a field over the csv module's size limit…
        raise ParseError(f"unreadable CSV: {exc}") from None


def _parse(raw: bytes, mapping: CsvMapping, name: str) -> Parsed:
    text = decode(raw).lstrip("\ufeff")
    if not text.strip():
        raise ParseError("empty CSV file", segment=1, offset=0)
    header_line = text.splitlines()[0]
    delimiter = mapping.delimiter or max(";,\t|", key=header_line.count)
    decimal = mapping.decimal or ("," if delimiter == ";" else ".")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ParseError("empty CSV file", segment=1, offset=0) from None
    columns = _columns(mapping, header)
    digest = hashlib.sha256(raw).hexdigest()[:24]
    shipments: dict[str, dict[str, object]] = {}
    for line_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise ParseError(f"row has {len(row)} fields, the header {len(header)}: truncated?",
                             segment=line_no)

        def cell(field: str, row: list[str] = row) -> str:
            index = columns.get(field)
            return row[index].strip() if index is not None and index < len(row) else ""

        qty = _number(cell("qty"), decimal)
        if qty is None or not cell("po"):
            raise ParseError(f"row needs a PO number and a numeric quantity, got "
                             f"{cell('po')!r} and {cell('qty')!r}", segment=line_no)
        asn_id = cell("asn") or name or digest
        ship = shipments.setdefault(asn_id, {"orders": {}, "fields": {}})
        fields = ship["fields"]
        assert isinstance(fields, dict)
        for key in ("ship_date", "eta", "tracking", "carrier", "supplier"):
            if cell(key) and key not in fields:
                fields[key] = cell(key)
        orders = ship["orders"]
        assert isinstance(orders, dict)
        orders.setdefault(cell("po"), []).append(AsnLine(
            line=cell("line") or None, qty=qty, uom=cell("uom") or None,
            vendor_part=cell("vendor_part") or None, description=cell("description") or None))
    if not shipments:
        raise ParseError("CSV has a header but no rows", segment=2)
    parsed = Parsed("csv")
    for asn_id, ship in shipments.items():
        fields, orders = ship["fields"], ship["orders"]
        assert isinstance(fields, dict) and isinstance(orders, dict)
        parsed.documents.append(Asn(
            key=f"csv:{digest}:{asn_id}", asn_id=asn_id,
            orders=tuple(AsnOrder(po, tuple(lines)) for po, lines in orders.items()),
            ship_date=_date(fields.get("ship_date", ""), mapping.date_formats),
            eta=_date(fields.get("eta", ""), mapping.date_formats),
            tracking=fields.get("tracking"), carrier=fields.get("carrier"),
            supplier=fields.get("supplier")))
    return parsed


def _columns(mapping: CsvMapping, header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for field in ("po", "qty", "line", "uom", "vendor_part", "description", "asn",
                  "ship_date", "eta", "tracking", "carrier", "supplier"):
        name = getattr(mapping, field)
        if name is None:
            continue
        if name.lower() in header:
            columns[field] = header.index(name.lower())
        elif field in ("po", "qty"):
            raise ParseError(f"CSV header has no {name!r} column for {field} "
                             f"(header: {', '.join(header)})", segment=1)
    return columns


def _number(text: str, decimal: str) -> float | None:
    thousands = "." if decimal == "," else ","
    text = text.replace(thousands, "").replace(decimal, ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None  # nan, inf, 1e999: not a quantity


def _date(text: str, formats: list[str]) -> datetime | None:
    """The first format that reads ``text``; a date format also reads the date with a time
    after it (``28.11.2026 14:00``, ``2026-11-28T14:00:00``): such an ETA used to be dropped
    without a word."""
    text = text.strip()
    for fmt in formats:
        try:
            when = datetime.strptime(text, fmt)
            return plausible(zoneless(when) if "%H" in fmt else when.replace(tzinfo=UTC))
        except ValueError:
            continue
    day, sep, clock = text.replace("T", " ", 1).partition(" ")
    if not sep:
        return None
    for fmt in formats:
        for time_fmt in ("%H:%M", "%H:%M:%S"):
            try:
                when = datetime.strptime(f"{day} {clock.strip()}", f"{fmt} {time_fmt}")
            except ValueError:
                continue
            return plausible(zoneless(when))  # a time without a zone: the partner's
    return None
