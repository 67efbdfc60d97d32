"""Flood control: at most ``max_posts`` posts per subject per window; the rest become a digest.

A machine flapping between two states, or a feed replaying a day of exceptions, must not bury
a team's feed. Within a fixed window the first ``max_posts`` events pass; the others are
counted by type and folded into one ``flood.digest`` event when the window closes, followed by
one ``flood.calm`` event once a whole window passes without suppression. Windows use the
events' own time so a replay folds the same events into the same digests.

The once-a-second tick closes a window when a subject goes quiet. It runs on the wall clock,
while windows run on event time, which may be far behind (a backfill, a replayed history), so
the state remembers how far event time lags the wall clock at the last event and the tick
closes a window only once it is over in event time too. An event arriving in a window the tick
already closed (the source paused, then went on) reopens it rather than being lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from floorstream.model import Event, Severity, utcnow
from floorstream.plugin import DetectorState, FloodOptions, Phrase, Registry, hookimpl, phrasing


class FloodControl:
    """Decides, event by event, what passes; persisted state per (source, subject)."""

    name: ClassVar[str] = "flood"
    key: ClassVar[str] = "flood"

    def __init__(self, options: FloodOptions, source: str) -> None:
        self.options = options
        self.source = source

    def admit(self, event: Event, state: DetectorState,
              now: datetime | None = None) -> list[Event]:
        """The events to post in place of ``event``: itself, nothing, or a digest/calm first."""
        at = event.occurred_at.timestamp()
        out = self._close_window(event.subject, at, state, event.attrs)
        data = state.data
        if not data or at >= data["start"] + self.options.window:
            flooding = bool(data.get("flooding")) if data else False
            state.replace({"start": self._window_start(at), "count": 0, "suppressed": {},
                           "severity": 0, "flooding": flooding})
            data = state.data
        elif data.get("closed"):
            data["closed"] = False  # a late event in a window the tick closed: reopen it
        data["lag"] = (now or utcnow()).timestamp() - at
        data["count"] += 1
        state.dirty = True
        if data["count"] <= self.options.max_posts:
            out.append(event)
            return out
        data["suppressed"][event.type] = data["suppressed"].get(event.type, 0) + 1
        data["severity"] = max(data["severity"], int(event.severity))
        data["flooding"] = True
        data["attrs"] = event.attrs
        return out

    def tick(self, now: datetime, subject: str, state: DetectorState) -> list[Event]:
        """Close a window that ended with no further event, so the digest is not held back."""
        lag = float(state.data.get("lag", 0.0)) if state.data else 0.0
        return self._close_window(subject, now.timestamp() - max(lag, 0.0), state, None)

    def _window_start(self, at: float) -> float:
        return at - (at % self.options.window)

    def _close_window(self, subject: str, at: float, state: DetectorState,
                      attrs: dict[str, str] | None) -> list[Event]:
        data = state.data
        if not data or at < data["start"] + self.options.window or data.get("closed"):
            return []
        end = data["start"] + self.options.window
        attrs = data.get("attrs") or attrs or {}
        suppressed: dict[str, int] = data["suppressed"]
        events: list[Event] = []
        stamp = datetime.fromtimestamp(end, UTC)
        if suppressed:
            events.append(Event.create(
                type="flood.digest", source=self.source, subject=subject,
                position=f"flood:{data['start']:.3f}", occurred_at=stamp,
                severity=Severity(max(data["severity"], int(Severity.INFO))),
                fields={"suppressed": sum(suppressed.values()), "by_type": dict(suppressed),
                        "window_s": self.options.window, "max_posts": self.options.max_posts},
                attrs=attrs,
            ))
        elif data.get("flooding"):
            events.append(Event.create(
                type="flood.calm", source=self.source, subject=subject,
                position=f"flood-calm:{data['start']:.3f}", occurred_at=stamp,
                severity=Severity.INFO, fields={"window_s": self.options.window}, attrs=attrs,
            ))
            data["flooding"] = False
        data["closed"] = True
        data["suppressed"] = {}
        state.dirty = True
        if suppressed:
            # the next quiet window must be reported as calm; keep the flag for it
            state.replace({"start": end, "count": 0, "suppressed": {}, "severity": 0,
                           "flooding": True, "attrs": attrs, "lag": data.get("lag", 0.0)})
        return events


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
