"""Settling and flap detection (issue 12, item 5): a source's ``states:`` folds transients and
flapping of every state-like post: state changes and online/offline, whoever made them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from floorstream.config import parse_config
from floorstream.errors import ConfigError
from floorstream.model import Change, Event, Post, Severity
from floorstream.plugin import DetectorState
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.settle import Settle
from floorstream.testing.detectors import T0

CONFIG = """
store: "sqlite:///:memory:"
flood: null
sources:
  - name: line
    adapter: mqtt
    url: mqtt://127.0.0.1:1883
    topics: ["plant/#"]
    states: {states}
    detect:
      - state_change: {{field: state, reason: reason, normal: [EXECUTE]}}
"""


class Line:
    """A Processor for one source; ``wall`` seconds after T0 is the wall clock of a step."""

    def __init__(self, clock: list[datetime], states: str = "{settle: 2s}") -> None:
        self.clock = clock
        self.plugins = build_plugins()
        self.processor = Processor(parse_config(CONFIG.format(states=states), self.plugins),
                                   self.plugins)
        self.posts: list[Post] = []
        self.n = 0

    def send(self, state: str, at: float, reason: str | None = None,
             subject: str = "filler-3") -> list[Post]:
        self.n += 1
        data: dict[str, Any] = {"state": state}
        if reason:
            data["reason"] = reason
        when = self.clock[0] = T0 + timedelta(seconds=at)  # live: arrives as it happens
        change = Change(source="line", subject=subject, kind="telemetry",
                        position=str(self.n), occurred_at=when, observed_at=when, data=data)
        return self._keep(self.processor.process([Envelope("line", change=change)]).posts)

    def event(self, type: str, at: float, subject: str = "Line3-Gateway",
              **kw: Any) -> list[Post]:
        self.n += 1
        self.clock[0] = T0 + timedelta(seconds=at)
        event = Event.create(type=type, source="line", subject=subject, position=f"e{self.n}",
                             occurred_at=T0 + timedelta(seconds=at), severity=Severity.WARNING,
                             fields={"silent_s": 0}, **kw)
        return self._keep(self.processor.process([Envelope("line", event=event)]).posts)

    def tick(self, wall: float) -> list[Post]:
        return self._keep(self.processor.tick(T0 + timedelta(seconds=wall)).posts)

    def _keep(self, posts: list[Post]) -> list[Post]:
        self.posts += posts
        return posts


@pytest.fixture(autouse=True)
def _wall_clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The stage remembers the wall time a state arrived: pin it to the changes' clock."""
    import floorstream.processing as processing

    clock = [T0]
    monkeypatch.setattr(processing, "utcnow", lambda: clock[0])
    return clock


def test_holding_then_held_in_400_ms_is_one_post(_wall_clock: list[datetime]) -> None:
    line = Line(_wall_clock)
    assert line.send("EXECUTE", 0) == []
    assert line.send("HOLDING", 60) == []  # held back: it may not last
    assert line.send("HELD", 60.4, reason="Jam at infeed") == []
    assert line.tick(61) == []  # 0.6 s of event time: not settled yet
    line.send("HELD", 62.5, reason="Jam at infeed")  # the watermark passes 60.4 + 2 s
    (post,) = line.tick(62.6)
    assert post.summary == "filler-3 held (via holding, was execute) — Jam at infeed"
    assert post.fields["via"] == ["holding"] and post.fields["transitions"] == 2
    assert post.fields["before"] == "EXECUTE" and post.fields["after"] == "HELD"
    assert post.severity is Severity.NOTICE
    assert line.processor.sources["line"].settle.folded == 1  # type: ignore[union-attr]


def test_a_state_that_lasts_is_posted_as_it_was(_wall_clock: list[datetime]) -> None:
    line = Line(_wall_clock)
    line.send("EXECUTE", 0)
    line.send("STOPPED", 10)
    assert line.send("STOPPED", 13) == []
    (post,) = line.tick(13.1)  # the source's event time passed 10 + 2 s
    assert post.summary == "filler-3 stopped (was execute)" and "via" not in post.fields
    # the next transition finds nothing held
    line.send("EXECUTE", 100)
    (back,) = line.send("EXECUTE", 103) + line.tick(103)
    assert back.summary.startswith("filler-3 execute again after ")
    assert back.refers_to == post.id and back.relation == "resolution"


def test_no_window_holds_a_post_longer_than_its_length_in_wall_time(
        _wall_clock: list[datetime]) -> None:
    """The subject (and the whole source) goes quiet right after the change: no event time
    moves, the wall clock releases the post after the settle time."""
    line = Line(_wall_clock)
    line.send("EXECUTE", 0)
    line.send("STOPPED", 10)
    assert line.processor.tick(T0 + timedelta(seconds=11.9)).posts == []
    (post,) = line.tick(12.1)
    assert post.fields["after"] == "STOPPED"


def test_a_death_and_rebirth_within_the_settle_time_is_one_line(
        _wall_clock: list[datetime]) -> None:
    """Node online/offline events come from the adapter (Sparkplug NDEATH/NBIRTH, a last
    will, silence): the stage folds them alike."""
    line = Line(_wall_clock)
    (offline_id,) = [e.id for e in [Event.create(
        type="machine.offline", source="line", subject="Line3-Gateway", position="e1",
        occurred_at=T0)]]
    assert line.event("machine.offline", 0) == []
    (blip,) = line.event("machine.online", 0.3, clears=offline_id)  # back where it was
    assert line.tick(5) == []  # nothing else held
    assert blip.type == "machine.blip" and blip.severity is Severity.INFO
    assert blip.summary == "Line3-Gateway briefly offline (under 1 s), online again"
    assert blip.fields["transitions"] == 2 and blip.fields["duration_s"] == pytest.approx(0.3)


def test_flapping_is_one_post_then_silence_then_a_summary_in_its_thread(
        _wall_clock: list[datetime]) -> None:
    line = Line(_wall_clock, "{settle: 0s, flap: {changes: 4, within: 1m, stable: 2m}}")
    line.send("EXECUTE", 0)
    shown = [p for at, state in enumerate(["STOPPED", "EXECUTE", "STOPPED"], start=1)
             for p in line.send(state, at * 5)]
    assert [p.fields["after"] for p in shown] == ["STOPPED", "EXECUTE", "STOPPED"]
    (flapping,) = line.send("EXECUTE", 20)
    assert flapping.type == "machine.flapping" and flapping.severity is Severity.WARNING
    # the time the changes took (5 s to 20 s), not the 1-minute window they fell in
    assert flapping.summary == ("filler-3 flapping: 4 state changes in 15 s (stopped ↔ "
                                "execute); quiet until stable for 2 min")
    for n in range(7):  # flapping on: nothing
        assert line.send("STOPPED" if n % 2 == 0 else "EXECUTE", 25 + 5 * n) == []
    assert line.tick(60) == []
    (stable,) = line.tick(55 + 121)  # two minutes after the last change, in wall time
    assert stable.type == "machine.stable" and stable.relation == "resolution"
    assert stable.refers_to == flapping.id and stable.thread == flapping.thread == "filler-3"
    assert stable.fields["suppressed"] == 7 and stable.fields["label"] == "stopped"
    assert stable.summary == ("filler-3 stable again, stopped, after flapping: 11 changes in "
                              "50 s (7 not shown)")
    # stable: the next change is an ordinary post again
    (after,) = line.send("EXECUTE", 400)
    assert after.fields["after"] == "EXECUTE"
    assert line.processor.sources["line"].settle.flapped == 8  # type: ignore[union-attr]


def test_held_states_survive_a_restart(_wall_clock: list[datetime]) -> None:
    """The held transitions are persisted with the detector state: a daemon stopped while one
    is held posts it after the restart (rebuilt from the state, same id)."""
    line = Line(_wall_clock)
    line.send("EXECUTE", 0)
    line.send("HOLDING", 10)
    line.send("HELD", 10.4)
    runtime = line.processor.sources["line"]
    saved = {key: json.loads(json.dumps(state.data)) for key, state in runtime.states.items()}
    again = Line(_wall_clock)
    for (subject, key), data in saved.items():
        again.processor.sources["line"].states[(subject, key)] = DetectorState(data)
    (post,) = again.tick(30)  # the restarted daemon knows no watermark: the wall clock
    assert post.fields["via"] == ["holding"]
    line.send("HELD", 13)
    (same,) = line.tick(13)
    assert same.id == post.id


def test_states_config_short_form_and_refused_keys() -> None:
    plugins = build_plugins()
    config = parse_config(CONFIG.format(states="2s"), plugins)
    options = config.sources[0].states
    assert options is not None and options.settle == 2.0 and options.flap is None
    with pytest.raises(ConfigError, match="sttle"):
        parse_config(CONFIG.format(states="{sttle: 2s}"), plugins)
    with pytest.raises(ConfigError, match="changes"):
        parse_config(CONFIG.format(states="{flap: {changes: 1}}"), plugins)


def test_other_events_pass_untouched() -> None:
    stage = Settle.__new__(Settle)
    Settle.__init__(stage, parse_config(CONFIG.format(states="5s"), build_plugins())
                    .sources[0].states, "line")  # type: ignore[arg-type]
    event = Event.create(type="metric.limit_exceeded", source="line", subject="x",
                         position="1", occurred_at=T0)
    assert stage.admit(event, DetectorState(), 0.0) == [event]


def test_a_return_shorter_than_the_settle_time_does_not_end_the_stop(
        _wall_clock: list[datetime]) -> None:
    """Suspended, back to execute for one second, then held: the return was settled away,
    so the stop goes on. The held post is an update of the suspended post's stop, and the
    return that lasts answers that stop, counted from its start (not from the hold)."""
    line = Line(_wall_clock)
    line.send("EXECUTE", 0)
    line.send("SUSPENDED", 10)
    (suspended,) = line.tick(12.1)
    line.send("EXECUTE", 20)
    line.send("HOLDING", 21)
    line.send("HELD", 21.3, reason="Jam at infeed")
    (held,) = line.tick(23.4)
    assert held.summary == ("filler-3 held (via execute, holding, was suspended) — Jam at "
                            "infeed")
    assert (held.relation, held.refers_to) == ("update", suspended.id)
    line.send("EXECUTE", 30)
    (back,) = line.tick(32.1)
    assert back.summary == "filler-3 execute again after 20 s"  # since 10 s, not 21 s
    assert (back.relation, back.refers_to) == ("resolution", suspended.id)
