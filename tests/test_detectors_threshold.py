"""``threshold``: limits with hysteresis and minimum durations, checked by example and by
hypothesis properties over arbitrary value sequences."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from floorstream.detectors.threshold import Threshold
from floorstream.errors import DecodeError
from floorstream.model import Severity
from floorstream.plugin import DetectorState, phrasing
from floorstream.testing.detectors import T0, DetectorConformance, Runner, change, make, phrase

TEMP = {"field": "spindle_temp", "above": 85, "clear_below": 80, "unit": "°C",
        "label": "spindle temperature"}


class TestThresholdConformance(DetectorConformance):
    """The detector kit's contract (floorstream.testing.detectors) on the builtin."""

    detector = Threshold
    options = TEMP
    readings = [{"spindle_temp": 70}, {"spindle_temp": 91.5}, {"spindle_temp": 95},
                {"spindle_temp": 78}]


def test_raise_above_then_clear_below_the_clear_level() -> None:
    run = Runner(make(Threshold, **TEMP))
    assert run.feed({"spindle_temp": 84.9}, at=0) == []
    assert run.feed({"spindle_temp": 85}, at=1) == []  # at the limit is not beyond it
    (raised,) = run.feed({"spindle_temp": 86.5}, at=2)
    assert raised.type == "metric.limit_exceeded" and raised.severity is Severity.WARNING
    assert raised.fields | {} == {**raised.fields, "value": 86.5, "limit": 85, "unit": "°C",
                                  "direction": "above"}
    assert phrase(raised) == ("press-07: spindle temperature 86.5 °C, above the "
                                       "85 °C limit")
    assert run.feed({"spindle_temp": 91}, at=3) == []
    assert run.feed({"spindle_temp": 82}, at=4) == []  # between the levels: still raised
    assert run.feed({"spindle_temp": 80}, at=5) == []
    (cleared,) = run.feed({"spindle_temp": 79.5}, at=62)
    assert cleared.type == "metric.limit_cleared" and cleared.severity is Severity.INFO
    assert cleared.clears == raised.id
    assert cleared.fields["peak"] == 91 and cleared.fields["limit"] == 80
    assert cleared.fields["duration_s"] == 60
    assert phrase(cleared) == ("press-07: spindle temperature back to 79.5 °C, below "
                                        "80 °C (peak 91 °C, 1 min)")


def test_below_limit_with_clear_above() -> None:
    run = Runner(make(Threshold, field="pressure", below=2.0, clear_above=2.5, unit="bar",
                      severity="critical"))
    assert run.feed({"pressure": 2.2}) == []
    (raised,) = run.feed({"pressure": 1.8}, at=1)
    assert raised.severity is Severity.CRITICAL
    assert phrase(raised) == "press-07: pressure 1.8 bar, below the 2 bar limit"
    (worse,) = run.feed({"pressure": 1.2}, at=2)  # 0.6 bar worse: more than the band
    assert worse.type == "metric.limit_escalated" and worse.refers_to == raised.id
    assert phrase(worse) == ("press-07: pressure down to 1.2 bar (was 1.8 bar), still below "
                             "the 2 bar limit after 1 s")
    # a new peak within a second of the raise says nothing of how long ("after 0 s")
    quick = Runner(make(Threshold, field="pressure", below=2.0, clear_above=2.5, unit="bar"))
    quick.feed({"pressure": 2.2})
    quick.feed({"pressure": 1.8}, at=1)
    (sudden,) = quick.feed({"pressure": 1.2}, at=1.3)
    assert phrase(sudden) == ("press-07: pressure down to 1.2 bar (was 1.8 bar), still below "
                              "the 2 bar limit")
    assert run.feed({"pressure": 2.4}, at=3) == []
    (cleared,) = run.feed({"pressure": 2.6}, at=4)
    assert cleared.fields["peak"] == 1.2
    assert "back to 2.6 bar, above 2.5 bar (peak 1.2 bar" in phrase(cleared)


def test_without_clear_level_the_limit_is_the_clear_level() -> None:
    run = Runner(make(Threshold, field="t", above=10))
    assert len(run.feed({"t": 11})) == 1
    assert run.feed({"t": 10}) == []
    assert [e.type for e in run.feed({"t": 9.9})] == ["metric.limit_cleared"]


def test_for_requires_the_value_to_stay_beyond_the_limit() -> None:
    run = Runner(make(Threshold, **TEMP, **{"for": "20s"}))
    assert run.feed({"spindle_temp": 86}, at=0) == []
    assert run.feed({"spindle_temp": 84}, at=10) == []  # dipped back: the clock restarts
    assert run.feed({"spindle_temp": 87}, at=15) == []
    assert run.feed({"spindle_temp": 88}, at=30) == []
    (raised,) = run.feed({"spindle_temp": 86}, at=35)
    assert raised.fields["duration_s"] == 20
    assert phrase(raised).endswith("limit for 20 s")


def test_clear_for_requires_the_value_to_stay_clear() -> None:
    run = Runner(make(Threshold, **TEMP, clear_for="1m"))
    run.feed({"spindle_temp": 90}, at=0)
    assert run.feed({"spindle_temp": 70}, at=10) == []
    assert run.feed({"spindle_temp": 83}, at=40) == []  # not clear any more: still raised
    assert run.feed({"spindle_temp": 70}, at=50) == []
    assert run.feed({"spindle_temp": 70}, at=100) == []
    (cleared,) = run.feed({"spindle_temp": 72}, at=110)
    assert cleared.type == "metric.limit_cleared" and cleared.fields["peak"] == 90


@pytest.mark.parametrize("bad", ["hot", "", [1], {"v": 1}, True, "nan", float("inf")])
def test_non_numeric_values_are_decode_errors(bad: Any) -> None:
    run = Runner(make(Threshold, **TEMP))
    with pytest.raises(DecodeError, match="spindle_temp"):
        run.feed({"spindle_temp": bad})


def test_numeric_strings_are_accepted_and_missing_fields_ignored() -> None:
    run = Runner(make(Threshold, **TEMP))
    assert run.feed({"other": 1}) == []
    assert len(run.feed({"spindle_temp": "91.5"})) == 1


@pytest.mark.parametrize("options", [
    {"field": "t"},
    {"field": "t", "above": 1, "below": 0},
    {"field": "t", "above": 10, "clear_below": 12},
    {"field": "t", "below": 10, "clear_above": 8},
    {"field": "t", "above": 10, "clear_above": 12},
    {"field": "t", "above": 10, "for": "ten seconds"},
])
def test_inconsistent_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make(Threshold, **options)


# -- properties ---------------------------------------------------------------------------

LIMIT, CLEAR = 85.0, 80.0
values = st.floats(min_value=0, max_value=150, allow_nan=False)
between = st.floats(min_value=CLEAR, max_value=LIMIT, exclude_min=True, exclude_max=True)
steps = st.floats(min_value=0, max_value=30)  # seconds between readings (0: same instant)
durations = st.sampled_from([0, 5, 20, 60])
PROPS = settings(max_examples=200, deadline=None)


def _play(run: Runner, readings: list[tuple[float, float]], start: float = 0.0) -> float:
    now = start
    for step, value in readings:
        now += step
        run.feed({"v": value}, at=now, position=f"{now:.6f}:{len(run.events)}:{value!r}")
    return now


def _detector(for_: float, clear_for: float, upward: bool = True) -> Threshold:
    if upward:
        opts = {"above": LIMIT, "clear_below": CLEAR}
    else:
        opts = {"below": CLEAR, "clear_above": LIMIT}
    detector = make(Threshold, field="v", clear_for=clear_for, **{"for": for_}, **opts)
    assert isinstance(detector, Threshold)
    return detector


@PROPS
@given(prefix=st.lists(st.tuples(steps, values), max_size=30),
       hover=st.lists(st.tuples(steps, between), min_size=1, max_size=40),
       for_=durations, clear_for=durations, upward=st.booleans())
def test_no_event_while_the_value_stays_between_the_levels(
        prefix: list[tuple[float, float]], hover: list[tuple[float, float]],
        for_: float, clear_for: float, upward: bool) -> None:
    run = Runner(_detector(for_, clear_for, upward))
    # the first reading between the levels may still raise the alarm of a value that was
    # beyond the limit for ``for`` until then (it held until this reading said otherwise)
    now = _play(run, [*prefix, hover[0]])
    before = len(run.events)
    _play(run, hover[1:], now)
    assert run.events[before:] == []


@PROPS
@given(readings=st.lists(st.tuples(steps, values), max_size=80),
       for_=durations, clear_for=durations, upward=st.booleans())
def test_raise_and_clear_strictly_alternate_starting_with_a_raise(
        readings: list[tuple[float, float]], for_: float, clear_for: float,
        upward: bool) -> None:
    run = Runner(_detector(for_, clear_for, upward))
    _play(run, readings)
    # (a standing alarm's updates — escalations, reminders — are in between: not a raise)
    stories = [e for e in run.events if e.relation != "update"]
    types = [e.type for e in stories]
    expected = ["metric.limit_exceeded", "metric.limit_cleared"] * len(types)
    assert types == expected[: len(types)]
    for raised, cleared in zip(stories[::2], stories[1::2], strict=False):
        assert cleared.clears == raised.id


@PROPS
@given(readings=st.lists(st.tuples(steps, values), max_size=80),
       for_=st.sampled_from([5, 20, 60]))
def test_with_for_no_raise_unless_beyond_the_limit_that_long(
        readings: list[tuple[float, float]], for_: float) -> None:
    run = Runner(_detector(for_, 0))
    now, timeline = 0.0, []
    for step, value in readings:
        now += step
        found = run.feed({"v": value}, at=now, position=f"{len(timeline)}")
        timeline.append((now, value, [e.type for e in found]))
    for index, (at, value, types) in enumerate(timeline):
        if "metric.limit_exceeded" not in types:
            continue
        # walk back over the run of readings beyond the limit that ends here (or, raised by
        # a reading back under it, just before: each value holds until the next reading)
        end = index if value > LIMIT else index - 1
        start = end
        while start > 0 and timeline[start - 1][1] > LIMIT:
            start -= 1
        assert end >= 0 and all(v > LIMIT for _, v, _ in timeline[start:end + 1])
        assert at - timeline[start][0] >= for_ - 1e-6  # (times go through datetimes)


@PROPS
@given(readings=st.lists(st.tuples(steps, values), max_size=60),
       for_=durations, clear_for=durations)
def test_a_replay_gives_the_same_event_ids(readings: list[tuple[float, float]],
                                           for_: float, clear_for: float) -> None:
    first, second = Runner(_detector(for_, clear_for)), Runner(_detector(for_, clear_for))
    _play(first, readings)
    _play(second, readings)
    assert [e.id for e in first.events] == [e.id for e in second.events]
    assert all(not math.isnan(e.fields["value"]) for e in first.events)


def test_a_worse_state_inside_a_standing_alarm_is_posted() -> None:
    """Issue 12: an alarm raised at 86 °C that never fell below its 80 °C clear level stood
    for 15 minutes, and the real overheat to 92.5 °C inside it produced no post at all."""
    run = Runner(make(Threshold, field="temp", above=85, clear_below=80, unit="°C",
                      levels={"critical": 90}, remind="15m"))
    (raised,) = run.feed({"temp": 86}, at=0)
    assert raised.severity is Severity.WARNING
    assert run.feed({"temp": 88}, at=60) == []  # worse, but less than the 5 °C band
    (critical,) = run.feed({"temp": 92.5}, at=840)
    assert critical.type == "metric.limit_escalated" and critical.severity is Severity.CRITICAL
    assert (critical.relation, critical.refers_to) == ("update", raised.id)
    assert critical.fields["limit"] == 90 and critical.fields["previous"] == 86
    assert phrase(critical) == ("press-07: temp now 92.5 °C, above the 90 °C critical level "
                                "(alarm for 14 min, was 86 °C)")
    assert run.feed({"temp": 93}, at=850) == []  # not another step beyond 92.5
    (standing,) = run.feed({"temp": 91}, at=900)
    assert standing.type == "metric.limit_standing" and standing.refers_to == raised.id
    assert standing.severity is Severity.CRITICAL
    assert phrase(standing) == ("press-07: temp still above the 85 °C limit after 15 min "
                                "(now 91 °C, peak 93 °C)")
    assert run.feed({"temp": 91}, at=1000) == []  # the next reminder at 30 min
    (cleared,) = run.feed({"temp": 79}, at=1300)
    assert cleared.clears == raised.id and cleared.fields["peak"] == 93


def test_a_raise_straight_into_a_higher_level_says_so() -> None:
    run = Runner(make(Threshold, field="temp", above=85, levels={"critical": 90}, unit="°C"))
    (raised,) = run.feed({"temp": 95}, at=0)
    assert raised.severity is Severity.CRITICAL and raised.fields["limit"] == 90
    assert phrase(raised) == "press-07: temp 95 °C, above the 90 °C limit"


def test_levels_must_lie_beyond_the_limit() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must be above the limit"):
        make(Threshold, field="t", above=85, levels={"critical": 80})


REMIND = {"field": "temp", "above": 85, "clear_below": 80, "unit": "°C", "remind": "15m"}


def test_a_standing_alarm_of_a_machine_gone_quiet_is_reminded_on_the_wall_clock() -> None:
    """A machine that stops sending while its alarm stands gets its reminders from the tick,
    stamped with its last reading's event time, once per ``remind``, never a flood."""
    run = Runner(make(Threshold, **REMIND))
    (raised,) = run.feed({"temp": 86}, at=0)  # 06:00
    assert run.feed({"temp": 87}, at=360) == []  # 06:06, the last reading
    assert run.tick(600) == [] and run.tick(899) == []  # stood 6 min + 8:59 of silence
    (standing,) = run.tick(900)
    assert standing.type == "metric.limit_standing" and standing.severity is Severity.WARNING
    assert (standing.relation, standing.refers_to) == ("update", raised.id)
    assert standing.occurred_at == raised.occurred_at + timedelta(seconds=360)  # event time
    assert standing.fields["reminder"] == 1 and standing.fields["quiet_s"] == 540
    assert standing.attrs == raised.attrs  # routed like the alarm it reminds of
    assert phrase(standing) == ("press-07: temp still above the 85 °C limit since 06:00 UTC, "
                                "15 min (no reading since 06:06: last 87 °C, peak 87 °C)")
    with phrasing.in_zone(ZoneInfo("Europe/Berlin")):
        assert phrase(standing) == ("press-07: temp still above the 85 °C limit since 07:00 "
                                    "CET, 15 min (no reading since 07:06: last 87 °C, peak "
                                    "87 °C)")
    assert [run.tick(at) for at in (901, 1500, 1799)] == [[], [], []]  # once per interval
    (second,) = run.tick(1800)
    assert second.fields["reminder"] == 2 and second.id != standing.id
    # the daemon was down for an hour: one reminder for the time missed, not four
    (late,) = run.tick(1800 + 3600)
    assert late.fields["reminder"] == 6 and late.fields["duration_s"] == 5400
    assert run.feed({"temp": 86}, at=5800) == []  # the reading path knows it was reminded
    (cleared,) = run.feed({"temp": 79}, at=5900)
    assert cleared.clears == raised.id
    assert run.tick(99_999) == []  # a cleared alarm is not reminded


def test_an_alarm_raised_before_wall_clock_reminders_is_reminded_after_its_next_reading(
        ) -> None:
    """A state persisted by an older version has no last reading: no tick reminder until a
    reading brings one (with the attrs to route it by)."""
    run = Runner(make(Threshold, **REMIND))
    (raised,) = run.feed({"temp": 86}, at=0)
    for key in ("last_at", "seen", "value", "attrs"):
        del run.state.data[key]
    assert run.tick(5000) == []
    (by_reading,) = run.feed({"temp": 87}, at=5000)  # the reading path reminds (5 × 15 min)
    assert by_reading.fields["reminder"] == 5
    (ticked,) = run.tick(5400)
    assert ticked.fields["reminder"] == 6 and ticked.attrs == raised.attrs


def test_a_reminder_has_one_id_whichever_path_finds_it_and_across_a_restart() -> None:
    by_tick = Runner(make(Threshold, **REMIND))
    by_tick.feed({"temp": 86}, at=0)
    by_tick.feed({"temp": 88}, at=300)
    before = json.dumps(by_tick.state.data)  # the committed state before the tick
    (ticked,) = by_tick.tick(1000)
    # a crash before the reminder's commit: a new process, the state as committed before,
    # finds the same reminder (same number, same id) on its own first tick
    restarted = Runner(make(Threshold, **REMIND))
    restarted.state = DetectorState(json.loads(before))
    (again,) = restarted.tick(1100)
    assert again.id == ticked.id and again.fields["reminder"] == 1
    # ... and once committed, a restart does not repeat it
    after = Runner(make(Threshold, **REMIND))
    after.state = DetectorState(json.loads(json.dumps(restarted.state.data)))
    assert after.tick(1200) == []
    # a machine still sending: the reading finds reminder 1 first, with the same id
    by_reading = Runner(make(Threshold, **REMIND))
    by_reading.feed({"temp": 86}, at=0)
    by_reading.feed({"temp": 88}, at=300)
    (read,) = by_reading.feed({"temp": 88}, at=900)
    assert read.id == ticked.id and "last_at" not in read.fields
    assert by_reading.tick(901) == []


def test_a_machine_clock_months_off_is_reminded_by_its_own_time() -> None:
    """The alarm's age is the machine's event time up to its last reading plus the wall time
    since: a skew between the two clocks cancels out."""
    run = Runner(make(Threshold, **REMIND))
    skew = timedelta(days=-90)
    for at, temp in ((0, 86), (120, 87)):
        reading = change({"temp": temp}, at=at, position=str(at))
        reading = reading.model_copy(update={"occurred_at": reading.occurred_at + skew})
        run.events += run.detector.on_change(reading, run.state)
    assert run.tick(120 + 779) == []
    (standing,) = run.tick(120 + 780)
    assert standing.fields["duration_s"] == 900
    assert standing.occurred_at == T0 + skew + timedelta(seconds=120)


def test_without_remind_or_for_a_threshold_does_not_tick() -> None:
    assert not make(Threshold, **TEMP).ticks
    assert make(Threshold, **REMIND).ticks
    assert make(Threshold, **{**TEMP, "for": "10s"}).ticks
    run = Runner(make(Threshold, **{**REMIND, "clear_for": "1h"}))
    run.feed({"temp": 86}, at=0)
    run.feed({"temp": 79}, at=60)  # clearing: it is no longer above the limit
    assert run.tick(5000) == []


HELD = {"field": "temp", "above": 85, "clear_below": 80, "unit": "°C", "for": "2s"}


def test_a_value_reported_by_exception_raises_once_it_held_for_long_enough() -> None:
    """Sparkplug, OPC UA, MTConnect send a value only when it changes: 88 °C that stays
    sends nothing more. The tick raises it once it has held for ``for``, stamped with its
    reading; the reading that finally changes it is the raised alarm's next."""
    run = Runner(make(Threshold, **HELD))
    assert run.tick(0) == []  # the daemon runs (its first tick)
    assert run.feed({"temp": 86}, at=0, position="p0") == []
    assert run.feed({"temp": 88}, at=0.6, position="p1") == []
    assert run.tick(1.5) == []  # not yet two seconds
    (raised,) = run.tick(2.1)
    assert raised.type == "metric.limit_exceeded" and raised.occurred_at == T0 + timedelta(
        seconds=0.6)
    assert phrase(raised) == "press-07: temp 88 °C, above the 85 °C limit for 2 s"
    assert run.tick(10) == []  # once
    (cleared,) = run.feed({"temp": 79}, at=7.5, position="p2")
    assert cleared.type == "metric.limit_cleared" and cleared.clears == raised.id
    assert phrase(cleared) == ("press-07: temp back to 79 °C, below 80 °C (peak 88 °C, "
                               "6 s)")  # raised at 2 s (event time), cleared at 7.5 s


def test_a_reading_back_under_the_limit_raises_the_alarm_it_missed_first() -> None:
    """No tick came in between (a replay, a daemon busy): the reading that ends a value held
    beyond the limit for ``for`` gives the alarm and its clear, the alarm at the same
    position a tick would have given it, so a tick and a reading never post it twice."""
    run, ticked = Runner(make(Threshold, **HELD)), Runner(make(Threshold, **HELD))
    for runner in (run, ticked):
        runner.feed({"temp": 88}, at=0, position="p0")
    ticked.tick(0)
    (by_tick,) = ticked.tick(3)
    raised, cleared = run.feed({"temp": 79}, at=7.5, position="p1")
    assert raised.id == by_tick.id
    assert [phrase(e) for e in (raised, cleared)] == [
        "press-07: temp 88 °C, above the 85 °C limit for 8 s",
        "press-07: temp back to 79 °C, below 80 °C (peak 88 °C, 6 s)"]
    # shorter than ``for``: nothing, as before
    short = Runner(make(Threshold, **HELD))
    short.feed({"temp": 88}, at=0, position="p0")
    assert short.feed({"temp": 79}, at=1.5, position="p1") == []


def test_after_a_restart_the_backlog_decides_before_the_downtime_does() -> None:
    """A pending value persisted before a crash: the daemon was down for a minute, which
    is no reading of the machine. The wall-clock wait counts from the new process's first
    tick, so the readings the broker resends (the value back under the limit) come first."""
    before = Runner(make(Threshold, **HELD))
    before.feed({"temp": 88}, at=0, position="p0")
    after = Runner(make(Threshold, **HELD))  # a new process, the committed state
    after.state = before.state
    assert after.tick(60) == []  # first tick after the restart: not "held for 60 s"
    assert after.feed({"temp": 79}, at=1, position="p1") == []  # the backlog: 1 s, no alarm
    after.feed({"temp": 88}, at=70, position="p2")
    (raised,) = after.tick(72.5)
    assert phrase(raised) == "press-07: temp 88 °C, above the 85 °C limit for 2 s"


def test_hold_false_counts_only_readings_beyond_the_limit() -> None:
    """``hold: false``: a pause says nothing about the value, so neither a tick nor the
    reading that ends it raises; readings beyond the limit for ``for`` still do."""
    detector = make(Threshold, **{**HELD, "hold": False})
    assert not detector.ticks
    run = Runner(detector)
    run.feed({"temp": 88}, at=0, position="p0")
    assert run.feed({"temp": 79}, at=7.5, position="p1") == []
    run.feed({"temp": 88}, at=10, position="p2")
    (raised,) = run.feed({"temp": 88}, at=12, position="p3")
    assert phrase(raised) == "press-07: temp 88 °C, above the 85 °C limit for 2 s"


def test_an_alarm_shorter_than_a_second_does_not_read_as_none() -> None:
    """A value that crossed and came back within 0.3 s: "under 1 s", not "0 s"."""
    run = Runner(make(Threshold, **TEMP))
    run.feed({"spindle_temp": 86}, at=0)
    (cleared,) = run.feed({"spindle_temp": 79}, at=0.3)
    assert phrase(cleared) == ("press-07: spindle temperature back to 79 °C, below 80 °C (peak "
                               "86 °C, under 1 s)")
