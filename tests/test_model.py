"""The three records: frozen, ordered severities, deterministic ids, valid Activity Streams."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from floorstream.model import Change, Event, Post, Severity, event_id

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
AS_NS = "https://www.w3.org/ns/activitystreams"
WHEN = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def _post(**overrides: object) -> Post:
    values: dict[str, object] = {
        "id": event_id("presses", "press-07", "12", "machine.state_changed"),
        "type": "machine.state_changed", "source": "presses", "subject": "press-07",
        "summary": "press-07 stopped (was running)", "severity": Severity.WARNING,
        "teams": ("maintenance", "production"), "tags": ("area:pressing",),
        "occurred_at": WHEN, "fields": {"before": "RUNNING", "after": "STOPPED"},
    }
    values.update(overrides)
    return Post.model_validate(values)


def test_severities_are_ordered() -> None:
    assert Severity.INFO < Severity.NOTICE < Severity.WARNING < Severity.CRITICAL
    assert sorted([Severity.CRITICAL, Severity.INFO, Severity.WARNING]) == [
        Severity.INFO, Severity.WARNING, Severity.CRITICAL]
    assert max(Severity) is Severity.CRITICAL


@pytest.mark.parametrize(("given", "expected"), [
    ("warning", Severity.WARNING), ("WARNING", Severity.WARNING), (" Notice ", Severity.NOTICE),
    (40, Severity.CRITICAL), (Severity.INFO, Severity.INFO),
])
def test_severity_parse_accepts_config_and_api_spellings(given: str | int,
                                                        expected: Severity) -> None:
    assert Severity.parse(given) is expected


def test_severity_parse_rejects_unknown_names_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown severity 'urgent'.*info, notice, warning"):
        Severity.parse("urgent")
    with pytest.raises(ValueError):
        Severity.parse(35)


def test_severity_label_is_lowercase_name() -> None:
    assert [s.label for s in Severity] == ["info", "notice", "warning", "critical"]


def test_event_id_is_deterministic_and_depends_on_every_part() -> None:
    base = event_id("presses", "press-07", "12", "machine.state_changed")
    assert base == event_id("presses", "press-07", "12", "machine.state_changed")
    assert re.fullmatch(r"[0-9a-f]{32}", base)
    variants = {
        event_id("presses2", "press-07", "12", "machine.state_changed"),
        event_id("presses", "press-08", "12", "machine.state_changed"),
        event_id("presses", "press-07", "13", "machine.state_changed"),
        event_id("presses", "press-07", "12", "machine.offline"),
    }
    assert base not in variants and len(variants) == 4


def test_event_id_parts_cannot_run_into_each_other() -> None:
    assert event_id("ab", "c", "1", "t") != event_id("a", "bc", "1", "t")
    assert event_id("s", "x", "12", "t") != event_id("s", "x1", "2", "t")


def test_event_create_fills_the_id() -> None:
    event = Event.create(type="metric.limit_exceeded", source="s", subject="m", position="7",
                         occurred_at=WHEN)
    assert event.id == event_id("s", "m", "7", "metric.limit_exceeded")
    assert event.severity is Severity.INFO


@pytest.mark.parametrize("record", [
    Change(source="s", subject="m", kind="telemetry", position="1", data={"a": 1}),
    Event.create(type="t", source="s", subject="m", position="1", occurred_at=WHEN),
    Post(id="x", type="t", source="s", subject="m", summary="hi", occurred_at=WHEN),
])
def test_records_are_frozen(record: Change | Event | Post) -> None:
    with pytest.raises(ValidationError):
        record.subject = "other"  # type: ignore[misc]


def test_records_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Change(source="s", subject="m", kind="k", position="1", colour="red")  # type: ignore[call-arg]


def test_naive_times_are_taken_as_utc_and_when_prefers_source_time() -> None:
    naive = datetime(2026, 11, 2, 6, 0)
    change = Change(source="s", subject="m", kind="k", position="1", observed_at=naive)
    assert change.observed_at == WHEN and change.observed_at.tzinfo is not None
    assert change.when == WHEN
    later = Change(source="s", subject="m", kind="k", position="1", observed_at=naive,
                   occurred_at=naive - timedelta(minutes=5))
    assert later.when == WHEN - timedelta(minutes=5)
    assert Change(source="s", subject="m", kind="k", position="1").observed_at.tzinfo


def test_summary_is_limited_to_200_characters() -> None:
    assert len(_post(summary="x" * 200).summary) == 200
    with pytest.raises(ValidationError, match="200"):
        _post(summary="x" * 201)


def test_as_activity_is_activity_streams_2() -> None:
    post = _post(links={"work order": "https://erp.example/mo/42"}, clears="abc")
    activity = post.as_activity()
    decoded = json.loads(json.dumps(activity))  # JSON serialisable as is
    assert decoded == activity
    context = activity["@context"]
    assert context == AS_NS or (isinstance(context, list) and AS_NS in context)
    assert activity["type"] == "Announce"
    assert activity["id"].endswith(post.id)
    assert activity["actor"]["type"] == "Application" and activity["actor"]["name"] == "presses"
    obj = activity["object"]
    assert obj["type"] == "Note" and obj["name"] == "press-07"
    assert obj["content"] == post.summary
    assert activity["summary"] == post.summary
    assert RFC3339.match(activity["published"]), activity["published"]
    assert datetime.fromisoformat(activity["published"].replace("Z", "+00:00")) == WHEN
    assert RFC3339.match(activity["updated"])
    assert [t["name"] for t in activity["target"]] == ["maintenance", "production"]
    assert all(t["type"] == "Collection" for t in activity["target"])
    assert activity["url"] == [{"type": "Link", "href": "https://erp.example/mo/42",
                                "name": "work order"}]
    assert activity["inReplyTo"].endswith("abc")
    assert activity["floorstream:severity"] == "warning"


def test_as_activity_published_keeps_offsets_rfc3339() -> None:
    cet = timezone(timedelta(hours=1))
    activity = _post(occurred_at=datetime(2026, 11, 2, 7, 0, 0, 123456, tzinfo=cet),
                     fields={"when": datetime(2026, 1, 1)}).as_activity()
    assert RFC3339.match(activity["published"])
    assert datetime.fromisoformat(activity["published"]) == WHEN + timedelta(microseconds=123456)
    json.dumps(activity)  # a datetime in fields must not break serialisation
    assert activity["floorstream:fields"]["when"].startswith("2026-01-01")
