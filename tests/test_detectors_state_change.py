"""``state_change``: one post per new state, "again after" on return to normal."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from floorstream.detectors.state_change import StateChange
from floorstream.model import Severity
from floorstream.plugin import phrasing
from floorstream.testing.detectors import DetectorConformance, Runner, make, phrase

OPTIONS = {"field": "state", "normal": ["RUNNING"],
           "labels": {"RUNNING": "running", "STOPPED": "stopped", "FAULT": "in fault"},
           "severity": {"FAULT": "critical", "STOPPED": "warning"}}


class TestStateChangeConformance(DetectorConformance):
    """The detector kit's contract (floorstream.testing.detectors) on the builtin."""

    detector = StateChange
    options = OPTIONS
    readings = [{"state": "RUNNING"}, {"state": "STOPPED"}, {"state": "FAULT"},
                {"state": "RUNNING"}]


def test_first_reading_sets_a_baseline_and_repeats_say_nothing() -> None:
    run = Runner(make(StateChange, **OPTIONS))
    for i in range(10):
        assert run.feed({"state": "RUNNING", "temp": 70 + i}, at=i) == []
    assert run.feed({"temp": 80}, at=11) == []  # no state field: nothing to say


def test_leaving_normal_is_one_event_with_labels_and_severity() -> None:
    run = Runner(make(StateChange, **OPTIONS))
    run.feed({"state": "RUNNING"}, at=0)
    (event,) = run.feed({"state": "STOPPED"}, at=5, position="p5")
    assert run.feed({"state": "STOPPED"}, at=6) == []
    assert event.type == "machine.state_changed"
    assert event.severity is Severity.WARNING
    assert event.fields["before"] == "RUNNING" and event.fields["after"] == "STOPPED"
    assert event.position == "p5#state_change:state"
    assert event.attrs == {"area": "pressing"}
    assert phrase(event) == "press-07 stopped (was running)"


def test_back_to_normal_says_again_after_and_threads_to_the_stop() -> None:
    run = Runner(make(StateChange, **OPTIONS))
    run.feed({"state": "RUNNING"}, at=0)
    (stop,) = run.feed({"state": "STOPPED"}, at=60)
    (fault,) = run.feed({"state": "FAULT"}, at=120)
    assert fault.severity is Severity.CRITICAL and fault.clears is None
    (back,) = run.feed({"state": "RUNNING"}, at=60 + 42 * 60)
    assert back.severity is Severity.INFO
    assert back.clears == stop.id  # the whole outage, from the first state that left normal
    assert back.fields["duration_s"] == 42 * 60
    assert phrase(back) == "press-07 running again after 42 min"
    # a second outage measures from its own start
    run.feed({"state": "STOPPED"}, at=10_000)
    (again,) = run.feed({"state": "RUNNING"}, at=10_030)
    assert again.fields["duration_s"] == 30


def test_without_normal_states_every_change_uses_the_default_severity() -> None:
    run = Runner(make(StateChange, field="mode"))
    run.feed({"mode": "AUTO"})
    (event,) = run.feed({"mode": "MANUAL"}, at=1)
    assert event.severity is Severity.NOTICE and "duration_s" not in event.fields
    assert phrase(event) == "press-07 manual (was auto)"


def test_dotted_path_and_non_string_states() -> None:
    run = Runner(make(StateChange, field="status.code"))
    run.feed({"status": {"code": 1}})
    (event,) = run.feed({"status": {"code": 2}}, at=1)
    assert (event.fields["before"], event.fields["after"]) == ("1", "2")


def test_state_is_per_subject() -> None:
    run = Runner(make(StateChange, **OPTIONS))
    run.feed({"state": "RUNNING"}, subject="press-07")
    # press-08's first reading is its own baseline, even with a shared detector + state slot
    other = Runner(run.detector)
    assert other.feed({"state": "STOPPED"}, subject="press-08") == []


def test_ids_are_stable_across_a_replay() -> None:
    def play() -> list[str]:
        run = Runner(make(StateChange, **OPTIONS))
        for i, s in enumerate(["RUNNING", "STOPPED", "RUNNING", "FAULT", "RUNNING"]):
            run.feed({"state": s}, at=i * 10, position=i)
        return [e.id for e in run.events]

    first = play()
    assert len(first) == 4 and first == play()


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError):
        make(StateChange)  # field is required
    with pytest.raises(ValidationError):
        make(StateChange, field="state", colour="red")
    with pytest.raises(ValueError, match="unknown severity"):
        make(StateChange, field="state", severity={"FAULT": "urgent"})


def test_a_reading_that_arrives_after_a_newer_one_is_posted_as_a_past_state() -> None:
    """Out of order (a publisher's queue flushed after a reconnect): the late reading is not
    the current state, so it does not move it, but a state nobody was told of is posted as
    what it was: a past state, reported late. A late repeat of the current state says
    nothing."""
    run = Runner(make(StateChange, **OPTIONS))
    run.feed({"state": "RUNNING"}, at=0)
    (fault,) = run.feed({"state": "FAULT"}, at=10)
    (late,) = run.feed({"state": "STOPPED"}, at=5, position="p5")
    assert late.type == "machine.state_reported_late"
    assert late.severity is Severity.WARNING  # the state's own severity: it happened
    assert late.fields["state"] == "STOPPED" and late.fields["current"] == "FAULT"
    assert late.fields["late_s"] == 5
    assert late.position == "p5#state_change:state" and late.id != fault.id
    assert phrase(late) == ("press-07 was stopped at 06:00:05 UTC, reported late "
                            "(in fault since 06:00:10)")
    with phrasing.in_zone(ZoneInfo("America/Chicago")):  # display.timezone
        assert phrase(late) == ("press-07 was stopped at 00:00:05 CST, reported late "
                                "(in fault since 00:00:10)")
    assert run.feed({"state": "FAULT"}, at=7) == []  # the current state, late: nothing new
    # the current state is untouched: back to normal threads to the fault
    (back,) = run.feed({"state": "RUNNING"}, at=20)
    assert back.clears == fault.id and back.fields["before"] == "FAULT"


def test_the_reason_reported_before_by_exception_is_the_reason_of_the_next_state() -> None:
    """Sparkplug and OPC UA report by exception: "Holding, Jam at infeed", then "Held" alone
    (the reason unchanged, not sent again). Held is because of the jam; a reason reported
    before an earlier transition is another stop's and is not used."""
    run = Runner(make(StateChange, field="State", reason="Reason", normal=["6"],
                      labels={"6": "execute", "10": "holding", "11": "held", "2": "stopped"}))
    run.feed({"State": 6, "Reason": ""}, at=0)
    (holding,) = run.feed({"State": 10, "Reason": "Jam at infeed"}, at=1)
    (held,) = run.feed({"State": 11}, at=1.3)
    assert phrase(holding) == "press-07 holding (was execute) — Jam at infeed"
    assert phrase(held) == "press-07 held (was holding) — Jam at infeed"
    (back,) = run.feed({"State": 6}, at=5)  # the jam was reported before the last one
    assert phrase(back) == "press-07 execute again after 4 s"
    (stopped,) = run.feed({"State": 2}, at=9)
    assert phrase(stopped) == "press-07 stopped (was execute)"
    run.feed({"Reason": "Guard door open"}, at=10)  # the reason alone, then the state
    (held_again,) = run.feed({"State": 11}, at=10.2)
    assert phrase(held_again) == "press-07 held (was stopped) — Guard door open"


def test_packml_state_numbers_may_be_written_as_numbers() -> None:
    """YAML reads ``normal: [6]`` and ``labels: {11: held}`` as numbers; a Sparkplug Int32
    state is compared as text ("11"): they mean the same states."""
    run = Runner(make(StateChange, field="State", normal=[6], labels={6: "execute", 11: "held"},
                      severity={11: "warning"}))
    run.feed({"State": 6}, at=0)
    (held,) = run.feed({"State": 11}, at=1)
    assert phrase(held) == "press-07 held (was execute)" and held.severity is Severity.WARNING
    (back,) = run.feed({"State": 6}, at=61)
    assert phrase(back) == "press-07 execute again after 1 min"
