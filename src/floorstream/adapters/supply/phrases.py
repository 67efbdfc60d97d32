"""Default phrasing of the supply-chain events (shipment.*, asn.*).

Registered through the ``register_phrases`` hook like any plugin's wording. Posts are written
for purchasing and production: the PO, the supplier, how much of what was ordered, when it
arrives and how late that is, in one line. An update says what changed since the last post
("ETA 2 Dec → 5 Dec, 3 days later"); an estimate that moved within one day shows the times,
so a post never reads "now due 11 Sep (was 11 Sep)". A milestone reads the same whichever
carrier or aggregator reported it (``codes/milestones.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from floorstream.adapters.supply.code_tables import milestones, unit_words
from floorstream.model import Event
from floorstream.plugin import Phrase, Registry, hookimpl, phrasing

__all__ = ["PHRASES", "register_phrases"]

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
    return unit_words(str(unit)) if unit else ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _late(days: Any, what: str = "the promised date") -> str:
    if not isinstance(days, int):
        return ""
    if days > 0:
        return f" — {_plural(days, 'day')} after {what}"
    if days < 0:
        return f" — {_plural(-days, 'day')} early"
    return " — on the promised date"


def _versus_promise(days: Any) -> str:
    """``now 3 days later than promised`` (after a change of the ETA)."""
    if not isinstance(days, int):
        return ""
    if days > 0:
        return f"; now {_plural(days, 'day')} later than promised"
    if days < 0:
        return f"; now {_plural(-days, 'day')} earlier than promised"
    return "; now on the promised date"


def _moved(before: Any, after: Any) -> str:
    """``2 Dec → 5 Dec, 3 days later``; within one day ``11 Sep 11:59 → 14:30, 2 h 31 min
    later``."""
    if not isinstance(before, str) or not isinstance(after, str):
        return f"{_day(before)} → {_day(after)}" if after else f"{_day(before)} → none"
    old, new = datetime.fromisoformat(before), datetime.fromisoformat(after)
    if old.date() != new.date():
        days = (new.date() - old.date()).days
        how = f"{_plural(abs(days), 'day')} {'later' if days > 0 else 'earlier'}"
        return f"{_day(before)} → {_day(after)}, {how}"
    seconds = (new - old).total_seconds()
    how = f"{phrasing.duration(abs(seconds))} {'later' if seconds > 0 else 'earlier'}"
    return f"{_day(before)} {old:%H:%M} → {new:%H:%M}, {how}"


def _who(f: dict[str, Any]) -> str:
    return f"Carrier {f['carrier']}: " if f.get("carrier") else ""


def _shipment(f: dict[str, Any]) -> str:
    text = f"shipment {f['shipment']}"
    if f.get("po"):
        text += f" (PO {f['po']})"
    return text


def _place(f: dict[str, Any], *, reason: bool = False) -> str:
    """`` (vessel, Hamburg, 25 Nov)``: the code's detail, the place and the day."""
    detail = f.get("detail") if f.get("milestone") not in (None, "other") else None
    parts = [p for p in (f.get("reason") if reason else None, detail, f.get("location"),
                         _day(f["when"]) if f.get("when") else None) if p]
    return f" ({', '.join(parts)})" if parts else ""


def _amount(f: dict[str, Any]) -> str:
    """``shipped 120 of 200 pcs``; several units are listed, never summed."""
    if f.get("shipped_units"):
        listed = " + ".join(f"{phrasing.number(q)} {_unit(u)}".rstrip()
                            for q, u in f["shipped_units"])
        return f"shipped {listed}"
    unit = _unit(f.get("unit"))
    shipped = phrasing.number(f.get("shipped") or 0)
    if f.get("ordered") is not None:
        return f"shipped {shipped} of {phrasing.number(f['ordered'])} {unit}".rstrip()
    return f"shipped {shipped} {unit}".rstrip()


def _listed(amounts: Any) -> str:
    """``{"EA": 120, "CS": 2}`` → ``120 pcs + 2 cases``."""
    if not isinstance(amounts, dict) or not amounts:
        return "0"
    return " + ".join(f"{phrasing.number(q)} {_unit(u)}".rstrip() for u, q in amounts.items())


def _in_order(amounts: Any, order: list[Any]) -> Any:
    """``amounts`` in the document's order of units (the memory keeps them sorted by code,
    which put "2 cases + 120 pcs" in the update of a post that said "120 pcs + 2 cases")."""
    if not isinstance(amounts, dict):
        return amounts
    rank = {u: n for n, u in enumerate(order) if isinstance(u, str)}
    return dict(sorted(amounts.items(), key=lambda item: rank.get(item[0], len(rank))))


def _head(f: dict[str, Any]) -> str:
    head = f"PO {f['po']}" if f.get("po") else f"ASN {f.get('asn', '?')}"
    if f.get("supplier"):
        head += f" from {f['supplier']}"
    return head


def _change(change: dict[str, Any], f: dict[str, Any]) -> str:
    what = change.get("what")
    if what == "eta":
        return f"ETA {_moved(change.get('before'), change.get('after'))}" \
            if change.get("before") else f"now arriving {_day(change.get('after'))}"
    if what == "shipped":
        before, after = change.get("before") or {}, change.get("after") or {}
        if len(before) == 1 and before.keys() == after.keys():  # one unit: 30 → 28 of 34 pcs
            (unit, old), (new,) = next(iter(before.items())), after.values()
            of = f" of {phrasing.number(f['ordered'])}" if f.get("ordered") is not None else ""
            return f"shipped {phrasing.number(old)} → {phrasing.number(new)}{of} " \
                   f"{_unit(unit)}".rstrip()
        order = [u for _q, u in f.get("shipped_units") or []] or [f.get("unit")]
        return f"shipped {_listed(_in_order(before, order))} → " \
               f"{_listed(_in_order(after, order))}"
    if what == "ship_date":
        if not change.get("before"):  # the earlier version had no ship date: no "(was ?)"
            return f"now sent {_day(change.get('after'))}"
        return f"sent {_day(change.get('after'))} (was {_day(change.get('before'))})"
    return "lines changed"


def _dispatched(e: Event) -> str:
    f = e.fields
    head = _head(f)
    if f.get("changes"):
        verb = f.get("purpose") or "updated"
        parts = "; ".join(_change(c, f) for c in f["changes"])
        eta_moved = any(c.get("what") == "eta" for c in f["changes"])
        tail = _versus_promise(f.get("late_days")) if eta_moved else ""
        return f"{head}: ASN {f.get('asn', '?')} {verb} — {parts}{tail}"
    amount = _amount(f)
    if f.get("eta"):
        amount += f", arriving {_day(f['eta'])}"
    elif f.get("ship_date"):
        amount += f", sent {_day(f['ship_date'])}"
    if f.get("matched_late"):
        return f"{head} is now in the ERP: ASN {f.get('asn', '?')} {amount}" \
               f"{_late(f.get('late_days'))}"
    return f"{head}: {amount}{_late(f.get('late_days'))}"


def _estimate(e: Event) -> str:
    """An ETA, or a carrier's planned milestone, and how it moved since the last one."""
    f = e.fields
    who, shipment = _who(f), _shipment(f)
    target = milestones().get(str(f.get("target")), {}) if f.get("planned") else {}
    where = f" at {f['location']}" if target and f.get("location") else ""
    if f.get("previous_eta"):
        noun = target.get("noun") or (f"{f.get('status')} expected" if target else "ETA")
        why = f" ({f['reason']})" if f.get("reason") else ""  # AT7*AG*AO: weather
        return (f"{who}{shipment}: {noun}{where} {_moved(f['previous_eta'], f.get('eta'))}"
                f"{why}{_versus_promise(f.get('late_days'))}")
    if target:
        planned = target.get("planned") or f"to be {f.get('status')}"
        return f"{who}{shipment} expected {planned}{where} {_day(f.get('eta'))}"
    if e.type == "shipment.delayed":
        text = f"{who}{shipment} delayed, now due {_day(f.get('eta'))}"
        if isinstance(f.get("late_days"), int) and f["late_days"] > 0:
            text += f", {_plural(f['late_days'], 'day')} after the promised date"
        return text
    return f"{who}{shipment} expected {_day(f.get('eta') or f.get('when'))}"


def _delayed(e: Event) -> str:
    f = e.fields
    if "shipped" in f or "shipped_units" in f or "changes" in f:  # a late or moved ASN
        return _dispatched(e)
    if f.get("estimated"):
        return _estimate(e)
    if f.get("milestone") not in ("delayed", "other", None) and f.get("status"):
        # a milestone with a problem reason (AT7*AF*AI): it happened, and late; "delayed —
        # mechanical breakdown" alone lost the departure, its place and its day
        text = f"{_who(f)}{_shipment(f)} {f['status']}{_place(f)} — delayed"
        return text + (f": {f['reason']}" if f.get("reason") else "")
    text = f"{_who(f)}{_shipment(f)} delayed"
    why = f.get("reason") or (f.get("detail") if f.get("milestone") == "delayed" else None) \
        or (f.get("status") if f.get("milestone") not in ("delayed", None) else None)
    if why:
        text += f" — {why}"
    return text


def _status(e: Event) -> str:
    f = e.fields
    if f.get("estimated"):
        return _estimate(e)
    status = f.get("status", "status " + str(f.get("code")))
    text = f"{_who(f)}{_shipment(f)} {status}"
    if f.get("container"):
        text += f", container {f['container']}"
    elif f.get("trailer"):  # a 214's MS2: SCAC + trailer number, not a container
        text += f", trailer {f['trailer']}"
    return text + _place(f) + _expected(f) + _eta_after(f)


def _eta_after(f: dict[str, Any]) -> str:
    """The arrival or delivery estimate a milestone's report carried with it."""
    if not f.get("eta") or f.get("eta_target") not in ("delivered", "arrived"):
        return ""
    # "expected", as the estimate's own post says: whose arrival (the goods', the vessel's)
    # an ETA names differs by format, so only an explicit arrival says so
    noun = "expected" if f["eta_target"] == "delivered" else "arrival expected"
    same_day = isinstance(f.get("when"), str) and f["when"][:10] == str(f["eta"])[:10]
    return f", {noun} {'the same day' if same_day else _day(f['eta'])}"


def _expected(f: dict[str, Any]) -> str:
    """How an actual milestone compares with the estimate it resolves."""
    if not f.get("expected"):
        return ""
    days = f.get("late_days")
    if not isinstance(days, int) or days == 0:
        return ", as expected"
    return f", {_plural(abs(days), 'day')} {'later' if days > 0 else 'earlier'} than expected"


def _delivered(e: Event) -> str:
    f = e.fields
    return f"{_who(f)}{_shipment(f)} delivered{_place(f)}{_expected(f)}"


def _exception(e: Event) -> str:
    f = e.fields
    return (f"{_who(f)}{_shipment(f)} — {f.get('status', 'exception')}{_place(f, reason=True)}"
            f"{_eta_after(f)}")


def _retracted(e: Event) -> str:
    f = e.fields
    who = f"Carrier {f['carrier']}" if f.get("carrier") else "The carrier"
    if f.get("document"):
        if f.get("known"):
            return f"{who} cancelled its status report {f['document']} on {e.subject}"
        return f"{who} cancelled status report {f['document']} on {e.subject}, which was " \
               "not seen here before"
    if f.get("known") and f.get("withdrawn_eta"):  # an estimate: say which, and what holds
        target = milestones().get(str(f.get("target")), {})
        noun = target.get("noun") or "ETA"
        where = f" at {f['location']}" if f.get("location") else ""
        text = f"{who} withdrew its estimate on {e.subject} (event {f['retracted_id']}): " \
               f"{noun}{where} {_day(f['withdrawn_eta'])}"
        return text + (f"; back to {_day(f['eta'])}" if f.get("eta") else "")
    if f.get("known"):
        return f"{who} withdrew its earlier update on {e.subject} (event {f['retracted_id']})"
    return f"{who} withdrew event {f['retracted_id']}, which was not seen here before"


def _cancelled(e: Event) -> str:
    f = e.fields
    head = _head(f)
    what = f"ASN {f.get('asn', '?')} {f.get('purpose') or 'cancelled'} by the supplier"
    was = f.get("was")
    if not f.get("known"):
        return f"{head}: {what}; not seen here before"
    if isinstance(was, dict) and was.get("shipped"):
        said = f"shipped {_listed(was['shipped'])}"
        if was.get("eta"):
            said += f", arriving {_day(was['eta'])}"
        elif was.get("ship"):
            said += f", sent {_day(was['ship'])}"
        return f"{head}: {what} (it said: {said})"
    return f"{head}: {what}"


def _mismatch(e: Event) -> str:
    f = e.fields
    asn = f"ASN {f.get('asn', '?')}"
    problem = f.get("problem")
    if problem == "unknown_po":
        days = f.get("waiting_days")
        wait = f": waiting up to {_plural(days, 'day')} for it" if isinstance(days, int) else ""
        return f"{asn} refers to PO {f['po']}, which is not in the ERP (yet){wait}"
    if problem == "no_po":
        return f"{asn} names no purchase order"
    line = f.get("line") or f.get("vendor_part") or "?"
    if problem == "unknown_line":
        return f"{asn} refers to PO {f['po']} line {line}, which does not exist"
    if problem == "deleted_line":
        return f"{asn} refers to PO {f['po']} line {line}, which is deleted in the ERP"
    if problem == "blocked_line":
        return f"{asn} refers to PO {f['po']} line {line}, which is blocked in the ERP"
    if problem == "unit_mismatch":
        return (f"{asn} ships {phrasing.number(f['shipped'])} {_unit(f.get('unit'))} of PO "
                f"{f['po']} line {line}, ordered in {_unit(f.get('ordered_unit'))}: no "
                f"conversion from {f.get('unit')} to {f.get('ordered_unit')} is configured")
    unit = _unit(f.get("unit"))
    return (f"{asn} ships {phrasing.number(f['shipped'])} {unit} of PO {f['po']} line {line}, "
            f"more than the {phrasing.number(f['ordered'])} ordered").replace("  ", " ")


def _expired(e: Event) -> str:
    f = e.fields
    seconds = f.get("waited_s")
    waited = "" if not isinstance(seconds, int | float) else (
        f" after {_plural(round(seconds / 86_400), 'day')}" if seconds >= 86_400 else
        f" after {phrasing.duration(seconds)}")
    return (f"ASN {f.get('asn', '?')} for PO {f.get('po', '?')} expired unmatched{waited}: "
            "the PO never appeared in the ERP")


PHRASES: dict[str, Callable[[Event], str]] = {
    "shipment.dispatched": _dated(_dispatched),
    "shipment.delayed": _dated(_delayed),
    "shipment.status_changed": _dated(_status),
    "shipment.delivered": _dated(_delivered),
    "shipment.exception": _dated(_exception),
    "shipment.retracted": _dated(_retracted),
    "asn.cancelled": _dated(_cancelled),
    "asn.mismatch": _dated(_mismatch),
    "asn.expired": _dated(_expired),
}


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    for type_, phrase in PHRASES.items():
        phrases.add(phrase, name=type_)
