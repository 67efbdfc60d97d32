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

from floorstream.adapters.supply.code_tables import load_table
from floorstream.adapters.supply.documents import Document, Parsed, Retraction, Status, StatusReport
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.text import decode_utf8, plausible, zoneless

__all__ = ["MAX_DEPTH", "check_tree", "parse", "parse_value", "validate"]

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
    validate(value, text)
    parsed = parse_value(value, allow_empty=allow_empty)
    parsed.body = value
    return parsed


#: an escape that may decode to what no database stores: ``\u0000`` or a surrogate half
_SUSPECT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SUSPECT_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def validate(value: Any, source: str | bytes) -> None:
    """What :func:`check_tree` refuses, checked cheaply: the depth on the containers only,
    the strings only when the JSON text (``source``, what ``value`` was decoded from) holds
    an escape that could be a NUL or a lone surrogate — valid UTF-8 cannot carry either
    unescaped, and an unescaped NUL is not JSON. A suspect escape (a valid surrogate *pair*,
    an escaped backslash before ``u0000``) gets the exact check. A 1,000-event DCSA file
    costs ~2 ms here, where walking every string cost ~6 ms, about as much as decoding it."""
    _check_depth(value)
    suspect = _SUSPECT.search(source) if isinstance(source, str) else _SUSPECT_BYTES.search(
        source)
    if suspect is not None:
        check_tree(value)


def _check_depth(value: Any) -> None:
    """Walks the containers one level at a time: a comprehension per level is about twice as
    quick as a stack of (item, depth) pairs, and the depth is the level's number."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
        level = [child for item in level
                 for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, dict | list)]
        depth += 1


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
        # an aggregator's object has one of these keys: a DCSA event skips the five probes
        normalised = None if value.keys().isdisjoint(_AGGREGATOR_KEYS) else _aggregator(value)
        if normalised is not None:
            yield normalised
            return
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
    if when.tzinfo is None and len(text) > 10:  # a time without a zone: the partner's
        when = zoneless(when)
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
    refs = _dcsa_references(payload)
    code = (_text(payload.get("transportEventTypeCode"))
            or _text(payload.get("equipmentEventTypeCode"))
            or _text(payload.get("shipmentEventTypeCode")) or "?")
    call = _obj(payload.get("transportCall"))
    location = _obj(call.get("location")) or _obj(payload.get("eventLocation"))
    # 2.x names the port on the transport call itself; 3.0 only inside its location
    place = (_text(location.get("locationName")) or _text(location.get("UNLocationCode"))
             or _text(call.get("UNLocationCode")))
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


def _dcsa_references(payload: dict[str, Any]) -> dict[str, str]:
    """Reference type → value of a DCSA event, in either version's spelling: 3.0
    ``relatedDocumentReferences``/``references`` of ``{type, value}``; 2.x
    ``documentReferences`` of ``{documentReferenceType, documentReferenceValue}``,
    ``references`` of ``{referenceType, referenceValue}`` and a shipment event's own
    ``documentID`` + ``documentTypeCode``. Without them every 2.x event of one booking was
    a shipment of its own (threaded by its event id)."""
    refs: dict[str, str] = {}
    for ref in (_list(payload.get("relatedDocumentReferences"))
                + _list(payload.get("documentReferences")) + _list(payload.get("references"))):
        obj = _obj(ref)
        kind = (_text(obj.get("type")) or _text(obj.get("documentReferenceType"))
                or _text(obj.get("referenceType")))
        value = (_text(obj.get("value")) or _text(obj.get("documentReferenceValue"))
                 or _text(obj.get("referenceValue")))
        if kind and value:
            refs.setdefault(kind, value)
    document, kind = _text(payload.get("documentID")), _text(payload.get("documentTypeCode"))
    if document and kind:
        refs.setdefault(kind, document)
    return refs


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
    scheme = _text(event.get("_scheme")) or (
        "trackingmore" if _TRACKINGMORE_SUB.match(_text(event.get("substatus")) or "") else
        "generic")
    estimated = bool(event.get("eta")) and status.lower() in ("estimate", "eta", "estimated")
    when = _when(event.get("eta") if estimated else (event.get("occurred_at")
                                                     or event.get("datetime")))
    statuses = [Status(index=0, code=status, scheme=scheme, when=when,
                       reason=_text(event.get("reason")),
                       text=_text(event.get("message")), estimated=estimated,
                       location=_text(event.get("location")), event_id=event_id)]
    if event.get("eta") and not estimated:
        statuses.append(Status(index=1, code="ETA", scheme="generic", when=_when(event["eta"]),
                               estimated=True, text="estimated delivery", event_id=event_id))
    po = _text(event.get("po")) or _text(event.get("purchase_order"))
    return StatusReport(key=f"json:{event_id}", shipment=ref, statuses=tuple(statuses),
                        carrier=carrier, po_refs=(po,) if po else ())


#: TrackingMore's sub-statuses (transit001, exception004…): its status words are meant
_TRACKINGMORE_SUB = re.compile(r"^(notfound|pending|transit|pickup|delivered|undelivered|"
                               r"exception|expired)\d{3}$")


#: every branch of :func:`_aggregator` needs one of these keys
_AGGREGATOR_KEYS = frozenset(("tag", "delivery_status", "tracking_status", "object",
                              "track_info"))


def _aggregator(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The webhook or API object of a tracking aggregator as a plain event (status, tracking
    number, time, place, ETA) whose status is read with that aggregator's table:
    AfterShip (``tag``/``subtag``), TrackingMore (``delivery_status``/``substatus``), Shippo
    (``tracking_status``), EasyPost (``"object": "Tracker"``), 17TRACK (``track_info``)."""
    if _text(obj.get("tag")) and _text(obj.get("tracking_number")):  # AfterShip
        last = _last(obj.get("checkpoints"))
        return _plain("aftership", obj.get("tracking_number"),
                      _text(obj.get("subtag")) or obj.get("tag"), obj.get("slug"),
                      last.get("checkpoint_time") or obj.get("updated_at"),
                      last.get("location") or last.get("city"),
                      last.get("message") or obj.get("subtag_message"),
                      obj.get("expected_delivery"), obj)
    if _text(obj.get("delivery_status")) and _text(obj.get("tracking_number")):  # TrackingMore
        return _plain("trackingmore", obj.get("tracking_number"),
                      _text(obj.get("substatus")) or obj.get("delivery_status"),
                      obj.get("courier_code"), obj.get("latest_checkpoint_time"),
                      obj.get("location"), obj.get("latest_event"),
                      obj.get("scheduled_delivery_date"), obj)
    status = _obj(obj.get("tracking_status"))
    if _text(status.get("status")) and _text(obj.get("tracking_number")):  # Shippo
        place = _obj(status.get("location"))
        return _plain("shippo", obj.get("tracking_number"), _shippo_code(status),
                      obj.get("carrier"), status.get("status_date"),
                      ", ".join(str(v) for v in (place.get("city"), place.get("country")) if v),
                      status.get("status_details"), obj.get("eta"), obj)
    if obj.get("object") == "Tracker" and _text(obj.get("tracking_code")):  # EasyPost
        last = _last(obj.get("tracking_details"))
        place = _obj(last.get("tracking_location"))
        return _plain("easypost", obj.get("tracking_code"), obj.get("status"),
                      obj.get("carrier"), last.get("datetime") or obj.get("updated_at"),
                      ", ".join(str(v) for v in (place.get("city"), place.get("country")) if v),
                      last.get("message") or obj.get("status_detail"),
                      obj.get("est_delivery_date"), obj)
    info = _obj(obj.get("track_info"))
    if info and _text(obj.get("number")):  # 17TRACK
        latest = _obj(info.get("latest_status"))
        event = _obj(info.get("latest_event"))
        eta = _obj(_obj(info.get("time_metrics")).get("estimated_delivery_date"))
        return _plain("17track", obj.get("number"),
                      _text(latest.get("sub_status")) or latest.get("status"),
                      obj.get("carrier"), event.get("time_utc") or event.get("time_iso"),
                      event.get("location"), event.get("description"),
                      eta.get("to") or eta.get("from"), obj)
    return None


def _shippo_code(status: dict[str, Any]) -> Any:
    """Shippo's ``substatus.code`` where its table knows it, else its ``status``: a FAILURE
    whose substatus is ``delivery_attempted`` is an attempt, not a failed delivery."""
    code = _text(_obj(status.get("substatus")).get("code"))
    if code and code.islower() and code in load_table("shippo")["codes"]:
        return code
    return status.get("status")


def _plain(scheme: str, ref: Any, status: Any, carrier: Any, when: Any, location: Any,
           message: Any, eta: Any, original: dict[str, Any]) -> dict[str, Any] | None:
    if not _text(status):
        return None
    return {"_scheme": scheme, "tracking_number": _text(ref), "status": _text(status),
            "carrier": _text(carrier), "occurred_at": _text(when),
            "location": _text(location), "message": _text(message), "eta": _text(eta),
            "id": _digest(original)}


def _last(value: Any) -> dict[str, Any]:
    items = [item for item in _list(value) if isinstance(item, dict)]
    return items[-1] if items else {}


def _digest(event: dict[str, Any]) -> str:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]
