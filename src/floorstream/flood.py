"""Flood control: at most ``max_posts`` posts per subject per window; the rest become a digest.

A machine flapping between two states, or a feed replaying a day of exceptions, must not bury
a team's feed. Within a window the first ``max_posts`` events pass; the others are counted by
type and folded into one ``flood.digest`` event when the window closes, followed by one
``flood.calm`` event once a whole window passes without suppression.

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


class FloodControl:
    """Decides, event by event, what passes; persisted state per (source, subject)."""

    name: ClassVar[str] = "flood"
    key: ClassVar[str] = "flood"

    def __init__(self, options: FloodOptions, source: str) -> None:
        self.options = options
        self.source = source

    def admit(self, event: Event, state: DetectorState,
              now: datetime | None = None) -> list[Event]:
        """The events to post in place of ``event``: itself, nothing, or a digest/calm first.

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
            floor = data["start"] + window if data else None
            start = at - (at % window)
            if floor is not None and start < floor:
                start = floor  # a late event: counted in a window after the closed one
            state.replace({"start": start, "count": 0, "suppressed": {}, "weights": {},
                           "severity": 0, "flooding": bool(data.get("flooding")),
                           "opened": wall, "open": True, "attrs": event.attrs})
            data = state.data
        data["count"] += 1
        state.dirty = True
        if data["count"] <= self.options.max_posts:
            out.append(event)
            return out
        data["suppressed"][event.type] = data["suppressed"].get(event.type, 0) + 1
        stream = _stream(event)
        if stream is not None:
            weights = data.setdefault("weights", {})
            weights[stream] = weights.get(stream, 0) + _weight(event)
        data["severity"] = max(data["severity"], int(event.severity))
        data["flooding"] = True
        data["attrs"] = event.attrs
        return out

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
            if data.get("weights"):
                fields["transitions"] = dict(data["weights"])
            events.append(Event.create(
                type="flood.digest", source=self.source, subject=subject,
                position=f"flood:{data['start']:.3f}", occurred_at=stamp,
                severity=Severity(max(data["severity"], int(Severity.INFO))),
                fields=fields, attrs=attrs))
            # the next window must show whether it stays calm: open it now, empty, so the
            # tick closes it (with a calm post) even if the subject says nothing more
            state.replace({"start": end, "count": 0, "suppressed": {}, "weights": {},
                           "severity": 0, "flooding": True, "opened": wall, "open": True,
                           "attrs": attrs})
            return events
        if data.get("flooding"):
            events.append(Event.create(
                type="flood.calm", source=self.source, subject=subject,
                position=f"flood-calm:{data['start']:.3f}", occurred_at=stamp,
                severity=Severity.INFO, fields={"window_s": window}, attrs=attrs))
        state.replace({"start": data["start"], "open": False, "flooding": False})
        return events


def _is_open(data: dict[str, Any]) -> bool:
    """Whether the state holds an open window (states written before 2026-12 say
    ``closed`` instead of ``open``)."""
    if not data or "start" not in data:
        return False
    return bool(data.get("open", not data.get("closed")))


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
    noun = "post" if f["suppressed"] == 1 else "posts"
    return (f"{e.subject}: {f['suppressed']} more {noun} in "
            f"{phrasing.duration(f['window_s'])} not shown ({kinds})")


def _calm(e: Event) -> str:
    return f"{e.subject}: calm again, every post shown from now on"


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    """Flood control is a core stage, registered like a plugin so its wording is too."""
    phrases.add(_digest, name="flood.digest")
    phrases.add(_calm, name="flood.calm")
    for name, phrase in PHRASES.items():  # settling and flapping: the same core stage family
        phrases.add(phrase, name=name)
