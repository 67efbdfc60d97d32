"""Flood control: per subject and window, at most ``max_posts`` posts at least as severe as
each post; the rest become a digest. Routine chatter never hides a fault.

A machine flapping between two states, or a feed replaying a day of exceptions, must not bury
a team's feed. Within a window the posts pass until the budget is spent; the others are
counted by type and severity and folded into one ``flood.digest`` event when the window
closes, followed by one ``flood.calm`` event once a whole window passes without suppression.

**The rule** (the way Alertmanager never lets info drown criticals): a post is folded only
when ``max_posts`` posts *at least as severe as it* already went out about its subject in the
window. So a busy machine's info posts ("cycle complete, part 663") spend only the info
budget: its first warning still goes out, and so does any post more severe than everything in
the window. Posts that went out count against the budget of every severity up to their own
(ten criticals leave no room for an eleventh info line), so a window shows at most
``max_posts`` posts per severity level. Follow-ups go with what they follow up:

- a resolution or retraction (``relation``) of a post that went out always goes out, outside
  the budget: a posted alarm is never left standing because its machine was busy;
- one whose post was folded is folded with it (counted in the digest): a clear of an alarm
  nobody was shown would be a wrong post;
- an update (an escalation, a reminder) is news and takes the budget like a new post; when it
  goes out while the post it updates was folded, it stands in for that post, and the later
  resolution goes out referring to the update instead.

Flood control remembers the ids it folded (the latest :data:`FOLDED_KEPT` per severity level,
so routine folds never push a folded alarm out) in the subject's state, across windows and
restarts.

Windows run on event time (``floorstream.timebase``), so a replay folds the same events into
the same digests at any speed. Each subject's windows only move forward: a window starts at
the event's own window or, for an event older than the window before it (late, out of order,
a machine whose post was stamped earlier), at that window's end, so a late event is counted in
the current window instead of reopening a closed one; every digest has a window of its own and
so an id of its own (two digests with one id would be one post: the store keeps the first).

A window closes when the subject's event time passes its end (the next event, or the source's
watermark on the once-a-second tick), or once it has been open for its length in wall time:
a subject, or a whole source, that went quiet never holds a digest back longer than that, and
a window still open at a stop is persisted and closed by the first ticks after the restart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from floorstream.model import Event, Severity, utcnow
from floorstream.plugin import DetectorState, FloodOptions, Phrase, Registry, hookimpl, phrasing
from floorstream.settle import PHRASES, transition
from floorstream.timebase import due

#: folded ids remembered per severity level (a resolution of one of them is folded too)
FOLDED_KEPT = 64
#: updates remembered that stand in for a folded post (its resolution refers to them)
STAND_INS_KEPT = 64
#: the prefix of an event id kept in the state (64 bits: no collision within one subject)
ID_CHARS = 16

#: the state carried from window to window (the rest is the open window's)
_CARRIED = ("folded", "stand_ins")


class FloodControl:
    """Decides, event by event, what passes; persisted state per (source, subject)."""

    name: ClassVar[str] = "flood"
    key: ClassVar[str] = "flood"

    def __init__(self, options: FloodOptions, source: str) -> None:
        self.options = options
        self.source = source

    def admit(self, event: Event, state: DetectorState,
              now: datetime | None = None) -> list[Event]:
        """The events to post in place of ``event``: itself (maybe re-pointed to the update
        that stood in for a folded post), nothing, or a digest/calm first.

        ``now`` is the wall clock, used only to remember when a window opened."""
        window = self.options.window
        at = event.occurred_at.timestamp()
        wall = (now or utcnow()).timestamp()
        data = state.data
        out: list[Event] = []
        if _is_open(data) and at >= data["start"] + window:
            out = self._close(event.subject, state, wall)
            data = state.data
        if not _is_open(data):
            floor = data["start"] + window if data.get("start") is not None else None
            # the window opens with the event that finds none open, not at a multiple of its
            # length on the clock: an aligned window let a burst straddling a boundary post
            # twice the budget within seconds (10 before 15:40:00, 10 after)
            start = at
            if floor is not None and start < floor:
                start = floor  # a late event: counted in a window after the closed one
            state.replace({**_carried(data), "start": start, "posted": {}, "suppressed": {},
                           "by_severity": {}, "weights": {}, "severity": 0,
                           "flooding": bool(data.get("flooding")), "opened": wall,
                           "open": True, "attrs": event.attrs})
            data = state.data
        state.dirty = True
        level = int(event.severity)
        if event.relation in ("resolution", "retraction") and event.refers_to:
            ref = _short(event.refers_to)
            stand_in = (data.get("stand_ins") or {}).get(ref)
            if stand_in is not None:  # its post was folded, an update of it went out
                out.append(event.model_copy(update={"refers_to": stand_in}))
                return out
            if not _was_folded(data, ref):
                out.append(event)  # answers a post that went out: outside the budget
                return out
            self._fold(event, data)  # answers a folded post: folded with it
            return out
        if _spent(data, level) < self.options.max_posts:
            posted = data.setdefault("posted", {})
            posted[str(level)] = posted.get(str(level), 0) + 1
            if event.relation == "update" and event.refers_to:
                ref = _short(event.refers_to)
                if _was_folded(data, ref):
                    stand_ins = data.setdefault("stand_ins", {})
                    stand_ins.pop(ref, None)
                    stand_ins[ref] = event.id
                    while len(stand_ins) > STAND_INS_KEPT:
                        stand_ins.pop(next(iter(stand_ins)))
            out.append(event)
            return out
        self._fold(event, data)
        return out

    def _fold(self, event: Event, data: dict[str, Any]) -> None:
        """Count ``event`` in the open window's digest and remember that it was folded."""
        data["suppressed"][event.type] = data["suppressed"].get(event.type, 0) + 1
        by_severity = data.setdefault("by_severity", {})
        label = event.severity.label
        by_severity[label] = by_severity.get(label, 0) + 1
        stream = _stream(event)
        if stream is not None:
            weights = data.setdefault("weights", {})
            weights[stream] = weights.get(stream, 0) + _weight(event)
        data["severity"] = max(data["severity"], int(event.severity))
        data["flooding"] = True
        data["attrs"] = event.attrs
        if event.relation not in ("resolution", "retraction"):  # nothing answers those
            kept = data.setdefault("folded", {}).setdefault(str(int(event.severity)), [])
            kept.append(_short(event.id))
            del kept[:-FOLDED_KEPT]

    def tick(self, now: datetime, subject: str, state: DetectorState,
             event_now: float | None = None) -> list[Event]:
        """Close a window that is over (in the subject's event time ``event_now``, or after its
        length in wall time), so a quiet subject's digest is not held back."""
        data = state.data
        if not _is_open(data):
            return []
        window = self.options.window
        wall = now.timestamp()
        if not due(data["start"] + window, data.get("opened"), window, event_now, wall):
            return []
        return self._close(subject, state, wall)

    def _close(self, subject: str, state: DetectorState, wall: float) -> list[Event]:
        data = state.data
        window = self.options.window
        end = data["start"] + window
        attrs = data.get("attrs") or {}
        suppressed: dict[str, int] = data.get("suppressed") or {}
        stamp = datetime.fromtimestamp(end, UTC)
        events: list[Event] = []
        if suppressed:
            fields: dict[str, Any] = {
                "suppressed": sum(suppressed.values()), "by_type": dict(suppressed),
                "window_s": window, "max_posts": self.options.max_posts}
            if data.get("by_severity"):
                fields["by_severity"] = dict(data["by_severity"])
            if data.get("weights"):
                fields["transitions"] = dict(data["weights"])
            events.append(Event.create(
                type="flood.digest", source=self.source, subject=subject,
                position=f"flood:{data['start']:.3f}", occurred_at=stamp,
                severity=Severity(max(data["severity"], int(Severity.INFO))),
                fields=fields, attrs=attrs))
            # the next window must show whether it stays calm: open it now, empty, so the
            # tick closes it (with a calm post) even if the subject says nothing more
            state.replace({**_carried(data), "start": end, "posted": {}, "suppressed": {},
                           "by_severity": {}, "weights": {}, "severity": 0, "flooding": True,
                           "opened": wall, "open": True, "attrs": attrs})
            return events
        if data.get("flooding"):
            events.append(Event.create(
                type="flood.calm", source=self.source, subject=subject,
                position=f"flood-calm:{data['start']:.3f}", occurred_at=stamp,
                severity=Severity.INFO, fields={"window_s": window}, attrs=attrs))
        state.replace({**_carried(data), "start": data["start"], "open": False,
                       "flooding": False})
        return events


def _is_open(data: dict[str, Any]) -> bool:
    """Whether the state holds an open window (states written before 2026-12 say
    ``closed`` instead of ``open``)."""
    if not data or "start" not in data:
        return False
    return bool(data.get("open", not data.get("closed")))


def _carried(data: dict[str, Any]) -> dict[str, Any]:
    """What a subject's state keeps from one window to the next: the folded ids."""
    return {key: data[key] for key in _CARRIED if data.get(key)}


def _spent(data: dict[str, Any], level: int) -> int:
    """How many posts at least as severe as ``level`` went out in the open window (a window
    opened before severity-aware flood control counted all its posts as ``count``: those
    count as info, so its warnings still have their budget)."""
    posted: dict[str, int] = data.get("posted") or {}
    spent = sum(n for key, n in posted.items() if int(key) >= level)
    if level <= int(Severity.INFO):
        spent += int(data.get("count") or 0)
    return spent


def _was_folded(data: dict[str, Any], ref: str) -> bool:
    return any(ref in ids for ids in (data.get("folded") or {}).values())


def _short(event_id: str) -> str:
    return event_id[:ID_CHARS]


def _stream(event: Event) -> str | None:
    if "stream" in event.fields:
        return str(event.fields["stream"])
    found = transition(event)
    return found.stream if found is not None else None


def _weight(event: Event) -> int:
    """How many raw state transitions an event stands for (a folded post: several)."""
    value = event.fields.get("transitions")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _digest(e: Event) -> str:
    f = e.fields
    kinds = ", ".join(f"{n} {t.split('.')[-1].replace('_', ' ')}"
                      for t, n in sorted(f["by_type"].items(), key=lambda kv: -kv[1]))
    # folded warnings and criticals are named: the reader must know a fault is among them
    # (they fold only once max_posts as severe went out in the window)
    grave = ", ".join(f"{n} {label}" for label, n in sorted(
        (f.get("by_severity") or {}).items(),
        key=lambda kv: -int(Severity.parse(kv[0]))) if Severity.parse(label) >= Severity.WARNING)
    noun = "post" if f["suppressed"] == 1 else "posts"
    return (f"{e.subject}: {f['suppressed']} more {noun} in "
            f"{phrasing.duration(f['window_s'])} not shown ({kinds}"
            f"{'; ' + grave if grave else ''})")


def _calm(e: Event) -> str:
    return f"{e.subject}: calm again, every post shown from now on"


#: flood control's own wording; the host registers it by reference (``floorstream.plugins``)
FLOOD_PHRASES: dict[str, Phrase] = {"flood.digest": _digest, "flood.calm": _calm}


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    """Flood control is a core stage, registered like a plugin so its wording is too."""
    for name, phrase in FLOOD_PHRASES.items():
        phrases.add(phrase, name=name)
    for name, phrase in PHRASES.items():  # settling and flapping: the same core stage family
        phrases.add(phrase, name=name)
