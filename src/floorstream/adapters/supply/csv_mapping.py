"""The ``csv:`` key of a supply source: which CSV header holds which field.

A config model only, apart from the CSV parser (:mod:`.formats.csv_feed`, which re-exports
it), so that validating a config does not import the document parsers (issue 16, memory).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CsvMapping"]


class CsvMapping(BaseModel):
    """Which header holds which field (case-insensitive); ``po`` and ``qty`` are required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    po: str = "po_number"
    qty: str = "qty"
    line: str | None = "po_line"
    uom: str | None = "uom"
    vendor_part: str | None = "supplier_item"
    description: str | None = None
    asn: str | None = None
    ship_date: str | None = "ship_date"
    eta: str | None = "eta"  # read when the file has the column
    tracking: str | None = "tracking_no"
    carrier: str | None = "carrier"
    supplier: str | None = None
    delimiter: str | None = Field(default=None, description="sniffed from the header if unset")
    decimal: str | None = Field(default=None, pattern=r"^[.,]$",
                                description="decimal separator; default ',' for ';' files")
    date_formats: list[str] = Field(default_factory=lambda: ["%Y-%m-%d", "%d.%m.%Y",
                                                             "%m/%d/%Y", "%Y%m%d",
                                                             "%d/%m/%Y"])
