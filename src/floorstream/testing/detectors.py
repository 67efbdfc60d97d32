"""The detector test kit: build a detector as the config would, feed it, check its contract.

For a plugin's own tests::

    from floorstream.testing.detectors import DetectorConformance, Runner, make

    class TestMyDetector(DetectorConformance):
        detector = MyDetector
        options = {"field": "temp", "above": 85}
        readings = [{"temp": 70}, {"temp": 90}, {"temp": 60}]   # must lead to ≥ 1 event

    def test_my_phrase():
        runner = Runner(make(MyDetector, field="temp", above=85))
        (event,) = runner.feed({"temp": 90})
        assert phrase(event) == "press-07: temp 90, above the 85 limit"

:class:`Runner` round-trips the detector's state through JSON after every step, exactly as
the store does, so a state that would not survive a restart fails the test rather than the
plant's first restart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, ClassVar

import pytest

from floorstream.model import Change, Event
from floorstream.plugin import Detector, DetectorState

__all__ = ["T0", "DetectorConformance", "Runner", "change", "make", "phrase", "phrase_book"]

#: The time of a kit change at ``at=0``: a Monday 06:00 UTC, the start of a shift.
T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def make(cls: type[Detector], source: str = "presses", **options: Any) -> Detector:
    """A detector built the way the config builds it (options validated by its model)."""
    return cls(cls.options_model.model_validate(options), source)


def change(data: dict[str, Any], *, at: float = 0.0, position: str | int = "1",
           subject: str = "press-07", kind: str = "telemetry",
           before: dict[str, Any] | None = None, source: str = "presses",
           attrs: dict[str, str] | None = None) -> Change:
    """A change ``at`` seconds after :data:`T0` (source time and observation time alike)."""
    when = T0 + timedelta(seconds=at)
    return Change(source=source, subject=subject, kind=kind, position=str(position),
                  occurred_at=when, observed_at=when, data=data, before=before,
                  attrs={"area": "pressing"} if attrs is None else attrs)


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
        self.state = DetectorState(json.loads(json.dumps(self.state.data)))


@lru_cache(maxsize=1)
def phrase_book() -> dict[str, Any]:
    """Event type → default phrase, from every installed plugin's ``register_phrases``."""
    from floorstream.plugins import build_plugins  # the host's, so the kit sees every plugin

    return {entry.name: entry.item for entry in build_plugins().phrases}


def phrase(event: Event) -> str:
    """The line people would read for ``event`` with no template configured: the phrase
    book of every installed plugin (``register_phrases``), as the pipeline uses it."""
    from floorstream.render import default_summary

    return default_summary(event, phrase_book())


class DetectorConformance:
    """Checks every detector must pass; subclass it in a test module and set the attributes.

    ``readings`` are ``data`` dicts fed to one subject, one second apart or at ``times``
    (seconds after :data:`T0`, one per reading); together they must make the detector find at
    least one event, so the checks below are not passed vacuously. A detector with
    ``ticks = True`` (silence) gets ``on_tick`` every ``tick_interval`` seconds between the
    readings as well, as the pipeline ticks it, so events it finds on a tick count too::

        class TestSilence(DetectorConformance):
            detector = Silence
            options = {"after": 5}
            readings = [{"v": 1}, {"v": 2}]
            times = [0, 20]      # offline on the tick at 5 s, online again at 20 s
    """

    detector: ClassVar[type[Detector]]
    options: ClassVar[dict[str, Any]] = {}
    readings: ClassVar[Sequence[dict[str, Any]]] = ()
    #: when each reading arrives, in seconds after T0 (default: 0, 1, 2, …)
    times: ClassVar[Sequence[float] | None] = None
    #: seconds between two ``on_tick`` calls, for detectors with ``ticks = True``
    tick_interval: ClassVar[float] = 1.0

    def _run(self) -> list[Event]:
        runner = Runner(make(self.detector, **self.options))
        times = ([float(at) for at in self.times] if self.times is not None
                 else [float(index) for index in range(len(self.readings))])
        assert len(times) == len(self.readings), "give one time per reading"
        assert times == sorted(times), "readings arrive in time order"
        ticking = self.detector.ticks and self.tick_interval > 0
        next_tick = times[0] + self.tick_interval if times else 0.0
        for index, (at, data) in enumerate(zip(times, self.readings, strict=True)):
            while ticking and next_tick < at:  # the ticks between the previous reading and this
                runner.tick(next_tick)
                next_tick += self.tick_interval
            runner.feed(data, at=at, position=str(index))
        return runner.events

    def test_has_a_name_and_an_options_model(self) -> None:
        assert isinstance(self.detector.name, str) and self.detector.name
        assert self.detector.options_model.model_config.get("extra") == "forbid", (
            "unknown option keys must be errors: subclass DetectorOptions")

    def test_rejects_an_unknown_option(self) -> None:
        from pydantic import ValidationError

        with pytest.raises(ValidationError):
            self.detector.options_model.model_validate({**self.options, "no_such_key_xyz": 1})

    def test_readings_lead_to_events(self) -> None:
        assert self._run(), "the readings must make the detector find at least one event"

    def test_is_deterministic(self) -> None:
        """The same input from the same state yields the same event ids: a replay after a
        crash must not post twice."""
        first, second = self._run(), self._run()
        assert [e.id for e in first] == [e.id for e in second]
        assert [e.fields for e in first] == [e.fields for e in second]

    def test_events_are_about_the_subject(self) -> None:
        for event in self._run():
            assert (event.source, event.subject) == ("presses", "press-07")
            assert event.type and "." in event.type, "event types are dotted: area.what"

    def test_fields_are_json(self) -> None:
        for event in self._run():
            json.dumps(event.fields)  # the store keeps them as JSON

    def test_every_event_type_has_a_phrase(self) -> None:
        """A post without a registered phrase reads as "subject: type (fields…)"; a detector
        should register wording for what it finds (``register_phrases``)."""
        generic = [e.type for e in self._run()
                   if phrase(e).startswith(f"{e.subject}: {e.type.replace('.', ' ')}")]
        assert not generic, f"no default phrase registered for {sorted(set(generic))}"
