"""How the MTConnect events read: "SimpleCnc: fault MOT-OVR Spindle Motor Overload (Rotary C
amperage)", "SimpleCnc: MOT-OVR cleared after 4 min", "SimpleCnc: cycle complete, part 663
(O98877, 2 min 13 s)". A source's ``summary:`` template or a ``render_post`` plugin still wins.
"""

from __future__ import annotations

from floorstream.model import Event
from floorstream.plugin import phrasing

__all__ = ["PHRASES"]


def _where(f: dict[str, object]) -> str:
    where = " ".join(str(p) for p in (f.get("component"), f.get("condition")) if p)
    return where or str(f.get("item") or "")


def _what(f: dict[str, object]) -> str:
    return " ".join(str(p) for p in (f.get("native_code"), f.get("text")) if p)


def _condition(e: Event) -> str:
    f = e.fields
    level = str(f["level"]).lower()
    what = _what(f)
    head = f"{e.subject}: {level}" + (f" {what}" if what else "") + f" ({_where(f)})"
    if e.relation == "update":
        head += f", was {str(f['before']).lower()}"
    return head


def _cleared(e: Event) -> str:
    f = e.fields
    what = _what(f) or f"{str(f['before']).lower()} on {_where(f)}"
    return f"{e.subject}: {what} cleared after {phrasing.duration(float(f['duration_s']))}"


def _cycle(e: Event) -> str:
    f = e.fields
    text = f"{e.subject}: cycle complete"
    if f.get("part_count") is not None:
        text += f", part {f['part_count']}"
    details = [str(f["program"])] if f.get("program") else []
    if f.get("cycle_s") is not None:
        details.append(phrasing.duration(float(f["cycle_s"])))
    if int(f.get("parts") or 1) > 1:
        details.append(f"{f['parts']} parts since the last post")
    return text + (f" ({', '.join(details)})" if details else "")


PHRASES = {"mtconnect.condition": _condition, "mtconnect.condition_cleared": _cleared,
           "mtconnect.cycle_complete": _cycle}
