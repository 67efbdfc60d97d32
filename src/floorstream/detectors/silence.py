"""``silence``: no data from a subject for a while, and its return.

Wall-clock based (it is about *now* not hearing anything). The subject list and each one's last
position are persisted, so a daemon restarted during an outage still notices who stays silent.

Its posts carry the event-time gap, never the wall clock: the offline event happened at the
subject's last event time ("nothing received for 1 min 30 s, last data from 08:14"), so it
falls into the same event-time windows (settling, flap, flood control) as the subject's other
posts, whether the source is live, replayed faster than real time or months behind
(floorstream/timebase.py).

A Sparkplug edge node's session is alive while its devices talk: a node whose metrics are all
its devices' sends only its NBIRTH, and was called offline ``after`` it while its devices
spoke. A Change whose attrs name the Sparkplug ``group`` and ``node`` of another subject (a
device's message) is evidence of that node too (kept in memory: after a restart the devices'
next messages bring it back).

One post per fact: a source that posts a subject's death itself (an NDEATH, a DDEATH) tells
its detectors with a Change of kind :data:`OFFLINE_TOLD`; silence then takes the subject as
offline without a post of its own, and its next data as back without one (the birth's post
says so).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar, Final

from pydantic import Field

from floorstream.model import Change, Event, Severity
from floorstream.plugin import Detector, DetectorOptions, DetectorState, Duration, SeverityName

#: the kind of a Change by which a source says it posted the subject's death itself
OFFLINE_TOLD: Final = "presence.offline"


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
        #: Sparkplug node → when a message of one of its devices was last seen (wall clock)
        self._devices_heard: dict[str, float] = {}

    def reads(self) -> frozenset[str]:
        """No field: only that something came (Detector.reads) ..."""
        return frozenset()

    def presence_lag(self) -> float:
        """... heard of within a quarter of ``after`` (at most a second late), so a subject
        that speaks is never taken for silent (Detector.presence_lag)."""
        return min(1.0, self.after / 4)

    def on_change(self, change: Change, state: DetectorState) -> list[Event]:
        data = state.data
        seen = change.observed_at.timestamp()
        if change.kind == OFFLINE_TOLD:  # the source posted the death: offline, said once
            state.replace({**data, "last_seen": data.get("last_seen", seen),
                           "last_at": data.get("last_at", change.when.timestamp()),
                           "position": data.get("position", change.position),
                           "attrs": data.get("attrs", change.attrs),
                           "silent": True, "told": True})
            return []
        attrs = change.attrs
        node = attrs.get("node")
        if node is not None and node != change.subject and "group" in attrs:
            self._devices_heard[node] = seen  # a device's message: its node's session lives
        at = change.when.timestamp()
        events: list[Event] = []
        if data.get("told"):  # back after a death its source posted: the birth says so
            state.replace({"last_seen": seen, "last_at": at, "saved": seen,
                           "position": change.position, "attrs": change.attrs,
                           "silent": False})
        elif data.get("silent"):
            fields = {"silent_s": seen - data["last_seen"]}
            events.append(self.event(change, "machine.online", Severity.INFO, fields,
                                     position=f"{change.position}#{self.key}",
                                     clears=data.get("event")))
            state.replace({"last_seen": seen, "last_at": at, "position": change.position,
                           "attrs": change.attrs, "silent": False})
        elif "last_seen" not in data or seen - data.get("saved", 0.0) > self.after / 2:
            # persist now and then, not on every reading: enough to survive a restart
            state.replace({"last_seen": seen, "last_at": at, "saved": seen,
                           "position": change.position, "attrs": change.attrs, "silent": False})
        else:
            data["last_seen"] = seen
            data["last_at"] = at
            data["position"] = change.position
        return events

    def on_tick(self, now: datetime, subject: str, state: DetectorState) -> list[Event]:
        data = state.data
        if data.get("silent") or "last_seen" not in data:
            return []
        quiet = now.timestamp() - max(data["last_seen"],
                                      self._devices_heard.get(subject, 0.0))
        if quiet < self.after:
            return []
        # event time: the subject's last input (a state persisted before 2026-12 has only the
        # wall time it was seen, the best there is)
        since = datetime.fromtimestamp(data.get("last_at", data["last_seen"]), UTC)
        event = Event.create(
            type="machine.offline", source=self.source, subject=subject,
            position=f"{data['position']}#{self.key}:silent", occurred_at=since,
            severity=self.severity, attrs=data.get("attrs") or {},
            fields={"silent_s": quiet, "after_s": self.after, "since": since.isoformat()},
        )
        state.update(silent=True, event=event.id)
        return [event]
