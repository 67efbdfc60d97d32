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
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from floorstream.adapters.supply.documents import Document, Parsed, Retraction, Status, StatusReport
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.text import decode_utf8, plausible

__all__ = ["MAX_DEPTH", "check_tree", "parse", "parse_value"]

#: deeper JSON is refused (DCSA events sit a few levels down, OpenAPI example files ~20)
MAX_DEPTH = 100
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def parse(raw: bytes, *, allow_empty: bool = False) -> Parsed:
    text = decode_utf8(raw, "JSON").lstrip("\ufeff")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc.msg}", segment=exc.lineno, offset=exc.pos) from None
    except RecursionError:
        raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ParseError(f"not JSON: {str(exc).split(';')[0]}") from None
    check_tree(value)
    return parse_value(value, allow_empty=allow_empty)


def check_tree(value: Any) -> None:
    """Refuse JSON nested deeper than :data:`MAX_DEPTH` or holding a string no database can
    store (an escaped lone surrogate such as ``"\\ud800"``, a NUL). Iterative, so a deep
    value cannot exhaust the stack here; the event search below recurses, but only this deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
            for key in item:
                _check_text(key)
        elif isinstance(item, list):
            children = item
        else:
            if isinstance(item, str):
                _check_text(item)
            continue
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, str):
                _check_text(child)


def _check_text(text: str) -> None:
    bad = _UNSTORABLE.search(text)
    if bad is not None:
        what = "a NUL character" if bad.group() == "\x00" else (
            f"the lone surrogate {bad.group()!a} (invalid UTF-8 once decoded)")
        raise ParseError(f"JSON string {_show(text)} holds {what}")


def _show(text: str) -> str:
    shown = ascii(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


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
    return plausible(when)


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (a publisher's ``"transportCall":
    5`` must cost the event its location, not the file its parse)."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A scalar as text, None for nothing, empty text and objects or arrays where a code or a
    name belongs."""
    if not value or isinstance(value, dict | list):
        return None
    return value if isinstance(value, str) else str(value)


def _dcsa(event: dict[str, Any]) -> Document | None:
    meta = _obj(event.get("metadata")) or event
    payload = _obj(event.get("payload")) or ({} if "metadata" in event else event)
    event_id = _text(meta.get("eventID")) or ""
    publisher = _obj(meta.get("publisher"))
    carrier = _text(publisher.get("partyName")) or _text(publisher.get("carrierCode"))
    retracted = _text(meta.get("retractedEventID")) or _text(payload.get("retractedEventID"))
    if retracted:
        return Retraction(key=f"dcsa:{event_id or _digest(event)}", retracted_id=retracted,
                          carrier=carrier)
    if not payload:
        return None
    refs: dict[str, str] = {}
    for ref in _list(payload.get("relatedDocumentReferences")) + _list(payload.get("references")):
        kind, value = _text(_obj(ref).get("type")), _text(_obj(ref).get("value"))
        if kind and value:
            refs.setdefault(kind, value)
    code = (_text(payload.get("transportEventTypeCode"))
            or _text(payload.get("equipmentEventTypeCode"))
            or _text(payload.get("shipmentEventTypeCode")) or "?")
    location = (_obj(_obj(payload.get("transportCall")).get("location"))
                or _obj(payload.get("eventLocation")))
    place = _text(location.get("locationName")) or _text(location.get("UNLocationCode"))
    equipment = _text(payload.get("equipmentReference")) or refs.get("EQ")
    classifier = _text(payload.get("eventClassifierCode"))
    status = Status(index=0, code=code, scheme="dcsa",
                    when=_when(payload.get("eventDateTime")),
                    reason=_text(payload.get("delayReasonCode")),
                    text=_text(payload.get("changeRemark")),
                    estimated=classifier in ("EST", "PLN") and code == "ARRI",
                    location=place, event_id=event_id or None)
    shipment = (refs.get("BKG") or refs.get("TRD") or _text(payload.get("documentReference"))
                or equipment or event_id)
    return StatusReport(key=f"dcsa:{event_id or _digest(event)}", shipment=shipment,
                        statuses=(status,), carrier=carrier,
                        po_refs=tuple(v for k, v in refs.items() if k == "PO"),
                        equipment=equipment, references=refs | (
                            {"classifier": classifier} if classifier else {}))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _generic_ref(obj: dict[str, Any]) -> str | None:
    for key in ("tracking_number", "shipment", "shipment_id", "tracking"):
        ref = _text(obj.get(key))
        if ref:
            return ref
    return None


def _generic(event: dict[str, Any], index: int) -> Document | None:
    ref = _generic_ref(event)
    if ref is None:
        return None
    event_id = _text(event.get("id")) or _text(event.get("event_id")) or _digest(event)
    carrier = _text(event.get("carrier")) or _text(event.get("slug"))
    retracts = _text(event.get("retracts"))
    if retracts:
        return Retraction(key=f"json:{event_id}", retracted_id=retracts, carrier=carrier)
    status = _text(event.get("status")) or ""
    estimated = bool(event.get("eta")) and status.lower() in ("estimate", "eta", "estimated")
    when = _when(event.get("eta") if estimated else (event.get("occurred_at")
                                                     or event.get("datetime")))
    statuses = [Status(index=0, code=status, scheme="generic", when=when,
                       reason=_text(event.get("reason")),
                       text=_text(event.get("message")), estimated=estimated,
                       location=_text(event.get("location")), event_id=event_id)]
    if event.get("eta") and not estimated:
        statuses.append(Status(index=1, code="ETA", scheme="generic", when=_when(event["eta"]),
                               estimated=True, text="estimated delivery", event_id=event_id))
    po = _text(event.get("po")) or _text(event.get("purchase_order"))
    return StatusReport(key=f"json:{event_id}", shipment=ref, statuses=tuple(statuses),
                        carrier=carrier, po_refs=(po,) if po else ())


def _digest(event: dict[str, Any]) -> str:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]
