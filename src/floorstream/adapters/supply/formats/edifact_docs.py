"""EDIFACT messages → documents: DESADV (despatch advice) and IFTSTA (transport status).

Qualifiers read (D.96A–D.01B, EANCOM alike): DESADV ``BGM+351`` number, ``DTM+11`` despatch,
``DTM+17/132/2`` expected delivery, ``RFF+ON`` order (header or per line), ``RFF+LI`` order line,
``NAD+SU/SE`` supplier, ``TDT`` carrier, ``LIN``/``PIA``/``IMD``/``QTY+12`` items.
IFTSTA: ``NAD+CA`` carrier, ``RFF`` BN/BM/EQ/ON, one consignment per ``CNI`` with ``STS``
code, reason and text, ``DTM+334`` status time, ``LOC+175`` place, ``DTM+132`` estimated arrival.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from floorstream.adapters.supply.documents import (
    Asn,
    AsnLine,
    AsnOrder,
    Document,
    Parsed,
    Status,
    StatusReport,
)
from floorstream.adapters.supply.formats.edifact import EdiSegment, Message, tokenize
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.text import edifact_date, to_number

__all__ = ["parse"]


def parse(raw: bytes) -> Parsed:
    inter = tokenize(raw)
    parsed = Parsed("edifact", warnings=list(inter.warnings))
    for message in inter.messages:
        key = f"edifact:{inter.sender}:{inter.reference}:{message.reference}"
        if message.type == "DESADV":
            parsed.documents.append(dataclasses.replace(_desadv(message, key),
                                                        sender=inter.sender or None))
        elif message.type == "IFTSTA":
            parsed.documents.extend(_iftsta(message, key))
        else:
            parsed.warnings.append(f"message {message.type} {message.reference} is not read "
                                   "(only DESADV and IFTSTA are)")
    return parsed


def _date(seg: EdiSegment) -> datetime | None:
    """DTM C507: the value (2380) in its format (2379)."""
    return edifact_date(seg.get(1, 1), seg.get(1, 2))


def _desadv(message: Message, key: str) -> Asn:
    bgm = _first(message, "BGM")
    if bgm is None:
        raise ParseError("DESADV without BGM", segment=message.segments[0].number,
                         offset=message.segments[0].offset)
    header_po = ""
    ship_date = eta = None
    supplier = carrier = None
    orders: dict[str, list[AsnLine]] = {}
    item: dict[str, str] = {}
    in_lines = False

    def flush() -> None:
        if "qty" in item:
            orders.setdefault(item.get("po") or header_po, []).append(AsnLine(
                line=item.get("li") or item.get("lin") or None, qty=float(item["qty"]),
                uom=item.get("uom") or None, vendor_part=item.get("sa") or None,
                item=item.get("item") or None, description=item.get("desc") or None))
        item.clear()

    for seg in message.segments:
        tag = seg.tag
        if tag == "LIN":
            flush()
            in_lines = True
            item.update(lin=seg.get(1), item=seg.get(3, 0))
        elif tag == "PIA":
            for element in range(2, len(seg.elements)):
                if seg.get(element, 1) in ("SA", "VP", "VN"):
                    item["sa"] = seg.get(element, 0)
                elif seg.get(element, 0) and "item" not in item:
                    item["item"] = seg.get(element, 0)
        elif tag == "IMD" and in_lines:
            item["desc"] = seg.get(3, 3) or seg.get(3, 0)
        elif tag == "QTY" and seg.get(1, 0) == "12":
            qty = to_number(seg.get(1, 1).replace(",", "."))
            if qty is None:
                raise ParseError(f"QTY {seg.get(1, 1)!r} is not a number", segment=seg.number,
                                 offset=seg.offset)
            item.update(qty=str(qty), uom=seg.get(1, 2))
        elif tag == "RFF":
            qual, value = seg.get(1, 0), seg.get(1, 1)
            if qual == "ON":
                if in_lines:
                    item["po"] = value
                    if seg.get(1, 2):
                        item["li"] = seg.get(1, 2)
                else:
                    header_po = value
            elif qual == "LI" and in_lines:
                item["li"] = value
        elif tag == "DTM":
            qual = seg.get(1, 0)
            if qual == "11":
                ship_date = _date(seg)
            elif qual in ("17", "132", "2", "69"):
                eta = _date(seg)
        elif tag == "NAD" and seg.get(1) in ("SU", "SE"):
            supplier = seg.get(4, 0) or seg.get(3, 0) or seg.get(2, 0) or supplier
        elif tag == "TDT":
            carrier = seg.get(5, 3) or seg.get(5, 0) or carrier
    flush()
    return Asn(key=key, asn_id=bgm.get(2, 0), purpose=bgm.get(3) or None, ship_date=ship_date,
               eta=eta, supplier=supplier, carrier=carrier,
               orders=tuple(AsnOrder(p, tuple(lines)) for p, lines in orders.items()))


def _iftsta(message: Message, key: str) -> list[Document]:
    header_refs: dict[str, str] = {}
    carrier = None
    blocks: list[list[EdiSegment]] = []
    for seg in message.segments:
        if seg.tag == "CNI":
            blocks.append([seg])
        elif blocks:
            blocks[-1].append(seg)
        elif seg.tag == "RFF":
            header_refs.setdefault(seg.get(1, 0), seg.get(1, 1))
        elif seg.tag == "NAD" and seg.get(1) == "CA":
            carrier = seg.get(4, 0) or seg.get(2, 0) or None
    if not blocks:
        raise ParseError("IFTSTA without a CNI consignment", segment=message.segments[-1].number,
                         offset=message.segments[-1].offset)
    bgm = _first(message, "BGM")  # 1004 document number, 1225 message function
    purpose = bgm.get(3) or None if bgm else None
    doc_id = bgm.get(2, 0) or None if bgm else None
    reports: list[Document] = []
    for number, block in enumerate(blocks):
        refs = dict(header_refs)
        block_refs: dict[str, str] = {}
        statuses: list[Status] = []
        eta = None
        for seg in block:
            if seg.tag == "RFF":
                block_refs.setdefault(seg.get(1, 0), seg.get(1, 1))
            elif seg.tag == "STS":
                # C555: 4405 code, 1131 list, 3055 agency; agency 6 (UN/ECE) or none is the
                # UN list, anything else (the sample's "HS") a carrier's private one
                statuses.append(Status(index=len(statuses), code=seg.get(2, 0) or seg.get(1, 0),
                                       scheme="iftsta", reason=seg.get(3, 0) or None,
                                       text=seg.get(2, 3) or None,
                                       private=seg.get(2, 2) not in ("", "6")))
            elif seg.tag == "DTM" and statuses and seg.get(1, 0) == "334":
                statuses[-1] = _replace(statuses[-1], when=_date(seg))
            elif seg.tag == "LOC" and statuses and seg.get(1) == "175":
                statuses[-1] = _replace(statuses[-1], location=seg.get(2, 3) or seg.get(2, 0))
            elif seg.tag == "DTM" and seg.get(1, 0) == "132":
                eta = _date(seg)  # the last planned arrival is the one at the destination
        refs.update(block_refs)
        if eta is not None:
            statuses.append(Status(index=len(statuses), code="ETA", scheme="iftsta", when=eta,
                                   estimated=True, text="estimated arrival"))
        equipment = block_refs.get("EQ") or _equipment(block)
        shipment = block_refs.get("BM") or block_refs.get("BN") or equipment or "?"
        reports.append(StatusReport(
            key=f"{key}:{number}", shipment=shipment, carrier=carrier,
            statuses=tuple(statuses), po_refs=tuple(v for k, v in refs.items() if k == "ON"),
            equipment=equipment, references=refs, purpose=purpose, doc_id=doc_id))
    return reports


def _equipment(block: list[EdiSegment]) -> str | None:
    eqd = next((s for s in block if s.tag == "EQD"), None)
    return eqd.get(2, 0) or None if eqd else None


def _replace(status: Status, **changes: Any) -> Status:
    return dataclasses.replace(status, **changes)


def _first(message: Message, tag: str) -> EdiSegment | None:
    return next((s for s in message.segments if s.tag == tag), None)
