"""Alarms & Conditions → posts: an alarm raised, acknowledged, cleared.

OPC UA sends a condition's whole state in every event (active, acked, severity, message), and
again on a ConditionRefresh. This book remembers the alarms it posted as open, so an event
that repeats a known state posts nothing, and turns *transitions* into events:

- inactive → active: ``alarm.raised`` (a new story; its thread is the condition);
- unacked → acked while open: ``alarm.acknowledged`` (an update of that story);
- active → inactive: ``alarm.cleared`` (its resolution).

The open alarms are the source's checkpoint, committed with the post that changed them, so a
daemon restarted while a press is in alarm neither posts it again nor forgets to clear it. On
every (re)connect the adapter asks for a ConditionRefresh: an open alarm the server no longer
reports at its end is cleared (it ended while floorstream was away), and an active one it had
not seen is raised once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from floorstream.plugin import Event, Severity

from .config import AlarmsConfig

__all__ = ["AlarmBook", "AlarmState"]


@dataclass
class AlarmState:
    """One open alarm, as the checkpoint keeps it."""

    event: str  # id of the alarm.raised event (what the ack and the clear refer to)
    since: str  # ISO time it became active
    subject: str
    message: str
    acked: bool
    severity: int


class AlarmBook:
    """The open alarms of one source and the events their notifications mean."""

    def __init__(self, source: str, config: AlarmsConfig, checkpoint: str | None = None,
                 attrs: dict[str, str] | None = None) -> None:
        self.source = source
        self.config = config
        self.attrs = attrs or {}
        self.open: dict[str, AlarmState] = {}
        self._seen: set[str] | None = None  # conditions reported during a refresh
        if checkpoint:
            self.open = _load(checkpoint)

    def checkpoint(self) -> str:
        return json.dumps({"v": 1, "alarms": {c: vars(s) for c, s in sorted(self.open.items())}},
                          separators=(",", ":"), sort_keys=True)

    def severity(self, opc: int) -> Severity:
        """OPC UA's 1–1000 scale on floorstream's four levels (thresholds configurable)."""
        c = self.config
        if opc >= c.critical:
            return Severity.CRITICAL
        if opc >= c.warning:
            return Severity.WARNING
        if opc >= c.notice:
            return Severity.NOTICE
        return Severity.INFO

    # -- a ConditionRefresh ------------------------------------------------------------

    def refresh_started(self) -> None:
        self._seen = set()

    def refresh_ended(self, now: datetime) -> list[Event]:
        """Open alarms the server did not report in the refresh ended while we were away."""
        seen, self._seen = self._seen, None
        if seen is None:
            return []  # an end without a start (a refresh another client asked for)
        return [self._clear(condition, now, reason="not reported by the server any more")
                for condition in sorted(set(self.open) - seen)]

    # -- one condition event -------------------------------------------------------------

    def handle(self, fields: dict[str, Any], now: datetime) -> list[Event]:
        """The events one condition notification means (often none: a repeat)."""
        condition = _text(fields.get("ConditionId")) or _condition_key(fields)
        if self._seen is not None:
            self._seen.add(condition)
        active = bool(fields.get("ActiveState/Id"))
        acked = bool(fields.get("AckedState/Id"))
        state = self.open.get(condition)
        if not active:
            return [self._clear(condition, now, fields=fields)] if state is not None else []
        if state is None:
            return [self._raise(condition, fields, now, acked)]
        if acked and not state.acked:
            state.acked = True
            if self.config.acknowledgements:
                return [self._event("alarm.acknowledged", condition, state, now, Severity.INFO,
                                    "update", {"acked": True})]
        return []

    # -- building events ---------------------------------------------------------------

    def _raise(self, condition: str, fields: dict[str, Any], now: datetime,
               acked: bool) -> Event:
        since = _time(fields.get("ActiveState/TransitionTime")) or _time(fields.get("Time")) \
            or now
        opc = int(fields.get("Severity") or 0)
        source_name = _text(fields.get("SourceName"))
        subject = self.config.subjects.get(source_name, source_name) or condition
        message = _text(fields.get("Message")) or _text(fields.get("ConditionName")) or condition
        position = f"{condition}|raised|{since.isoformat()}"
        event = Event.create(
            type="alarm.raised", source=self.source, subject=subject, position=position,
            occurred_at=since, severity=self.severity(opc), thread=condition,
            attrs=dict(self.attrs),
            fields={"condition": condition, "name": _text(fields.get("ConditionName")),
                    "message": message, "opc_severity": opc, "acked": acked, "active": True,
                    "event_type": _text(fields.get("EventType"))})
        self.open[condition] = AlarmState(event=event.id, since=since.isoformat(),
                                          subject=subject, message=message, acked=acked,
                                          severity=opc)
        return event

    def _clear(self, condition: str, now: datetime, fields: dict[str, Any] | None = None,
               reason: str | None = None) -> Event:
        state = self.open.pop(condition)
        when = (_time(fields.get("ActiveState/TransitionTime")) or _time(fields.get("Time"))
                if fields is not None else None) or now
        since = datetime.fromisoformat(state.since)
        extra: dict[str, Any] = {"duration_s": max(0.0, (when - since).total_seconds()),
                                 "active": False}
        if reason:
            extra["reason"] = reason
        return self._event("alarm.cleared", condition, state, when, Severity.INFO,
                           "resolution", extra)

    def _event(self, type: str, condition: str, state: AlarmState, when: datetime,
               severity: Severity, relation: str, extra: dict[str, Any]) -> Event:
        fields = {"condition": condition, "message": state.message,
                  "opc_severity": state.severity, "acked": state.acked, **extra}
        return Event.create(
            type=type, source=self.source, subject=state.subject,
            position=f"{condition}|{type.split('.')[1]}|{state.since}", occurred_at=when,
            severity=severity, thread=condition, attrs=dict(self.attrs), fields=fields,
            relation=relation,  # type: ignore[arg-type]  # one of the model's relations
            refers_to=state.event)


def _load(checkpoint: str) -> dict[str, AlarmState]:
    """The open alarms a checkpoint holds; one that cannot be read (written by another
    adapter under this source name) holds none, and the refresh tells what is open now."""
    try:
        data = json.loads(checkpoint)
        return {condition: AlarmState(**state)
                for condition, state in data.get("alarms", {}).items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _condition_key(fields: dict[str, Any]) -> str:
    return f"{_text(fields.get('SourceName'))}/{_text(fields.get('ConditionName'))}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = getattr(value, "Text", None)
    if text is not None or hasattr(value, "Locale"):
        return str(text or "")
    if hasattr(value, "to_string"):
        return str(value.to_string())
    return str(value)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if value.year < 1602:  # OPC UA's "no time" is 1601-01-01
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
