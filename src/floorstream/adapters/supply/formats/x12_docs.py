"""X12 transaction sets → documents: 856 (ship notice), 214 (carrier status), 315 (container).

Interpretation is deliberately forgiving about what partners vary (where the PO line number
sits, BSN01 codes beyond the common subset) and strict only about what makes a document
meaningless (an 856 without BSN, a 214 without B10).
"""

from __future__ import annotations

from collections.abc import Callable

from floorstream.adapters.supply.documents import (
    Asn,
    AsnLine,
    AsnOrder,
    Document,
    Parsed,
    Status,
    StatusReport,
)
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.text import parse_date, to_number
from floorstream.adapters.supply.formats.x12 import Interchange, Segment, TransactionSet, tokenize

__all__ = ["parse"]


def parse(raw: bytes) -> Parsed:
    inter = tokenize(raw)
    parsed = Parsed("x12", warnings=list(inter.warnings))
    for ts in inter.sets:
        key = f"x12:{inter.sender}:{inter.control}:{ts.group_control}:{ts.control}"
        reader = _READERS.get(ts.code)
        if reader is None:
            parsed.warnings.append(f"transaction set {ts.code} {ts.control} is not read "
                                   "(only 856, 214 and 315 are)")
            continue
        parsed.documents.append(reader(ts, key, inter))
    return parsed


def _asn(ts: TransactionSet, key: str, inter: Interchange) -> Asn:
    bsn = _first(ts, "BSN")
    if bsn is None:
        raise ParseError("856 without BSN", segment=ts.segments[0].number,
                         offset=ts.segments[0].offset)
    ship_date = parse_date(bsn.get(3), bsn.get(4))
    eta = supplier = carrier = bol = tracking = None
    orders: dict[str, list[AsnLine]] = {}
    level = ""
    po = ""
    item: dict[str, str] = {}

    def flush() -> None:
        if "qty" in item:
            line = item.get("PL") or item.get("LI") or item.get("lin") or item.get("sn1")
            orders.setdefault(item.get("PO") or po, []).append(AsnLine(
                line=line or None, qty=float(item["qty"]), uom=item.get("uom") or None,
                vendor_part=item.get("VP") or None,
                item=item.get("BP") or item.get("IN") or item.get("UP") or None,
                description=item.get("desc") or None))
        item.clear()

    for seg in ts.segments:
        tag = seg.tag
        if tag == "HL":
            flush()
            level = seg.get(3)
        elif tag == "PRF":
            po = seg.get(1)
        elif tag == "LIN":
            if item.get("qty"):
                flush()
            item["lin"] = seg.get(1)
            for i in range(2, len(seg.elements) - 1, 2):
                if seg.get(i):
                    item.setdefault(seg.get(i), seg.get(i + 1))
        elif tag == "SN1":
            qty = to_number(seg.get(2))
            if qty is None:
                raise ParseError(f"SN102 quantity {seg.get(2)!r} is not a number",
                                 segment=seg.number, offset=seg.offset)
            item.update(sn1=seg.get(1), qty=str(qty), uom=seg.get(3))
        elif tag == "PID" and level == "I":
            item["desc"] = seg.get(5)
        elif tag == "REF":
            qual, value = seg.get(1), seg.get(2)
            if qual == "LI" and level == "I":
                item["LI"] = value
            elif qual == "BM":
                bol = value
            elif qual in ("CN", "2I"):
                tracking = value
        elif tag == "DTM":
            when = parse_date(seg.get(2), seg.get(3), seg.get(4))
            if seg.get(1) == "011":
                ship_date = when or ship_date
            elif seg.get(1) in ("017", "067", "002"):
                eta = when
        elif tag == "TD5":
            # TD505 is the routing (carrier name), TD503 the SCAC
            carrier = seg.get(5) or seg.get(3) or carrier
        elif tag == "N1" and (seg.get(1) == "SU" or (seg.get(1) in ("SF", "VN")
                                                    and supplier is None)):
            supplier = seg.get(2) or supplier  # the supplier (SU) wins over ship-from (SF)
    flush()
    return Asn(key=key, asn_id=bsn.get(2), purpose=bsn.get(1) or None, ship_date=ship_date,
               eta=eta, supplier=supplier, carrier=carrier or None, bill_of_lading=bol,
               tracking=tracking, sender=inter.sender.replace(" ", "") or None,
               orders=tuple(AsnOrder(p, tuple(lines)) for p, lines in orders.items()))


def _carrier_status(ts: TransactionSet, key: str, inter: Interchange) -> StatusReport:
    b10 = _first(ts, "B10")
    if b10 is None:
        raise ParseError("214 without B10", segment=ts.segments[0].number,
                         offset=ts.segments[0].offset)
    refs: dict[str, str] = {}
    pos: list[str] = []
    statuses: list[Status] = []
    equipment = None
    for seg in ts.segments:
        if seg.tag in ("L11", "N9"):
            value, qual = (seg.get(1), seg.get(2)) if seg.tag == "L11" else (seg.get(2),
                                                                            seg.get(1))
            if qual == "PO":
                pos.append(value)
            elif qual:
                refs.setdefault(qual, value)
        elif seg.tag == "AT7" and (seg.get(1) or seg.get(3)):
            # AT7-01/02 a status and its reason, or AT7-03/04 an appointment and its reason
            # (a delivery appointment, AT7***AB*NA*20261203*0800, was skipped whole)
            code, why = (seg.get(1), seg.get(2)) if seg.get(1) else (seg.get(3), seg.get(4))
            statuses.append(Status(
                index=len(statuses), code=code, scheme="at7", reason=why or None,
                when=parse_date(seg.get(5), seg.get(6), seg.get(7)),
                estimated=code in _AT7_ESTIMATES))
        elif seg.tag == "MS1" and statuses:
            last = statuses[-1]
            place = " ".join(p for p in (seg.get(1), seg.get(2)) if p)
            statuses[-1] = Status(last.index, last.code, last.scheme, last.when, last.reason,
                                  last.text, last.estimated, place or None)
        elif seg.tag == "MS2" and equipment is None:
            equipment = (seg.get(1) + seg.get(2)).strip() or None
            if equipment and seg.get(3):  # element 40: CN container, CV closed van, TL…
                refs["equipment_type"] = seg.get(3)
    if b10.get(1) and b10.get(2):
        refs.setdefault("SI", b10.get(2))  # the shipper's shipment id (often the ASN's BSN02)
    bgn = _first(ts, "BGN")  # not in the 214 standard, but some carriers send a purpose
    return StatusReport(key=key, shipment=b10.get(1) or b10.get(2), carrier=b10.get(3) or None,
                        statuses=tuple(statuses), po_refs=tuple(pos), equipment=equipment,
                        references=refs, purpose=bgn.get(1) or None if bgn else None,
                        doc_id=bgn.get(2) or None if bgn else None)


def _container_status(ts: TransactionSet, key: str, inter: Interchange) -> StatusReport:
    b4 = _first(ts, "B4")
    if b4 is None:
        raise ParseError("315 without B4", segment=ts.segments[0].number,
                         offset=ts.segments[0].offset)
    refs: dict[str, str] = {}
    pos: list[str] = []
    for seg in ts.segments:
        if seg.tag == "N9" and seg.get(1):
            if seg.get(1) == "PO":
                pos.append(seg.get(2))
            else:
                refs.setdefault(seg.get(1), seg.get(2))
    equipment = refs.get("EQ") or (b4.get(7) + b4.get(8)) or None
    status = Status(index=0, code=b4.get(3), scheme="x12_315",
                    when=parse_date(b4.get(4), b4.get(5)),
                    location=b4.get(11) or None, estimated=b4.get(3) in _315_ESTIMATES)
    bgn = _first(ts, "BGN")
    return StatusReport(key=key, shipment=equipment or refs.get("BN") or refs.get("BM", "?"),
                        carrier=refs.get("SCA") or b4.get(7) or None, statuses=(status,),
                        po_refs=tuple(pos), equipment=equipment, references=refs,
                        purpose=bgn.get(1) or None if bgn else None,
                        doc_id=bgn.get(2) or None if bgn else None)


def _first(ts: TransactionSet, tag: str) -> Segment | None:
    return next((s for s in ts.segments if s.tag == tag), None)


_AT7_ESTIMATES = frozenset({"AG", "AA", "X2", "AB", "AC", "X9", "XA"})
#: 315 B4-03 codes that announce a time rather than report one: E estimated to arrive (en
#: route), C estimated to depart, X2 estimated arrival at the consignee (a vessel's ETA used
#: to read "arrived" on the day it was only expected)
_315_ESTIMATES = frozenset({"E", "C", "X2"})
_READERS: dict[str, Callable[[TransactionSet, str, Interchange], Document]] = {
    "856": _asn, "214": _carrier_status, "315": _container_status}
