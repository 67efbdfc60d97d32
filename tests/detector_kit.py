"""Helpers for the detector tests: build a detector from config-style options, make changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from floorstream.detectors.base import Detector, DetectorState
from floorstream.model import Change, Event

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def make(cls: type[Detector], source: str = "presses", **options: Any) -> Detector:
    """A detector built the way the config builds it (options validated by its model)."""
    return cls(cls.options_model.model_validate(options), source)


def change(data: dict[str, Any], *, at: float = 0.0, position: str | int = "1",
           subject: str = "press-07", kind: str = "telemetry",
           before: dict[str, Any] | None = None, source: str = "presses") -> Change:
    when = T0 + timedelta(seconds=at)
    return Change(source=source, subject=subject, kind=kind, position=str(position),
                  occurred_at=when, observed_at=when, data=data, before=before,
                  attrs={"area": "pressing"})


class Runner:
    """Feeds changes to one detector for one subject, round-tripping its state through JSON
    after every step exactly as the store would (so a non-JSON state fails the test)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.state = DetectorState()
        self.events: list[Event] = []

    def feed(self, data: dict[str, Any], at: float = 0.0, **kw: Any) -> list[Event]:
        kw.setdefault("position", len(self.events) * 1000 + int(at * 1000))
        found = self.detector.on_change(change(data, at=at, **kw), self.state)
        self._persist()
        self.events.extend(found)
        return found

    def tick(self, at: float, subject: str = "press-07") -> list[Event]:
        found = self.detector.on_tick(T0 + timedelta(seconds=at), subject, self.state)
        self._persist()
        self.events.extend(found)
        return found

    def _persist(self) -> None:
        restored = DetectorState(json.loads(json.dumps(self.state.data)))
        self.state = restored
