"""Default wording of the events floorstream's own detectors make (and the machine events the
MQTT adapter reports the same way): "press-07 Stopped (was Running)", "press-07: spindle
92 °C, above the 85 °C limit", "WH/MO/00042: state Confirmed → In progress".
"""

from __future__ import annotations

from datetime import datetime

from floorstream.model import Event
from floorstream.plugin import Phrase, Registry, hookimpl, phrasing

__all__ = ["register_phrases"]


def _state_changed(e: Event) -> str:
    """"press-07 held (was execute)"; settled through short states, "press-07 held (via
    holding, was execute)"; with the state's reason, "… — Jam at infeed"."""
    f = e.fields
    if "duration_s" in f:
        text = f"{e.subject} {f['after_label']} again after {phrasing.duration(f['duration_s'])}"
    elif f.get("via"):
        via = ", ".join(f["via"])
        text = f"{e.subject} {f['after_label']} (via {via}, was {f['before_label']})"
    else:
        text = f"{e.subject} {f['after_label']} (was {f['before_label']})"
    if f.get("reason") not in (None, ""):
        text += f" — {f['reason']}"
    return text


def _state_reported_late(e: Event) -> str:
    """"press-07 was stopped at 10:00:03 CET, reported late (running since 10:00:05)": a
    reading that arrived after a newer one is a past state, said as such. Times in the
    plant's display zone, named once."""
    f = e.fields
    text = (f"{e.subject} was {f['state_label']} at "
            f"{phrasing.clock(e.occurred_at, '%H:%M:%S')}, reported late")
    since = f.get("current_since")
    if since:
        text += f" ({f['current_label']} since {_clock(since, '%H:%M:%S')})"
    else:
        text += f" (now {f['current_label']})"
    return text


def _clock(moment: str, fmt: str = "%H:%M") -> str:
    """A time in the display zone without its abbreviation: for the second time of a
    sentence whose first one names the zone."""
    return datetime.fromisoformat(moment).astimezone(phrasing.display_zone()).strftime(fmt)


def _limit_exceeded(e: Event) -> str:
    f = e.fields
    unit = f.get("unit", "")
    text = (f"{e.subject}: {f['label']} {phrasing.quantity(f['value'], unit)}, "
            f"{f['direction']} the {phrasing.quantity(f['limit'], unit)} limit")
    if f.get("duration_s"):
        text += f" for {phrasing.duration(f['duration_s'])}"
    return text


def _limit_cleared(e: Event) -> str:
    f = e.fields
    unit = f.get("unit", "")
    side = "below" if f["direction"] == "above" else "above"
    return (f"{e.subject}: {f['label']} back to {phrasing.quantity(f['value'], unit)}, "
            f"{side} {phrasing.quantity(f['limit'], unit)} (peak "
            f"{phrasing.quantity(f['peak'], f.get('peak_unit', unit))}, "
            f"{phrasing.lasted(f['duration_s'])})")


def _limit_escalated(e: Event) -> str:
    """"oven-2: spindle temp now 92.5 °C, beyond the 90 °C critical level (alarm for 15 min,
    was 86 °C)"; a new peak: "oven-2: spindle temp up to 92.5 °C (was 86 °C), still above
    the 85 °C limit after 15 min" ("down to" for a low limit)."""
    f = e.fields
    unit = f.get("unit", "")
    value = phrasing.quantity(f["value"], unit)
    previous = phrasing.quantity(f["previous"], f.get("peak_unit", unit))
    limit, since = phrasing.quantity(f["limit"], unit), phrasing.lasted(f["duration_s"])
    if f.get("kind") == "level":
        return (f"{e.subject}: {f['label']} now {value}, {f['direction']} the {limit} "
                f"{f['level']} level (alarm for {since}, was {previous})")
    # a new peak within a second of the raise is no news of how long: "after 0 s" read as
    # if the alarm had only just begun to matter
    after = f" after {since}" if f["duration_s"] >= 0.5 else ""
    moved = "down to" if f["direction"] == "below" else "up to"  # (a pressure falls)
    return (f"{e.subject}: {f['label']} {moved} {value} (was {previous}), still "
            f"{f['direction']} the {limit} limit{after}")


def _limit_standing(e: Event) -> str:
    """"oven-2: temp still above the 85 °C limit after 15 min (now 91 °C, peak 93 °C)"; a
    reminder on the wall clock, with no reading since: "oven-2: temp still above the 85 °C
    limit since 08:14 CET, 45 min (no reading since 08:20: last 86 °C, peak 88 °C)"."""
    f = e.fields
    unit = f.get("unit", "")
    limit = phrasing.quantity(f["limit"], unit)
    now = phrasing.quantity(f["value"], unit)
    peak = phrasing.quantity(f["peak"], f.get("peak_unit", unit))
    if f.get("last_at"):
        since, last = phrasing.clock(f["since"]), _clock(f["last_at"])
        return (f"{e.subject}: {f['label']} still {f['direction']} the {limit} limit since "
                f"{since}, {phrasing.duration(f['duration_s'])} (no reading since {last}: "
                f"last {now}, peak {peak})")
    return (f"{e.subject}: {f['label']} still {f['direction']} the {limit} limit after "
            f"{phrasing.duration(f['duration_s'])} (now {now}, peak {peak})")


def _offline(e: Event) -> str:
    f = e.fields
    if f.get("since"):  # the silence detector: when the subject's own clock last spoke
        # two clocks, each named: "no data since 11:26, 1 min" read as a contradiction at
        # 11:34 after a machine flushed a 10-minute buffer and fell silent again
        since = phrasing.clock(f["since"])
        return (f"{e.subject} offline: nothing received for "
                f"{phrasing.duration(f['silent_s'])}, last data from {since}")
    return f"{e.subject} offline: no data for {phrasing.duration(f['silent_s'])}"


def _online(e: Event) -> str:
    return f"{e.subject} back online after {phrasing.duration(e.fields['silent_s'])}"


def _field_changed(e: Event) -> str:
    f = e.fields
    return (f"{e.subject}: {f['label']} {phrasing.value(f['before'])} → "
            f"{phrasing.value(f['after'])}{phrasing.steps_unseen(f)}")


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    for type_, phrase in (
        ("machine.state_changed", _state_changed),
        ("machine.state_reported_late", _state_reported_late),
        ("metric.limit_exceeded", _limit_exceeded),
        ("metric.limit_cleared", _limit_cleared),
        ("metric.limit_escalated", _limit_escalated),
        ("metric.limit_standing", _limit_standing),
        ("machine.offline", _offline),
        ("machine.online", _online),
        ("record.field_changed", _field_changed),
        ("record.created", _created),
        ("record.deleted", _deleted),
        ("record.archived", _archived),
        ("record.blocked", _blocked),
        ("record.restored", _restored),
        ("record.submitted", _action),
        ("record.cancelled", _action),
        ("record.amended", _amended),
        ("record.backorder", _backorder),
        ("record.split", _split),
    ):
        phrases.add(phrase, name=type_)


def _created(e: Event) -> str:
    return f"{e.subject} created"


def _deleted(e: Event) -> str:
    """"WH/MO/00042 deleted" (the row is gone); a deletion flag set, the record still
    there: "4500012/10 flagged for deletion (LOEKZ L)"."""
    if e.fields.get("flagged"):
        return f"{e.subject} flagged for deletion{_flag(e.fields)}"
    return f"{e.subject} deleted"


#: SAP's deletion indicators, named in capitals as SAP's users know them
_SAP_FLAGS = frozenset({"loekz", "lvorm", "loevm"})


def _flag(f: dict[str, object]) -> str:
    """" (LOEKZ L)", " (deletion flag L)": the ERP's own indicator, as its users know it
    (not for a yes/no)."""
    flag, field = f.get("flag"), str(f.get("field") or "")
    if not isinstance(flag, str) or not flag or not field:
        return ""
    name = field.upper() if field.lower() in _SAP_FLAGS else field.replace("_", " ")
    return f" ({name} {flag})"


def _archived(e: Event) -> str:
    return f"{e.subject} archived"


def _blocked(e: Event) -> str:
    return f"{e.subject} blocked{_flag(e.fields)}"


def _restored(e: Event) -> str:
    """"WH/MO/00042 restored from the archive", "4500012/10 deletion flag removed",
    "4500012/10 unblocked"."""
    was = e.fields.get("was")
    if was == "archived":
        return f"{e.subject} restored from the archive"
    if was == "blocked":
        return f"{e.subject} unblocked"
    return f"{e.subject} restored (deletion flag removed)"


def _action(e: Event) -> str:
    """"MFG-WO-2024-00001 submitted, status Not Started (quantity 10 → 12)"."""
    f = e.fields
    text = f"{e.subject} {f['action']}"
    status = f.get("status")
    if status not in (None, "") and str(status).casefold() != str(f["action"]).casefold():
        text += f", {f.get('status_label') or 'status'} {phrasing.value(status)}"
    changes = [f"{c['label']} {phrasing.value(c['before'])} → {phrasing.value(c['after'])}"
               for c in f.get("changes") or []]
    return text + (f" ({'; '.join(changes)})" if changes else "")


def _amended(e: Event) -> str:
    return f"{e.fields['of']} amended as {e.subject}"


def _backorder(e: Event) -> str:
    return f"{e.subject} created as backorder of {e.fields['of']}"


def _split(e: Event) -> str:
    return f"{e.subject} split from {e.fields['of']}"
