"""Default phrasing of the supply-chain events (shipment.*, asn.mismatch).

Registered through the ``register_phrases`` hook like any plugin's wording. Posts are written
for purchasing and production: the PO, the supplier, how much of what was ordered, when it
arrives and how late that is, in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from floorstream.model import Event
from floorstream.plugin import Phrase, Registry, hookimpl, phrasing

__all__ = ["PHRASES", "register_phrases"]

_UNITS = {"EA": "pcs", "PCE": "pcs", "PCS": "pcs", "C62": "pcs", "PC": "pcs", "H87": "pcs",
          "KGM": "kg", "KG": "kg", "LB": "lb", "CS": "cases", "CT": "cartons", "PK": "packs"}


_YEAR: ContextVar[int] = ContextVar("year", default=0)


def _day(iso: Any) -> str:
    """``2 Dec``; the year only when it differs from the event's own year, so a phrase never
    depends on the day it is rendered."""
    if not isinstance(iso, str):
        return "?"
    when = datetime.fromisoformat(iso)
    return f"{when.day} {when:%b}" + ("" if when.year == _YEAR.get() else f" {when.year}")


def _dated(phrase: Callable[[Event], str]) -> Callable[[Event], str]:
    def render(e: Event) -> str:
        token = _YEAR.set(e.occurred_at.year)
        try:
            return phrase(e)
        finally:
            _YEAR.reset(token)
    return render


def _unit(unit: Any) -> str:
    return _UNITS.get(str(unit).upper(), str(unit).lower()) if unit else ""


def _late(days: Any, what: str = "the promised date") -> str:
    if not isinstance(days, int):
        return ""
    if days > 0:
        return f" — {days} day{'s' if days != 1 else ''} after {what}"
    if days < 0:
        return f" — {-days} day{'s' if days != -1 else ''} early"
    return " — on the promised date"


def _who(f: dict[str, Any]) -> str:
    return f"Carrier {f['carrier']}: " if f.get("carrier") else ""


def _shipment(f: dict[str, Any]) -> str:
    text = f"shipment {f['shipment']}"
    if f.get("po"):
        text += f" (PO {f['po']})"
    return text


def _place(f: dict[str, Any]) -> str:
    parts = [p for p in (f.get("location"), _day(f["when"]) if f.get("when") else None) if p]
    return f" ({', '.join(parts)})" if parts else ""


def _dispatched(e: Event) -> str:
    f = e.fields
    head = f"PO {f['po']}" if f.get("po") else f"ASN {f['asn']}"
    if f.get("supplier"):
        head += f" from {f['supplier']}"
    unit = _unit(f.get("unit"))
    shipped = phrasing.number(f["shipped"])
    if f.get("ordered") is not None:
        amount = f"shipped {shipped} of {phrasing.number(f['ordered'])} {unit}".rstrip()
    else:
        amount = f"shipped {shipped} {unit}".rstrip()
    if f.get("eta"):
        amount += f", arriving {_day(f['eta'])}"
    elif f.get("ship_date"):
        amount += f", sent {_day(f['ship_date'])}"
    return f"{head}: {amount}{_late(f.get('late_days'))}"


def _delayed(e: Event) -> str:
    f = e.fields
    if "shipped" in f:  # a late ASN: say what was shipped, when it arrives, how late
        return _dispatched(e)
    text = f"{_who(f)}{_shipment(f)} delayed"
    if f.get("reason"):
        text += f" — {f['reason']}"
    elif f.get("status") and not f.get("estimated"):
        text += f" — {f['status']}"
    if f.get("eta"):
        text += f", now due {_day(f['eta'])}"
        if f.get("previous_eta"):
            text += f" (was {_day(f['previous_eta'])})"
    if isinstance(f.get("late_days"), int) and f["late_days"] > 0:
        text += f", {f['late_days']} day{'s' if f['late_days'] != 1 else ''} after the " \
                "promised date"
    return text


def _status(e: Event) -> str:
    f = e.fields
    if f.get("estimated"):
        return f"{_who(f)}{_shipment(f)} expected {_day(f.get('eta') or f.get('when'))}"
    status = f.get("status", "status " + str(f.get("code")))
    if f.get("planned"):
        status = f"expected to be {status}"
    text = f"{_who(f)}{_shipment(f)} {status}"
    if f.get("container"):
        text += f", container {f['container']}"
    return text + _place(f)


def _delivered(e: Event) -> str:
    f = e.fields
    return f"{_who(f)}{_shipment(f)} delivered{_place(f)}"


def _exception(e: Event) -> str:
    f = e.fields
    text = f"{_who(f)}{_shipment(f)} — {f.get('status', 'exception')}"
    if f.get("reason"):
        text += f" ({f['reason']})"
    return text + _place(f)


def _retracted(e: Event) -> str:
    f = e.fields
    who = f"Carrier {f['carrier']}" if f.get("carrier") else "The carrier"
    if f.get("known"):
        return f"{who} withdrew its earlier update on {e.subject} (event {f['retracted_id']})"
    return f"{who} withdrew event {f['retracted_id']}, which was never received here"


def _mismatch(e: Event) -> str:
    f = e.fields
    asn = f"ASN {f.get('asn', '?')}"
    problem = f.get("problem")
    if problem == "unknown_po":
        return f"{asn} refers to PO {f['po']}, which is not in the ERP"
    if problem == "no_po":
        return f"{asn} names no purchase order"
    line = f.get("line") or f.get("vendor_part") or "?"
    if problem == "unknown_line":
        return f"{asn} refers to PO {f['po']} line {line}, which does not exist"
    if problem == "deleted_line":
        return f"{asn} refers to PO {f['po']} line {line}, which is deleted in the ERP"
    unit = _unit(f.get("unit"))
    return (f"{asn} ships {phrasing.number(f['shipped'])} {unit} of PO {f['po']} line {line}, "
            f"more than the {phrasing.number(f['ordered'])} ordered").replace("  ", " ")


PHRASES: dict[str, Callable[[Event], str]] = {
    "shipment.dispatched": _dated(_dispatched),
    "shipment.delayed": _dated(_delayed),
    "shipment.status_changed": _dated(_status),
    "shipment.delivered": _dated(_delivered),
    "shipment.exception": _dated(_exception),
    "shipment.retracted": _dated(_retracted),
    "asn.mismatch": _dated(_mismatch),
}


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    for type_, phrase in PHRASES.items():
        phrases.add(phrase, name=type_)
