"""The two MTConnect detectors on their own: the conformance kit, then the semantics the
issue names (several alarms per condition item, a Normal that clears one or all,
UNAVAILABLE that is no fault, a cycle per part and none for a counter reset)."""

from __future__ import annotations

from typing import Any

from floorstream_mtconnect.conditions import Conditions
from floorstream_mtconnect.cycles import Cycles

from floorstream.testing.detectors import DetectorConformance, Runner, make, phrase


def cond(level: str, code: str = "", text: str = "", item: str = "afb596b0") -> dict[str, Any]:
    return {"Soverload": level, "mtconnect": {
        "item": item, "key": "Soverload", "type": "AMPERAGE", "category": "CONDITION",
        "component": "Rotary C", "component_id": "zf476090", "level": level,
        "native_code": code, "native_severity": "", "qualifier": "HIGH", "text": text,
        "condition_type": "AMPERAGE"}}


def event(kind: str, key: str, value: Any, *, sub_type: str | None = None) -> dict[str, Any]:
    meta = {"item": key, "key": key, "type": kind, "category": "EVENT",
            "component": "Path P1", "component_id": "a4a7bdf0"}
    if sub_type:
        meta["sub_type"] = sub_type
    return {key: value, "mtconnect": meta}


class TestConditionsConformance(DetectorConformance):
    detector = Conditions
    readings = [cond("NORMAL"), cond("FAULT", "MOT-OVR", "Spindle Motor Overload"),
                cond("NORMAL")]


class TestCyclesConformance(DetectorConformance):
    detector = Cycles
    readings = [event("PART_COUNT", "parts", 662), event("EXECUTION", "exec", "ACTIVE"),
                event("EXECUTION", "exec", "PROGRAM_COMPLETED"),
                event("PART_COUNT", "parts", 663)]


def test_a_warning_and_a_fault_with_other_codes_are_two_alarms_in_two_threads() -> None:
    run = Runner(make(Conditions))
    (warn,) = run.feed(cond("WARNING", "MOT-WARN", "Spindle Motor Warning"), at=0)
    (fault,) = run.feed(cond("FAULT", "MOT-OVR", "Spindle Motor Overload"), at=1)
    assert (warn.severity.label, fault.severity.label) == ("warning", "critical")
    assert warn.thread != fault.thread and warn.relation == fault.relation == "new"
    assert phrase(fault) == ("press-07: fault MOT-OVR Spindle Motor Overload "
                             "(Rotary C amperage)")
    assert run.feed(cond("FAULT", "MOT-OVR", "Spindle Motor Overload"), at=2) == []  # repeat
    # Normal with a code clears that one alarm only
    (cleared,) = run.feed(cond("NORMAL", "MOT-WARN"), at=60)
    assert cleared.type == "mtconnect.condition_cleared" and cleared.relation == "resolution"
    assert cleared.refers_to == warn.id and cleared.thread == warn.thread
    assert phrase(cleared) == "press-07: MOT-WARN Spindle Motor Warning cleared after 1 min"
    # UNAVAILABLE is neither a fault nor a clear: the fault stays open
    assert run.feed(cond("UNAVAILABLE"), at=61) == []
    assert run.feed(cond("FAULT", "MOT-OVR", "Spindle Motor Overload"), at=62) == []
    (cleared_all,) = run.feed(cond("NORMAL"), at=120)
    assert cleared_all.refers_to == fault.id and cleared_all.fields["before"] == "FAULT"
    assert run.state.data["open"] == {}


def test_normal_without_a_code_clears_every_alarm_of_the_item() -> None:
    run = Runner(make(Conditions))
    opened = run.feed(cond("WARNING", "A"), at=0) + run.feed(cond("FAULT", "B"), at=0)
    other = run.feed(cond("FAULT", "C", item="b4bb7110"), at=0)
    cleared = run.feed(cond("NORMAL"), at=5)
    assert sorted(e.refers_to or "" for e in cleared) == sorted(e.id for e in opened)
    assert len({e.id for e in cleared}) == 2  # one change, two posts, two ids
    assert list(run.state.data["open"]) == ["b4bb7110"] and other


def test_a_warning_that_becomes_a_fault_is_an_update_in_its_thread() -> None:
    run = Runner(make(Conditions))
    (warn,) = run.feed(cond("WARNING", "T-1", "coolant low"), at=0)
    (worse,) = run.feed(cond("FAULT", "T-1", "coolant empty"), at=3)
    assert worse.relation == "update" and worse.refers_to == warn.id
    assert worse.thread == warn.thread and worse.severity.label == "critical"
    assert phrase(worse).endswith(", was warning")


def test_part_count_gives_one_cycle_post_per_part_and_a_reset_gives_none() -> None:
    run = Runner(make(Cycles))
    assert run.feed(event("PART_COUNT", "parts", 662), at=0) == []  # first sight: learnt
    run.feed(event("PROGRAM", "prog", "O98877"), at=0)
    run.feed(event("EXECUTION", "exec", "READY"), at=1)
    run.feed(event("EXECUTION", "exec", "ACTIVE"), at=10)
    run.feed(event("EXECUTION", "exec", "FEED_HOLD"), at=20)
    run.feed(event("EXECUTION", "exec", "ACTIVE"), at=25)  # the same cycle goes on
    assert run.feed(event("EXECUTION", "exec", "PROGRAM_COMPLETED"), at=70) == []
    (done,) = run.feed(event("PART_COUNT", "parts", 663), at=71)
    assert phrase(done) == "press-07: cycle complete, part 663 (O98877, 1 min)"
    assert run.feed(event("PART_COUNT", "parts", 0), at=80) == []  # reset: no post
    (two,) = run.feed(event("PART_COUNT", "parts", 2), at=90)
    assert two.fields["parts"] == 2 and "2 parts since the last post" in phrase(two)
    # a TARGET counter is no count of parts made, a second counter is not counted twice
    assert run.feed(event("PART_COUNT", "target", 500, sub_type="TARGET"), at=91) == []
    assert run.feed(event("PART_COUNT", "other", 5), at=92) == []
    assert run.feed(event("PART_COUNT", "other", 6), at=93) == []


def test_without_a_part_counter_program_completed_is_the_cycle() -> None:
    run = Runner(make(Cycles, modes=["AUTOMATIC"]))
    run.feed(event("CONTROLLER_MODE", "mode", "AUTOMATIC"), at=0)
    run.feed(event("EXECUTION", "exec", "ACTIVE"), at=1)
    (done,) = run.feed(event("EXECUTION", "exec", "PROGRAM_COMPLETED"), at=31)
    assert phrase(done) == "press-07: cycle complete (30 s)"
    run.feed(event("CONTROLLER_MODE", "mode", "MANUAL_DATA_INPUT"), at=40)
    run.feed(event("EXECUTION", "exec", "ACTIVE"), at=41)
    assert run.feed(event("EXECUTION", "exec", "PROGRAM_COMPLETED"), at=50) == []  # not AUTO


def test_a_completion_whose_start_was_not_seen_and_an_unknown_program_say_nothing() -> None:
    run = Runner(make(Cycles))
    run.feed(event("PROGRAM", "prog", "O1"), at=0)
    assert run.feed(event("EXECUTION", "exec", "PROGRAM_COMPLETED"), at=1) == []
    run.feed({"prog": None, "mtconnect": {**event("PROGRAM", "prog", "")["mtconnect"],
                                          "unavailable": True}}, at=2)
    run.feed(event("EXECUTION", "exec", "ACTIVE"), at=3)
    (done,) = run.feed(event("EXECUTION", "exec", "PROGRAM_COMPLETED"), at=13)
    assert done.fields["program"] is None and phrase(done) == "press-07: cycle complete (10 s)"


def test_a_current_that_leaves_an_alarm_out_clears_it_once_per_read() -> None:
    def snapshot(at: str) -> dict[str, Any]:
        data = cond("FAULT", "MOT-OVR")
        data["mtconnect"].update(active=["MOT-OVR"], active_at=at)
        return data

    run = Runner(make(Conditions))
    run.feed(cond("WARNING", "MOT-WARN"), at=0)
    run.feed(cond("FAULT", "MOT-OVR"), at=0)
    (first,) = run.feed(snapshot("1:100"), at=60, position="1:652")
    assert first.fields["native_code"] == "MOT-WARN" and first.relation == "resolution"
    run.feed(cond("WARNING", "MOT-WARN"), at=70)  # it comes back, and clears unseen again
    (second,) = run.feed(snapshot("1:200"), at=80, position="1:652")  # the same old Fault
    assert second.id != first.id  # so the store does not drop the second clear as a copy


def test_builtin_detectors_read_the_fields_and_unavailable_is_no_reading() -> None:
    from datetime import UTC, datetime

    from floorstream_mtconnect.documents import Observation
    from floorstream_mtconnect.observations import to_change

    from floorstream.detectors.state_change import StateChange
    from floorstream.detectors.threshold import Threshold

    def data(element: str, item: str, name: str, value: str, category: str) -> dict[str, Any]:
        obs = Observation(1, "2024-01-01T00:00:00Z", item, name, element, category, value,
                          "SimpleCnc", "Device", "x872a3490")
        return to_change("cnc", obs, "1:1", item=None, attrs={},
                         observed_at=datetime.now(UTC)).data

    avail = Runner(make(StateChange, field="avail", normal=["AVAILABLE"]))
    avail.feed(data("Availability", "d5b078a0", "avail", "AVAILABLE", "EVENT"), at=0)
    (gone,) = avail.feed(data("Availability", "d5b078a0", "avail", "UNAVAILABLE", "EVENT"),
                         at=5)
    assert phrase(gone) == "press-07 unavailable (was available)"
    load = Runner(make(Threshold, field="Sload", above=95, clear_below=85))
    (high,) = load.feed(data("Load", "r1841b70", "Sload", "97", "SAMPLE"), at=0)
    assert load.feed(data("Load", "r1841b70", "Sload", "UNAVAILABLE", "SAMPLE"), at=1) == []
    (back,) = load.feed(data("Load", "r1841b70", "Sload", "40", "SAMPLE"), at=2)
    assert back.clears == high.id  # the limit cleared by a reading, not by UNAVAILABLE
