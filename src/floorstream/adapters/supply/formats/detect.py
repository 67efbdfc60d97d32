"""Pick the parser by content, so one inbox can take every partner's files."""

from __future__ import annotations

from floorstream.adapters.supply.documents import Parsed
from floorstream.adapters.supply.formats import carrier_json, csv_feed, edifact_docs, x12_docs
from floorstream.adapters.supply.formats.csv_feed import CsvMapping
from floorstream.adapters.supply.formats.errors import ParseError

__all__ = ["FORMATS", "parse_any", "sniff"]

FORMATS = ("auto", "x12", "edifact", "csv", "json")


def sniff(raw: bytes) -> str:
    head = raw[:64].lstrip(b"\xef\xbb\xbf \r\n\t")
    if head.startswith(b"ISA"):
        return "x12"
    if head.startswith((b"UNA", b"UNB", b"UNH")):
        return "edifact"
    if head.startswith((b"{", b"[")):
        return "json"
    if not head:
        raise ParseError("empty file", segment=1, offset=0)
    if b"\x00" in raw[:512]:
        raise ParseError("binary data, not a supply-chain document", segment=1, offset=0)
    return "csv"


def parse_any(raw: bytes, format: str = "auto", *, csv_mapping: CsvMapping | None = None,
              name: str = "", allow_empty: bool = False) -> Parsed:
    """Parse ``raw`` as ``format`` (or the sniffed one); raises :class:`ParseError`.

    ``allow_empty``: a JSON page without events is fine (a poll that found nothing new).
    """
    kind = sniff(raw) if format == "auto" else format
    nul = raw.find(b"\x00")
    if nul >= 0 and kind != "x12":  # (X12 strips NUL padding between segments itself)
        # no text format holds one, and PostgreSQL cannot store one in a post
        raise ParseError(f"binary data (a NUL byte at offset {nul}), not a supply-chain "
                         "document", segment=1, offset=nul)
    if kind == "x12":
        return x12_docs.parse(raw)
    if kind == "edifact":
        return edifact_docs.parse(raw)
    if kind == "json":
        return carrier_json.parse(raw, allow_empty=allow_empty)
    return csv_feed.parse(raw, csv_mapping or CsvMapping(), name)
