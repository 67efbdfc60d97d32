"""What a supply-chain file says, independent of its format.

Three kinds of document come out of every parser: an :class:`Asn` (856, DESADV, supplier CSV:
"these quantities of these PO lines left"), a :class:`StatusReport` (214, 315, IFTSTA, carrier
JSON: "this shipment reached this milestone") and a :class:`Retraction` (DCSA: "forget event
X"). ``key`` is the stable identity of the document (interchange sender + control number +
transaction set, or a content hash); event positions are built from it, so receiving the same
document twice yields the same event ids and the store drops the copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Asn", "AsnLine", "AsnOrder", "Document", "Parsed", "Retraction", "Status",
           "StatusReport"]


@dataclass(frozen=True, slots=True)
class AsnLine:
    """One shipped item: the PO line it claims, the quantity and what was shipped."""

    line: str | None
    qty: float
    uom: str | None = None
    vendor_part: str | None = None
    item: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class AsnOrder:
    """The part of an ASN that concerns one purchase order."""

    po: str
    lines: tuple[AsnLine, ...]


@dataclass(frozen=True, slots=True)
class Asn:
    """An advance ship notice: goods left the supplier."""

    key: str
    asn_id: str
    orders: tuple[AsnOrder, ...]
    ship_date: datetime | None = None
    eta: datetime | None = None
    supplier: str | None = None
    carrier: str | None = None
    bill_of_lading: str | None = None
    tracking: str | None = None
    purpose: str | None = None  # BSN01 / BGM message function: 00 original, 01 cancel…
    sender: str | None = None  # interchange sender (ISA06 / UNB), scopes the ASN number


@dataclass(frozen=True, slots=True)
class Status:
    """One milestone of a shipment, as the carrier coded it.

    ``scheme`` names the code table (``at7``, ``x12_315``, ``iftsta``, ``dcsa``, ``generic``);
    ``estimated`` marks an estimate (AT7 ``AG``, DCSA ``EST``) rather than a fact.
    """

    index: int
    code: str
    scheme: str
    when: datetime | None = None
    reason: str | None = None
    text: str | None = None
    estimated: bool = False
    location: str | None = None
    event_id: str | None = None  # the carrier's own event id (DCSA eventID)
    private: bool = False  # the code is from the carrier's own list, not the scheme's table


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A carrier's report about one shipment (or container)."""

    key: str
    shipment: str
    statuses: tuple[Status, ...]
    carrier: str | None = None
    po_refs: tuple[str, ...] = ()
    equipment: str | None = None
    references: dict[str, str] = field(default_factory=dict)
    purpose: str | None = None  # BGN01 (a 214/315 that has one) / BGM 1225 (IFTSTA)
    doc_id: str | None = None  # the sender's document number a cancel or replace names


@dataclass(frozen=True, slots=True)
class Retraction:
    """A carrier withdrawing an event it sent earlier (DCSA ``retractedEventID``)."""

    key: str
    retracted_id: str
    carrier: str | None = None


Document = Asn | StatusReport | Retraction


@dataclass(slots=True)
class Parsed:
    """A parsed file: its documents plus envelope warnings (e.g. UNB ≠ UNZ reference)."""

    format: str
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: JSON: the decoded body, for what a transport reads besides the events (the HTTP poll's
    #: next cursor), so a page is decoded once
    body: Any = None
