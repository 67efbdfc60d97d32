"""Carrier events as JSON: the DCSA Track & Trace shape and a plain "generic" shape.

Events are found wherever they sit in the body (a bare list, ``{"events": [...]}``, an OpenAPI
example file), so a publisher's envelope never needs configuring: a DCSA event is an object with
``metadata`` and ``payload`` (v3) or with ``eventID`` and ``eventType`` (v2); a generic event is
an object with ``status`` and one of ``tracking_number``/``shipment``. A DCSA event carrying
``retractedEventID`` withdraws an earlier one and becomes a :class:`Retraction`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from floorstream.adapters.supply.documents import Document, Parsed, Retraction, Status, StatusReport
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.text import decode

__all__ = ["parse", "parse_value"]


def parse(raw: bytes, *, allow_empty: bool = False) -> Parsed:
    text = decode(raw).lstrip("\ufeff")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc.msg}", segment=exc.lineno, offset=exc.pos) from None
    return parse_value(value, allow_empty=allow_empty)


def parse_value(value: Any, *, allow_empty: bool = False) -> Parsed:
    parsed = Parsed("json")
    for index, event in enumerate(_events(value)):
        doc = _dcsa(event) if _is_dcsa(event) else _generic(event, index)
        if doc is not None:
            parsed.documents.append(doc)
    if not parsed.documents and not (allow_empty and isinstance(value, dict | list)):
        raise ParseError("no carrier event found in the JSON (expected DCSA events or objects "
                         "with status and tracking_number)")
    return parsed


def _is_dcsa(obj: dict[str, Any]) -> bool:
    return "metadata" in obj or ("eventID" in obj and "eventType" in obj)


def _events(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if _is_dcsa(value) or ("status" in value and _generic_ref(value)):
            yield value
            return
        for child in value.values():
            yield from _events(child)
    elif isinstance(value, list):
        for child in value:
            yield from _events(child)


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _dcsa(event: dict[str, Any]) -> Document | None:
    meta = event.get("metadata") or event
    payload = event.get("payload") or ({} if "metadata" in event else event)
    event_id = str(meta.get("eventID") or "")
    publisher = meta.get("publisher") or {}
    carrier = publisher.get("partyName") or publisher.get("carrierCode") or None
    retracted = meta.get("retractedEventID") or payload.get("retractedEventID")
    if retracted:
        return Retraction(key=f"dcsa:{event_id or _digest(event)}", retracted_id=str(retracted),
                          carrier=carrier)
    if not payload:
        return None
    refs: dict[str, str] = {}
    for ref in (payload.get("relatedDocumentReferences") or []) + (payload.get("references")
                                                                   or []):
        if isinstance(ref, dict) and ref.get("type") and ref.get("value"):
            refs.setdefault(str(ref["type"]), str(ref["value"]))
    code = (payload.get("transportEventTypeCode") or payload.get("equipmentEventTypeCode")
            or payload.get("shipmentEventTypeCode") or "?")
    location = ((payload.get("transportCall") or {}).get("location") or
                payload.get("eventLocation") or {})
    place = location.get("locationName") or location.get("UNLocationCode")
    equipment = payload.get("equipmentReference") or refs.get("EQ")
    classifier = payload.get("eventClassifierCode")
    status = Status(index=0, code=str(code), scheme="dcsa",
                    when=_when(payload.get("eventDateTime")),
                    reason=payload.get("delayReasonCode") or None,
                    text=payload.get("changeRemark") or None,
                    estimated=classifier in ("EST", "PLN") and code == "ARRI",
                    location=place, event_id=event_id or None)
    shipment = (refs.get("BKG") or refs.get("TRD") or payload.get("documentReference")
                or equipment or event_id)
    return StatusReport(key=f"dcsa:{event_id or _digest(event)}", shipment=str(shipment),
                        statuses=(status,), carrier=carrier,
                        po_refs=tuple(v for k, v in refs.items() if k == "PO"),
                        equipment=equipment, references=refs | (
                            {"classifier": str(classifier)} if classifier else {}))


def _generic_ref(obj: dict[str, Any]) -> str | None:
    for key in ("tracking_number", "shipment", "shipment_id", "tracking"):
        if obj.get(key):
            return str(obj[key])
    return None


def _generic(event: dict[str, Any], index: int) -> Document | None:
    ref = _generic_ref(event)
    if ref is None:
        return None
    event_id = str(event.get("id") or event.get("event_id") or _digest(event))
    carrier = event.get("carrier") or event.get("slug")
    if event.get("retracts"):
        return Retraction(key=f"json:{event_id}", retracted_id=str(event["retracts"]),
                          carrier=carrier)
    status = str(event.get("status") or "")
    estimated = bool(event.get("eta")) and status.lower() in ("estimate", "eta", "estimated")
    when = _when(event.get("eta") if estimated else (event.get("occurred_at")
                                                     or event.get("datetime")))
    statuses = [Status(index=0, code=status, scheme="generic", when=when,
                       reason=event.get("reason") or None,
                       text=event.get("message") or None, estimated=estimated,
                       location=event.get("location") or None, event_id=event_id)]
    if event.get("eta") and not estimated:
        statuses.append(Status(index=1, code="ETA", scheme="generic", when=_when(event["eta"]),
                               estimated=True, text="estimated delivery", event_id=event_id))
    po = event.get("po") or event.get("purchase_order")
    return StatusReport(key=f"json:{event_id}", shipment=ref, statuses=tuple(statuses),
                        carrier=str(carrier) if carrier else None,
                        po_refs=(str(po),) if po else ())


def _digest(event: dict[str, Any]) -> str:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]
