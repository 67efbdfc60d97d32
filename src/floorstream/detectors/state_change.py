"""``state_change``: one event when a state field takes a new value ("Press 7 stopped").

A sensor repeating ``RUNNING`` ten times a second yields nothing; only a different value does.
Leaving the ``normal`` states remembers when, so the return says "running again after 42 min"
and threads to the post that announced the stop.

The ``reason`` is the last one reported since the previous transition, not only one in the
same message: a Sparkplug or OPC UA device reports by exception, so "Holding, Jam at infeed"
then "Held" (the reason unchanged, not sent again) is held because of the jam. A return to a
``normal`` state takes only a reason of its own message.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from floorstream.model import Change, Event, Severity
from floorstream.plugin import (
    Detector,
    DetectorOptions,
    DetectorState,
    SeverityName,
    field_keys,
    lookup,
)


class StateChangeOptions(DetectorOptions):
    field: str = Field(description="payload field holding the state (dotted path allowed)")
    normal: list[str] = Field(default_factory=list,
                              description="states that mean all is well (e.g. RUNNING)")
    severity: dict[str, SeverityName] = Field(
        default_factory=dict,
        description="state → severity of entering it (info, notice, warning, critical)")
    default_severity: SeverityName = "notice"
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="state → how people call it (STOPPED → stopped)")
    reason: str | None = Field(default=None,
                               description="payload field saying why (a PackML stop reason)")

    @field_validator("normal", mode="before")
    @classmethod
    def _states_as_text(cls, value: Any) -> Any:
        """PackML states are numbers (6 Execute, 11 Held): ``normal: [6]`` means the state
        "6", as the detector compares states as text."""
        if isinstance(value, list):
            return [_text(v) for v in value]
        return value

    @field_validator("labels", "severity", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        """``labels: {6: execute}`` (YAML reads the key as a number) names the state "6"."""
        if isinstance(value, dict):
            return {_text(k): v for k, v in value.items()}
        return value


def _text(value: Any) -> Any:
    """A number as the state text it is compared with (6 → "6"); anything else as is."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class StateChange(Detector):
    name: ClassVar[str] = "state_change"
    options_model: ClassVar[type[DetectorOptions]] = StateChangeOptions

    def __init__(self, options: DetectorOptions, source: str) -> None:
        super().__init__(options, source)
        assert isinstance(options, StateChangeOptions)
        self.opts = options
        self._severity = {k: Severity.parse(v) for k, v in options.severity.items()}
        self._default = Severity.parse(options.default_severity)

    @property
    def key(self) -> str:
        return f"state_change:{self.opts.field}"

    def reads(self) -> frozenset[str]:
        """The state field and the reason field (Detector.reads)."""
        reason = field_keys(self.opts.reason) if self.opts.reason else frozenset()
        return field_keys(self.opts.field) | reason

    def on_change(self, change: Change, state: DetectorState) -> list[Event]:
        value = lookup(change.data, self.opts.field)
        reason = self._reported_reason(change, state)
        if value is None:
            return []
        after = str(value)
        data = state.data
        at = change.when.timestamp()
        if at < data.get("at", at):
            # a reading older than the state it would replace arrived late (out of order): it
            # cannot be the current state, so the newer state stands; but a state nobody was
            # told of is a real transition, so it is posted as what it is, a past state
            # reported late, never as the current one (and never dropped silently)
            state.update(late=data.get("late", 0) + 1)
            current = data.get("state")
            if current is None or after == current:
                return []
            late_fields: dict[str, Any] = {
                "field": self.opts.field, "state": after, "current": current,
                "state_label": self.opts.labels.get(after, after.lower()),
                "current_label": self.opts.labels.get(current, str(current).lower()),
                "current_since": data.get("since"), "late_s": data["at"] - at,
            }
            return [self.event(change, "machine.state_reported_late",
                               self._severity.get(after, self._default), late_fields,
                               position=f"{change.position}#{self.key}")]
        before = data.get("state")
        if before == after:
            return []
        if before is None:  # first sight: remember silently, there is no "before" to report
            state.update(state=after, since=change.when.isoformat(), at=at, left_normal=None)
            return []
        severity = self._severity.get(after, self._default)
        normal = self.opts.normal
        fields: dict[str, Any] = {
            "field": self.opts.field,
            "before": before,
            "after": after,
            "before_label": self.opts.labels.get(before, before.lower()),
            "after_label": self.opts.labels.get(after, after.lower()),
        }
        if reason not in (None, "") and (
                after not in normal or lookup(change.data, self.opts.reason or "") is not None):
            fields["reason"] = reason  # (a stop's reason, carried, never explains a return)
        clears = None
        left_normal = data.get("left_normal")
        if normal and after in normal and left_normal:
            fields["duration_s"] = (change.when.timestamp() - left_normal["at"])
            clears = left_normal["event"]
            severity = Severity.INFO if after not in self._severity else severity
        event = self.event(change, "machine.state_changed", severity, fields,
                           position=f"{change.position}#{self.key}", clears=clears)
        if normal and before in normal and after not in normal:
            left_normal = {"at": change.when.timestamp(), "event": event.id}
        elif normal and after in normal:
            left_normal = None
        state.update(state=after, since=change.when.isoformat(), at=at, left_normal=left_normal)
        return [event]

    def _reported_reason(self, change: Change, state: DetectorState) -> str | None:
        """The reason this change reports, else the last one reported since the previous
        transition (a device reporting by exception does not send it again); remembered."""
        if self.opts.reason is None:
            return None
        why = lookup(change.data, self.opts.reason)
        at = change.when.timestamp()
        kept, kept_at = state.data.get("reason"), state.data.get("reason_at")
        last = state.data.get("at", at)
        if why is not None:
            # written only when it says something new (a JSON machine repeats it each time)
            if str(why) != kept or kept_at is None or kept_at < last:
                state.update(reason=str(why), reason_at=at)
            return str(why)
        if kept is None or kept_at is None or kept_at < last:
            return None  # none, or reported before the last transition: another story
        return str(kept)
