"""Documents + ERP facts → the changes of kind ``event`` a supply source emits.

The adapter knows what a document means, so it decides the event itself (detectors are for
raw signals). Event types: ``shipment.dispatched`` (an ASN on time, notice when partial),
``shipment.status_changed``, ``shipment.delayed`` (an ASN arriving or shipped after the
promised date, a delay code or reason, or an ETA later than the promised date or the previous
ETA), ``shipment.delivered``, ``shipment.exception``, ``shipment.retracted`` and
``asn.mismatch`` (unknown PO or line, quantity over the order).

Positions are ``<document key>:<part>`` where the document key is the interchange sender +
control numbers (EDI), the carrier's event id (DCSA) or a content hash (CSV, plain JSON):
the same document received twice yields the same event ids, so it posts once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from floorstream.adapters.supply.code_tables import CodeTables
from floorstream.adapters.supply.correlation import ErpLookup, PurchaseOrder
from floorstream.adapters.supply.documents import Asn, AsnOrder, Document, Retraction, StatusReport
from floorstream.adapters.supply.memory import Memory
from floorstream.model import Event, Severity, event_id, utcnow

__all__ = ["Interpreter"]

_REASON_SCHEME = {"at7": "at7_reason"}


class Interpreter:
    """Turns documents into event changes for one source."""

    def __init__(self, source: str, *, memory: Memory, codes: CodeTables,
                 lookup: ErpLookup | None = None, carriers: dict[str, str] | None = None,
                 attrs: dict[str, str] | None = None) -> None:
        self.source = source
        self.memory = memory
        self.codes = codes
        self.lookup = lookup
        self.carriers = carriers or {}
        self.attrs = attrs or {}

    def events(self, doc: Document) -> list[Event]:
        """What a document means, as events the adapter emits past the detectors."""
        if isinstance(doc, Asn):
            return [c for order in doc.orders for c in self._asn(doc, order)]
        if isinstance(doc, StatusReport):
            return self._status(doc)
        return self._retraction(doc)

    def _change(self, subject: str, position: str, type: str, severity: str,
                fields: dict[str, Any], when: datetime | None,
                clears: str | None = None) -> Event:
        return Event.create(type=type, source=self.source, subject=subject, position=position,
                            occurred_at=when or utcnow(), severity=Severity.parse(severity),
                            fields=_clean(fields), attrs=dict(self.attrs), clears=clears)

    def _carrier(self, code: str | None) -> str | None:
        return self.carriers.get(code or "", code) if code else None

    # -- ASN -------------------------------------------------------------------------------

    def _asn(self, doc: Asn, order: AsnOrder) -> list[Event]:
        po = order.po
        subject = f"PO {po}" if po else f"ASN {doc.asn_id}"
        base = f"{doc.key}:po:{po}"
        erp: PurchaseOrder | None = self.lookup.order(po) if self.lookup and po else None
        shipped = sum(line.qty for line in order.lines)
        unit = next((line.uom for line in order.lines if line.uom), None)
        out: list[Event] = []
        ordered: float | None = 0.0
        promised: datetime | None = None
        when = doc.ship_date
        common = {"asn": doc.asn_id, "po": po or None}
        if self.lookup is not None and po and erp is None:
            out.append(self._change(subject, f"{base}:unknown", "asn.mismatch", "warning",
                                    {**common, "problem": "unknown_po"}, when))
        if not po:
            out.append(self._change(subject, f"{base}:nopo", "asn.mismatch", "warning",
                                    {**common, "problem": "no_po"}, when))
        for index, line in enumerate(order.lines):
            match = erp.find(line.line, line.vendor_part) if erp else None
            if match is None or match.ordered is None or match.deleted:
                ordered = None
            elif ordered is not None:
                ordered += match.ordered
            if match is not None and match.promised is not None:
                promised = max(promised or match.promised, match.promised)
            if erp is None:
                continue
            problem = {**common, "line": line.line, "vendor_part": line.vendor_part,
                       "shipped": line.qty, "unit": line.uom}
            position = f"{base}:line:{index}"
            if match is None:
                out.append(self._change(subject, position, "asn.mismatch", "warning",
                                        {**problem, "problem": "unknown_line"}, when))
            elif match.deleted:
                out.append(self._change(subject, position, "asn.mismatch", "warning",
                                        {**problem, "problem": "deleted_line",
                                         "line": match.line}, when))
            elif match.ordered is not None and line.qty > match.ordered:
                out.append(self._change(subject, position, "asn.mismatch", "warning",
                                        {**problem, "problem": "over_quantity",
                                         "line": match.line, "ordered": match.ordered}, when))
        arriving = doc.eta
        late = _days(arriving, promised)
        if arriving is None:  # only the ship date: it can prove lateness, never earliness
            late = _days(doc.ship_date, promised)
            late = late if late is not None and late > 0 else None
        partial = ordered is not None and erp is not None and shipped < ordered
        # a late ASN *is* the delay news, so it carries the type routes listen to; the position
        # stays ERP-independent (the type is part of the event id, see docs/supply.md)
        if late is not None and late > 0:
            type_, severity = "shipment.delayed", "warning"
        else:
            type_, severity = "shipment.dispatched", "notice" if partial else "info"
        out.insert(0, self._change(subject, base, type_, severity, {
            **common, "supplier": (erp.supplier if erp else None) or doc.supplier,
            "shipped": shipped, "ordered": ordered if erp else None, "unit": unit,
            "ship_date": _iso(doc.ship_date), "eta": _iso(arriving),
            "promised": _iso(promised), "late_days": late, "partial": partial,
            "carrier": self._carrier(doc.carrier), "tracking": doc.tracking or
            doc.bill_of_lading, "lines": [
                {"line": ln.line, "qty": ln.qty, "uom": ln.uom, "part": ln.vendor_part,
                 "description": ln.description} for ln in order.lines]}, when))
        return out

    # -- carrier status --------------------------------------------------------------------

    def _status(self, doc: StatusReport) -> list[Event]:
        subject = f"shipment {doc.shipment}"
        carrier = self._carrier(doc.carrier)
        po = doc.po_refs[0] if doc.po_refs else None
        promised = self._promised(po)
        out: list[Event] = []
        ordered = sorted(doc.statuses, key=lambda s: (s.when is None, s.when or 0, s.index))
        for status in ordered:
            position = f"{doc.key}:{status.index}"
            meaning = self.codes.status(status.scheme, status.code, status.text,
                                        private=status.private)
            reason = self.codes.reason(_REASON_SCHEME.get(status.scheme, ""), status.reason) \
                if status.scheme in _REASON_SCHEME else None
            fields: dict[str, Any] = {
                "carrier": carrier, "shipment": doc.shipment, "po": po, "code": status.code,
                "status": meaning.text, "when": _iso(status.when), "location": status.location,
                "container": doc.equipment if doc.equipment != doc.shipment else None,
                "reason": reason.text if reason and reason.kind != "normal" else (
                    None if reason else status.reason)}
            if doc.references.get("classifier") in ("EST", "PLN") and not status.estimated:
                fields["planned"] = True  # an estimated load or departure, not a fact yet
            type_, severity = "shipment.status_changed", "info"
            if status.estimated or meaning.kind == "estimate":
                decided = self._eta(doc.shipment, position, status.when, promised, fields)
                if decided is None:
                    continue
                type_, severity = decided
            elif meaning.kind == "delivered":
                type_, severity = "shipment.delivered", "notice"
            elif meaning.kind == "exception":
                type_, severity = "shipment.exception", "warning"
            elif meaning.kind == "delayed" or (reason is not None and reason.kind == "problem"):
                type_, severity = "shipment.delayed", "warning"
            change = self._change(subject, position, type_, severity, fields, status.when)
            out.append(change)
            if status.event_id:
                self.memory.remember_event(status.event_id, subject,
                                           event_id(self.source, subject, position, type_))
        return out

    def _eta(self, shipment: str, position: str, eta: datetime | None,
             promised: datetime | None, fields: dict[str, Any]) -> tuple[str, str] | None:
        if eta is None:
            return "shipment.status_changed", "info"
        previous = self.memory.previous_eta(shipment, position)
        self.memory.remember_eta(shipment, position, eta.isoformat())
        fields.update(estimated=True, eta=eta.isoformat(), previous_eta=previous,
                      promised=_iso(promised), late_days=_days(eta, promised))
        if previous is not None and eta == datetime.fromisoformat(previous):
            return None  # the same estimate again: nothing new to say
        later_than_previous = previous is not None and eta > datetime.fromisoformat(previous)
        if later_than_previous or (fields["late_days"] or 0) > 0:
            return "shipment.delayed", "warning"
        return "shipment.status_changed", "info"

    def _promised(self, po: str | None) -> datetime | None:
        if po is None or self.lookup is None:
            return None
        erp = self.lookup.order(po)
        if erp is None:
            return None
        dates = [line.promised for line in erp.lines.values() if line.promised]
        return max(dates) if dates else None

    # -- retraction ------------------------------------------------------------------------

    def _retraction(self, doc: Retraction) -> list[Event]:
        known = self.memory.events.get(doc.retracted_id)
        subject = known[0] if known else f"carrier event {doc.retracted_id[:8]}"
        return [self._change(subject, doc.key, "shipment.retracted", "notice",
                             {"carrier": self._carrier(doc.carrier),
                              "retracted_id": doc.retracted_id, "known": known is not None},
                             None, clears=known[1] if known else None)]


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _days(when: datetime | None, promised: datetime | None) -> int | None:
    if when is None or promised is None:
        return None
    return (when.date() - promised.date()).days


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
