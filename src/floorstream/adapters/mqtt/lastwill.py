"""MQTT last-will status topics → ``machine.offline`` / ``machine.online`` events.

A machine that registers a will (``plant/press/press-07/status`` = ``offline``) and publishes
``online`` after connecting tells the broker to announce its death. Status messages are usually
retained, so every (re)subscription delivers the current status again: only a *transition* is
posted. Which machines are offline is kept in the source's checkpoint, so a restarted daemon
does not announce a retained ``offline`` it already posted.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from floorstream.adapters.mqtt.config import LastWillConfig
from floorstream.adapters.mqtt.topics import MissingValue, Template, TopicFilter, lookup_path
from floorstream.model import Event, Severity, event_id

__all__ = ["LastWill"]


class LastWill:
    def __init__(self, config: LastWillConfig, source: str) -> None:
        self.config = config
        self.source = source
        self.filter = TopicFilter(config.topic)
        self.subject = Template(config.subject)
        self.offline_values = set(config.offline)
        self.online_values = set(config.online)
        self.offline: dict[str, list[Any]] = {}  # subject → [offline event id, since]

    def dump(self) -> dict[str, Any]:
        return dict(self.offline)

    def load(self, data: dict[str, Any]) -> None:
        self.offline = {k: list(v) for k, v in data.items()}

    def _status(self, payload: bytes) -> str | None:
        text = payload.decode("utf-8", "replace").strip()
        if self.config.field is None:
            return text
        try:
            value = lookup_path(json.loads(text), self.config.field)
        except (ValueError, MissingValue):
            return None
        return str(value).lower() if isinstance(value, bool) else str(value)

    def handle(self, levels: list[str], topic: str, payload: bytes, observed: datetime,
               attrs: dict[str, str]) -> Event | None:
        """The event for this status message, or None when it changes nothing."""
        status = self._status(payload)
        try:
            subject = self.subject.render(levels, topic, {})
        except MissingValue:
            return None
        stamp = f"{observed.timestamp():.6f}"
        if status in self.offline_values:
            if subject in self.offline:
                return None  # retained or repeated: already announced
            position = f"{topic}|will|{stamp}"
            self.offline[subject] = [event_id(self.source, subject, position, "machine.offline"),
                                     observed.timestamp()]
            return self._change(subject, position, observed, attrs, {
                "type": "machine.offline", "severity": self.config.severity,
                "fields": {"silent_s": 0, "reason": "last will", "status": status,
                           "summary": f"{subject} offline: connection lost ({status})"}})
        if status in self.online_values and subject in self.offline:
            offline_event, since = self.offline.pop(subject)
            return self._change(subject, f"{topic}|online|{stamp}", observed, attrs, {
                "type": "machine.online", "severity": "info", "clears": offline_event,
                "fields": {"silent_s": max(0.0, observed.timestamp() - since),
                           "status": status}})
        return None

    def _change(self, subject: str, position: str, observed: datetime, attrs: dict[str, str],
                data: dict[str, Any]) -> Event:
        return Event.create(type=data["type"], source=self.source, subject=subject,
                            position=position, occurred_at=observed,
                            severity=Severity.parse(data["severity"]), fields=data["fields"],
                            attrs=attrs, clears=data.get("clears"))
