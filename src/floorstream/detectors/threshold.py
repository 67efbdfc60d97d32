"""``threshold``: a numeric field beyond a limit, with hysteresis and minimum durations.

A value hovering around the limit must not produce a post per reading: the alarm raises above
``above`` (after staying there ``for`` seconds) and clears only below ``clear_below`` (after
``clear_for`` seconds). Between the two levels nothing happens, whatever the value does. Time is
the changes' own time (``occurred_at``), so a replay decides exactly as the first run did.

States: normal → pending → raised → clearing → normal.

A standing alarm never hides a worse state: ``levels`` adds levels beyond the limit (warning
at 85, ``levels: {critical: 90}``), and a raised alarm that reaches a higher level, or a new
peak ``step`` beyond what was last posted, gets an update post in the alarm's thread
(``metric.limit_escalated``); ``remind`` posts ``metric.limit_standing`` each time the alarm
has stood that much longer. All of it on the changes' own time, like the rest.

A reminder cannot wait for a reading: a machine that stopped sending while its alarm stands is
exactly the one to remind people of. With ``remind`` the detector also ticks: the alarm has
stood for the event time from its raise to the last reading plus the wall time since that
reading arrived, and each ``remind`` of it is one reminder, stamped with the last reading's
event time (never the wall clock: it would open event-time windows far from the machine's own
time) and saying when that was ("still above the 85 °C limit since 08:14, 45 min, no reading
since 08:20"). The schedule (``reminded``) is detector state, committed with the reminder, and
a reminder's position is the alarm's id and its number, so whichever path finds reminder *n*
first — a reading or a tick, before or after a restart — makes the same post, once. A daemon
that was down for an hour posts one reminder for the time it missed, not four.

A value holds until the next reading says otherwise. Sparkplug, OPC UA and MTConnect report
by exception: a temperature that went to 88 °C and stays there sends nothing more, so ``for``
cannot wait for a reading to say "still beyond". With ``for`` the detector ticks too: a
pending value raises once it has been beyond for ``for`` (the event time from its first
reading to the last, plus the wall time since, counted from the daemon's start at the
earliest: a restart's backlog decides first), stamped with the last reading's time; and a
reading that comes back under the limit after the pending value held long enough raises the
alarm it missed before clearing it. Either path raises at the same position (the reading that
started the pending period), so the alarm is posted once. ``hold: false`` keeps the older
rule, only readings beyond the limit count (a periodic stream whose pauses mean nothing is
known).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import Field, model_validator

from floorstream.model import Change, Event, Severity
from floorstream.plugin import (
    DecodeError,
    Detector,
    DetectorOptions,
    DetectorState,
    Duration,
    SeverityName,
    described,
    field_keys,
    lookup,
)


class ThresholdOptions(DetectorOptions):
    field: str = Field(description="numeric payload field (dotted path allowed)")
    above: float | None = Field(default=None, description="raise when the value exceeds this")
    below: float | None = Field(default=None, description="raise when the value falls under this")
    clear_below: float | None = Field(default=None,
                                      description="with above: clear only under this level")
    clear_above: float | None = Field(default=None,
                                      description="with below: clear only over this level")
    for_: Duration = Field(default=0.0, alias="for",
                           description="the value must stay beyond the limit this long")
    clear_for: Duration = Field(default=0.0,
                                description="the value must stay clear this long to clear")
    unit: str = Field(default="", description="of the values, as shown in posts (default: "
                                              "the unit the source describes, e.g. a "
                                              "Sparkplug birth's engUnit)")
    label: str | None = Field(default=None, description="what people call the metric "
                                                        "(default: the source's name for it)")
    severity: SeverityName = "warning"
    levels: dict[SeverityName, float] = Field(
        default_factory=dict,
        description="more levels beyond the limit, severity → value (e.g. {critical: 90})")
    step: float | None = Field(
        default=None, gt=0,
        description="a standing alarm's new peak this far beyond the last post is posted "
                    "(default: the hysteresis band, else 5 % of the limit)")
    remind: Duration | None = Field(
        default=None, gt=0, description="post a reminder each time the alarm stood this long")
    hold: bool = Field(
        default=True,
        description="a value holds until the next reading (report by exception: Sparkplug, "
                    "OPC UA, MTConnect): 'for' is met by time passing, not only by readings "
                    "beyond the limit; false: only readings count (a stream whose pauses "
                    "mean nothing is known)")

    @model_validator(mode="after")
    def _levels_beyond_the_limit(self) -> ThresholdOptions:
        limit = self.above if self.above is not None else self.below
        for name, value in self.levels.items():
            if limit is not None and ((self.above is not None and value <= limit)
                                      or (self.below is not None and value >= limit)):
                side = "above" if self.above is not None else "below"
                raise ValueError(f"level {name} ({value:g}) must be {side} the limit "
                                 f"({limit:g})")
        return self

    @model_validator(mode="after")
    def _one_direction(self) -> ThresholdOptions:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        if self.above is not None:
            if self.clear_above is not None:
                raise ValueError("'clear_above' goes with 'below', not with 'above'")
            if self.clear_below is not None and self.clear_below > self.above:
                raise ValueError("'clear_below' must not be greater than 'above'")
        if self.below is not None:
            if self.clear_below is not None:
                raise ValueError("'clear_below' goes with 'above', not with 'below'")
            if self.clear_above is not None and self.clear_above < self.below:
                raise ValueError("'clear_above' must not be less than 'below'")
        return self


def _number(field: str, raw: Any) -> float:
    """The reading as a finite float. Booleans, NaN and infinities are refused: they compare
    as nonsense (NaN is never beyond nor clear) and cannot be stored as JSON state."""
    value: float | None = None
    if not isinstance(raw, bool):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = None
    if value is None or not math.isfinite(value):
        raise DecodeError(f"field {field!r} should be a finite number, got {raw!r}")
    return value


class Threshold(Detector):
    name: ClassVar[str] = "threshold"
    options_model: ClassVar[type[DetectorOptions]] = ThresholdOptions

    def __init__(self, options: DetectorOptions, source: str) -> None:
        super().__init__(options, source)
        assert isinstance(options, ThresholdOptions)
        o = self.opts = options
        self.upward = o.above is not None
        self.limit: float = o.above if o.above is not None else o.below  # type: ignore[assignment]
        if self.upward:
            self.clear_level = o.clear_below if o.clear_below is not None else self.limit
        else:
            self.clear_level = o.clear_above if o.clear_above is not None else self.limit
        self.severity = Severity.parse(o.severity)
        self.label = o.label or o.field.replace("_", " ").replace(".", " ")
        self._key = f"threshold:{o.field}:{'above' if self.upward else 'below'}:{self.limit:g}"
        #: (value, severity) from the base limit outwards
        self.levels = sorted([(self.limit, self.severity), *(
            (v, Severity.parse(k)) for k, v in o.levels.items())],
            key=lambda lv: lv[0] if self.upward else -lv[0])
        band = abs(self.limit - self.clear_level)
        self.step = o.step if o.step is not None else (band or abs(self.limit) * 0.05 or 1.0)
        # ticks only with reminders or a minimum duration: a tick walks every subject's
        # state, and a threshold on a million ERP rows must not cost that for nothing (the
        # class default stays False)
        self.ticks = bool(o.remind or (o.hold and o.for_ > 0))  # type: ignore[misc]
        #: this process's first tick: a pending value's wall-clock wait counts from here at
        #: the earliest, so the backlog a restart finds (the broker resends what was not
        #: acked) decides before the time the daemon was down does
        self.started: float | None = None
        # a source that describes the field in another unit is told at its birth (logged)
        described.expect_unit(source, o.field, o.unit)

    @property
    def key(self) -> str:
        return self._key

    def reads(self) -> frozenset[str]:
        """The one numeric field (Detector.reads)."""
        return field_keys(self.opts.field)

    def _beyond(self, value: float) -> bool:
        return value > self.limit if self.upward else value < self.limit

    def _clear(self, value: float) -> bool:
        return value < self.clear_level if self.upward else value > self.clear_level

    def on_change(self, change: Change, state: DetectorState) -> list[Event]:
        raw = lookup(change.data, self.opts.field)
        if raw is None:
            return []
        value = _number(self.opts.field, raw)
        now = change.when.timestamp()
        data = state.data
        status = data.get("status", "normal")
        if status == "normal":
            if self._beyond(value):
                if self.opts.for_ <= 0:
                    return [self._raise(change, value, now, now, state)]
                state.replace({"status": "pending", "since": now, "peak": value,
                               "value": value, "from": change.position, "last_at": now,
                               "seen": change.observed_at.timestamp(),
                               "attrs": change.attrs})
            return []
        if status == "pending":
            if not self._beyond(value):
                if not self.opts.hold or now - data["since"] < self.opts.for_:
                    state.replace({"status": "normal"})
                    return []
                # the last value held until this reading (report by exception): it was
                # beyond long enough, an alarm no reading confirmed in time; raise, then
                # take this reading as the raised alarm's next
                raised = self._raise_held(data, now - data["since"], state,
                                          change.subject, change.source,
                                          datetime.fromtimestamp(now, UTC))
                return [raised, *self.on_change(change, state)]
            peak = self._peak(data["peak"], value)
            if now - data["since"] >= self.opts.for_:
                return [self._raise(change, value, data["since"], now, state, peak)]
            state.update_lazily(peak=peak, value=value, last_at=now,
                                seen=change.observed_at.timestamp(), attrs=change.attrs)
            return []
        # raised or clearing
        peak = self._peak(data["peak"], value)
        if status == "raised":
            if self._clear(value):
                if self.opts.clear_for <= 0:
                    return [self._cleared(change, value, now, state, peak)]
                state.update(status="clearing", clear_since=now, peak=peak)
                return []
            if peak != data["peak"]:
                state.update(peak=peak)
            if self.ticks:
                # what a reminder on the wall clock says about the last reading; lazily: a
                # crash loses at most the last second of it (the pipeline's timer commits it)
                state.update_lazily(last_at=now, seen=change.observed_at.timestamp(),
                                    value=value, attrs=change.attrs)
            return self._standing(change, value, now, state)
        # clearing
        if not self._clear(value):
            state.update(status="raised", clear_since=None, peak=peak)
            if self.ticks:
                state.update(last_at=now, seen=change.observed_at.timestamp(), value=value,
                             attrs=change.attrs)
            return []
        if now - data["clear_since"] >= self.opts.clear_for:
            return [self._cleared(change, value, now, state, peak)]
        return []

    def _level(self, value: float) -> tuple[float, Severity]:
        """The outermost level ``value`` is beyond (the base limit at least)."""
        found = self.levels[0]
        for level in self.levels[1:]:
            if (value > level[0]) if self.upward else (value < level[0]):
                found = level
        return found

    def _standing(self, change: Change, value: float, now: float,
                  state: DetectorState) -> list[Event]:
        """A raised alarm that got worse (a higher level, a new peak ``step`` beyond the last
        post) or has stood another ``remind``: an update in the alarm's thread."""
        data = state.data
        events: list[Event] = []
        limit, severity = self._level(value)
        level = Severity(data.get("level", int(self.severity)))
        reported = data.get("reported", data["peak"])
        worse = (value - reported) if self.upward else (reported - value)
        if severity > level or worse >= self.step - 1e-9:
            kind = "level" if severity > level else "peak"
            fields = self._fields(change.subject, value, limit)
            self._earlier_unit(fields, data)
            fields.update(kind=kind, level=max(severity, level).label, previous=reported,
                          duration_s=now - data["since"])
            events.append(self.event(
                change, "metric.limit_escalated", max(severity, level), fields,
                position=f"{change.position}#{self.key}:escalated", relation="update",
                refers_to=data.get("event")))
            state.update(level=int(max(severity, level)), reported=value)
        remind = self.opts.remind
        if remind and now - data["since"] >= remind * (data.get("reminded", 0) + 1):
            count = int((now - data["since"]) // remind)
            severity, fields, position = self._reminder(change.subject, data, count, value,
                                                        now - data["since"])
            events.append(self.event(change, "metric.limit_standing", severity, fields,
                                     position=position, relation="update",
                                     refers_to=data.get("event")))
            state.update(reminded=count)
        return events

    def on_tick(self, now: datetime, subject: str, state: DetectorState) -> list[Event]:
        """A standing alarm's reminder when no reading brings it: the alarm stood from its
        raise to the last reading (event time), and since that reading (wall time). A value
        pending for ``for`` raises the same way: no reading is needed to say it stayed."""
        remind = self.opts.remind
        data = state.data
        if self.started is None:
            self.started = now.timestamp()
        if data.get("status") == "pending" and "from" in data and self.opts.hold:
            quiet = max(0.0, now.timestamp() - max(data["seen"], self.started))
            stood = data["last_at"] - data["since"] + quiet
            if stood < self.opts.for_:
                return []
            return [self._raise_held(data, stood, state, subject, self.source,
                                     datetime.fromtimestamp(data["last_at"], UTC))]
        if not remind or data.get("status") != "raised" or "seen" not in data:
            return []  # (a state raised before 2026-12 has no "seen": its next reading has)
        quiet = max(0.0, now.timestamp() - data["seen"])
        stood = data["last_at"] - data["since"] + quiet
        count = int(stood // remind)
        if count <= data.get("reminded", 0):
            return []
        last = datetime.fromtimestamp(data["last_at"], UTC)
        severity, fields, position = self._reminder(subject, data, count, data["value"], stood)
        fields.update(last_at=last.isoformat(), quiet_s=quiet)
        state.update(reminded=count)
        return [Event.create(
            type="metric.limit_standing", source=self.source, subject=subject,
            position=position, occurred_at=last, severity=severity, fields=fields,
            attrs=data.get("attrs") or {}, relation="update", refers_to=data.get("event"))]

    def _reminder(self, subject: str, data: dict[str, Any], count: int, value: float,
                  stood: float) -> tuple[Severity, dict[str, Any], str]:
        """Severity, fields and position of reminder number ``count`` of the alarm in
        ``data``: the position is the alarm's id and the number, whichever path (a reading,
        a tick) finds it first."""
        level = Severity(data.get("level", int(self.severity)))
        fields = self._fields(subject, value, self.limit)
        self._earlier_unit(fields, data)
        fields.update(peak=data["peak"], duration_s=stood, level=level.label, reminder=count,
                      since=datetime.fromtimestamp(data["since"], UTC).isoformat())
        return level, fields, f"{data.get('event')}#{self.key}:remind{count}"

    def _peak(self, peak: float, value: float) -> float:
        return max(peak, value) if self.upward else min(peak, value)

    def _fields(self, subject: str, value: float, limit: float) -> dict[str, Any]:
        unit, label = self._shown(subject)
        return {"field": self.opts.field, "label": label, "value": value, "limit": limit,
                "unit": unit, "direction": "above" if self.upward else "below"}

    @staticmethod
    def _earlier_unit(fields: dict[str, Any], data: dict[str, Any]) -> None:
        """The alarm was raised in another unit (a Sparkplug rebirth changed the metric's
        ``engUnit``): its peak and earlier values are said in that unit (``peak_unit``),
        never converted, never relabelled."""
        unit = data.get("unit")
        if unit is not None and unit != fields["unit"]:
            fields["peak_unit"] = unit

    def _shown(self, subject: str) -> tuple[str, str]:
        """The unit and label of the field in a post: the config's, else what the source
        described (a Sparkplug birth's ``engUnit`` and ``displayName``, or the last element
        of the metric's path), else none and the field's name. Asked when an event is made,
        never per reading. A configured unit that differs from the source's is kept (never
        a silent conversion; the source's description logs it, :func:`described.expect_unit`)."""
        o = self.opts
        info = described.field_info(self.source, subject, o.field)
        if info is None:
            return o.unit, self.label
        return o.unit or info.unit, o.label or info.label or self.label

    def _raise(self, change: Change, value: float, since: float, now: float,
               state: DetectorState, peak: float | None = None) -> Event:
        limit, severity = self._level(value)
        fields = self._fields(change.subject, value, limit)
        fields["duration_s"] = now - since
        if severity != self.severity:
            fields["level"] = severity.label
        event = self.event(change, "metric.limit_exceeded", severity, fields,
                           position=f"{change.position}#{self.key}")
        state.replace({"status": "raised", "since": now, "event": event.id,
                       "peak": value if peak is None else self._peak(peak, value),
                       "level": int(severity), "reported": value,
                       **({"unit": fields["unit"]} if fields["unit"] else {})})
        if self.ticks:  # what a reminder on the wall clock needs (see on_tick)
            state.update(last_at=now, seen=change.observed_at.timestamp(), value=value,
                         attrs=change.attrs)
        return event

    def _raise_held(self, data: dict[str, Any], stood: float, state: DetectorState,
                    subject: str, source: str, at: datetime) -> Event:
        """The alarm of a value that stayed beyond for ``for`` with no reading to say so (a
        tick, or the reading that ends it): at the position of the reading that started the
        pending period, whichever path finds it first."""
        value = float(data["value"])
        limit, severity = self._level(data["peak"])
        fields = self._fields(subject, value, limit)
        fields["duration_s"] = stood
        if severity != self.severity:
            fields["level"] = severity.label
        event = Event.create(
            type="metric.limit_exceeded", source=source, subject=subject,
            position=f"{data['from']}#{self.key}:held", occurred_at=at, severity=severity,
            fields=fields, attrs=data.get("attrs") or {})
        # raised when it had held for ``for`` (event time), whenever that was noticed
        state.replace({"status": "raised", "since": data["since"] + self.opts.for_,
                       "event": event.id,
                       "peak": data["peak"], "level": int(severity), "reported": value,
                       "last_at": data["last_at"], "seen": data["seen"], "value": value,
                       "attrs": data.get("attrs") or {},
                       **({"unit": fields["unit"]} if fields["unit"] else {})})
        return event

    def _cleared(self, change: Change, value: float, now: float, state: DetectorState,
                 peak: float) -> Event:
        fields = self._fields(change.subject, value, self.clear_level)
        fields["peak"] = peak
        self._earlier_unit(fields, state.data)
        fields["duration_s"] = now - state.data["since"]
        event = self.event(change, "metric.limit_cleared", Severity.INFO, fields,
                           position=f"{change.position}#{self.key}",
                           clears=state.data.get("event"))
        state.replace({"status": "normal"})
        return event
