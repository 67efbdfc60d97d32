"""``field_change``: before → after for tracked fields, created and deleted records."""

from __future__ import annotations

from floorstream.detectors.field_change import FieldChange
from floorstream.model import Severity
from floorstream.testing.detectors import DetectorConformance, Runner, make, phrase

OPTIONS = {"fields": ["state", "date_planned_start"],
           "labels": {"state": "status", "date_planned_start": "planned start"},
           "field_severity": {"date_planned_start": "notice"}}


class TestFieldChangeConformance(DetectorConformance):
    """The detector kit's contract (floorstream.testing.detectors) on the builtin: the first
    reading is the baseline, each later changed field one event."""

    detector = FieldChange
    options = OPTIONS
    readings = [{"state": "confirmed", "date_planned_start": "2026-11-02 06:00"},
                {"state": "progress", "date_planned_start": "2026-11-02 06:00"},
                {"state": "done", "date_planned_start": "2026-11-03 14:00"}]


def _row(state: str, start: str = "2026-11-02 06:00", qty: int = 5) -> dict[str, object]:
    return {"id": 42, "name": "WH/MO/00042", "state": state, "date_planned_start": start,
            "qty": qty}


def test_with_before_each_changed_tracked_field_is_one_event() -> None:
    run = Runner(make(FieldChange, **OPTIONS))
    events = run.feed(_row("progress", "2026-11-02 14:00", qty=9), kind="row.updated",
                      before=_row("confirmed"), position="w1", subject="WH/MO/00042")
    assert [e.fields["field"] for e in events] == ["state", "date_planned_start"]
    state, start = events
    assert (state.fields["before"], state.fields["after"]) == ("confirmed", "progress")
    assert state.severity is Severity.INFO and start.severity is Severity.NOTICE
    assert state.id != start.id  # one id per field, from the same position
    assert phrase(state) == "WH/MO/00042: status confirmed → progress"
    assert phrase(start) == ("WH/MO/00042: planned start 2026-11-02 06:00 → "
                                      "2026-11-02 14:00")


def test_untracked_fields_and_unchanged_values_say_nothing() -> None:
    run = Runner(make(FieldChange, **OPTIONS))
    assert run.feed(_row("confirmed", qty=9), kind="row.updated",
                    before=_row("confirmed", qty=5)) == []


def test_without_before_the_last_seen_values_are_the_before() -> None:
    run = Runner(make(FieldChange, **OPTIONS))
    assert run.feed(_row("confirmed"), kind="row.updated", position="w1") == []  # baseline
    (event,) = run.feed(_row("progress"), kind="row.updated", position="w2")
    assert (event.fields["before"], event.fields["after"]) == ("confirmed", "progress")
    assert run.feed(_row("progress"), kind="row.updated", position="w3") == []
    (done,) = run.feed(_row("done"), kind="row.updated", position="w4")
    assert done.fields["before"] == "progress"


def test_created_and_deleted_records() -> None:
    run = Runner(make(FieldChange, **OPTIONS))
    (created,) = run.feed(_row("draft"), kind="row.created", position="c1")
    assert created.type == "record.created" and created.fields["values"]["state"] == "draft"
    assert phrase(created) == "press-07 created"
    (deleted,) = run.feed({"id": 42}, kind="row.deleted", position="d1")
    assert deleted.type == "record.deleted" and deleted.severity is Severity.NOTICE
    assert deleted.fields["values"]["state"] == "draft"  # what it was, from the state
    assert phrase(deleted) == "press-07 deleted"


def test_created_and_deleted_can_be_switched_off() -> None:
    run = Runner(make(FieldChange, fields=["state"], created=False, deleted=False))
    assert run.feed({"state": "draft"}, kind="row.created") == []
    (event,) = run.feed({"state": "confirmed"}, kind="row.updated")
    assert event.fields["before"] == "draft"
    assert run.feed({}, kind="row.deleted") == []


def test_values_that_are_not_json_are_kept_as_text() -> None:
    from datetime import date
    run = Runner(make(FieldChange, fields=["due"]))
    run.feed({"due": date(2026, 11, 2)}, kind="row.updated")
    (event,) = run.feed({"due": date(2026, 11, 9)}, kind="row.updated")
    assert (event.fields["before"], event.fields["after"]) == ("2026-11-02", "2026-11-09")


def test_a_change_compared_across_polls_says_steps_may_be_missing() -> None:
    """A polled table (cursor, snapshot mode) marks its changes ``_steps``: the post says
    what it compared, as the SAP status mode does; a created record says nothing of it."""
    run = Runner(make(FieldChange, **OPTIONS))
    polled = {"_steps": {"polled_every_s": 5.0}}
    run.feed(_row("confirmed"), kind="row.created", position="w1")
    (event,) = run.feed({**_row("done"), **polled}, kind="row.upserted", position="w2",
                        subject="WH/MO/00042")
    assert phrase(event) == ("WH/MO/00042: status confirmed → done (intermediate states may "
                             "be missing: polled every 5 s)")
    assert (event.fields["intermediate_unseen"], event.fields["changes"],
            event.fields["polled_every_s"]) == (True, None, 5.0)
    (fast,) = run.feed({**_row("progress"), "_steps": {"polled_every_s": 0.25}},
                       kind="row.upserted", position="w3", subject="WH/MO/00042")
    assert phrase(fast) == ("WH/MO/00042: status done → progress (intermediate states may "
                            "be missing: polled every 250 ms)")
    (logged,) = run.feed(_row("done"), kind="row.updated", before=_row("progress"),
                         position="w4", subject="WH/MO/00042")
    assert phrase(logged) == "WH/MO/00042: status progress → done"  # an audit log: each step


def test_a_time_now_labelled_with_its_zone_is_not_a_change() -> None:
    """State kept before times in posts named their zone ("06:00") against the same time
    labelled ("06:00 UTC"): no post; a real change still is one, labelled."""
    run = Runner(make(FieldChange, **OPTIONS))
    run.feed(_row("confirmed", "2 Nov 2026 06:00"), kind="row.created", position="w1")
    assert run.feed(_row("confirmed", "2 Nov 2026 06:00 UTC"), kind="row.upserted",
                    position="w2") == []
    (moved,) = run.feed(_row("confirmed", "3 Nov 2026 06:00 UTC"), kind="row.upserted",
                        position="w3", subject="WH/MO/00042")
    assert phrase(moved) == "WH/MO/00042: planned start 2 Nov 2026 06:00 UTC → 3 Nov 2026 06:00 UTC"
