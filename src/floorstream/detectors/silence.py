"""``silence``: no data from a subject for a while, and its return.

Wall-clock based (it is about *now* not hearing anything). The subject list and each one's last
position are persisted, so a daemon restarted during an outage still notices who stays silent.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from floorstream.model import Change, Event, Severity, utcnow
from floorstream.plugin import Detector, DetectorOptions, DetectorState, Duration, SeverityName


class SilenceOptions(DetectorOptions):
    after: Duration = Field(gt=0, description="silent this long → offline post")
    severity: SeverityName = "warning"


class Silence(Detector):
    name: ClassVar[str] = "silence"
    options_model: ClassVar[type[DetectorOptions]] = SilenceOptions
    ticks: ClassVar[bool] = True

    def __init__(self, options: DetectorOptions, source: str) -> None:
        super().__init__(options, source)
        assert isinstance(options, SilenceOptions)
        self.after = options.after
        self.severity = Severity.parse(options.severity)

    def on_change(self, change: Change, state: DetectorState) -> list[Event]:
        data = state.data
        seen = change.observed_at.timestamp()
        events: list[Event] = []
        if data.get("silent"):
            fields = {"silent_s": seen - data["last_seen"]}
            events.append(self.event(change, "machine.online", Severity.INFO, fields,
                                     position=f"{change.position}#{self.key}",
                                     clears=data.get("event")))
            state.replace({"last_seen": seen, "position": change.position,
                           "attrs": change.attrs, "silent": False})
        elif "last_seen" not in data or seen - data.get("saved", 0.0) > self.after / 2:
            # persist now and then, not on every reading: enough to survive a restart
            state.replace({"last_seen": seen, "saved": seen, "position": change.position,
                           "attrs": change.attrs, "silent": False})
        else:
            data["last_seen"] = seen
            data["position"] = change.position
        return events

    def on_tick(self, now: datetime, subject: str, state: DetectorState) -> list[Event]:
        data = state.data
        if data.get("silent") or "last_seen" not in data:
            return []
        quiet = now.timestamp() - data["last_seen"]
        if quiet < self.after:
            return []
        event = Event.create(
            type="machine.offline", source=self.source, subject=subject,
            position=f"{data['position']}#{self.key}:silent", occurred_at=utcnow(),
            severity=self.severity, fields={"silent_s": quiet, "after_s": self.after},
            attrs=data.get("attrs") or {},
        )
        state.update(silent=True, event=event.id)
        return [event]
