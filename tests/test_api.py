"""The library API: ``floorstream.open`` → publish / publish_change / feed, no daemon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import floorstream
from floorstream.errors import ConfigError
from floorstream.model import Change, Severity

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def _config(tmp_path: Path) -> dict[str, object]:
    return {
        "store": f"sqlite:///{tmp_path}/fs.db",
        "default_team": "production",
        "teams": {"maintenance": {}, "production": {}, "planning": {}},
        "sources": [{"name": "presses", "adapter": "simulator", "detect": [
            {"threshold": {"field": "temp", "above": 85, "clear_below": 80, "unit": "°C"}}]}],
        "routes": [{"match": {"severity": ">=warning"}, "teams": ["maintenance"]},
                   {"match": {"source": "odoo"}, "teams": ["planning"]}],
    }


def test_open_with_a_store_url_publish_and_feed(store_url: str) -> None:
    with floorstream.open(store=store_url) as stream:
        post = stream.publish(source="odoo", subject="WH/MO/00042",
                              type="record.field_changed", key="mo42-w1",
                              fields={"field": "state", "label": "state",
                                      "before": "Confirmed", "after": "In progress"})
        assert post is not None
        assert post.summary == "WH/MO/00042: state Confirmed → In progress"
        assert post.teams == ("general",)
        again = stream.publish(source="odoo", subject="WH/MO/00042",
                               type="record.field_changed", key="mo42-w1",
                               fields={"field": "state", "label": "state",
                                       "before": "Confirmed", "after": "In progress"})
        assert again is not None and again.id == post.id  # a retry returns the same post
        stream.publish(source="odoo", subject="WH/MO/00043", type="note", key="x",
                       summary="Rush order: ship today", severity="critical")
        feed = stream.feed("general")
        assert [p.summary for p in feed] == ["Rush order: ship today", post.summary]
        assert [p.severity for p in stream.feed("general", min_severity="warning")] == [
            Severity.CRITICAL]
        assert stream.store.count_posts() == 2


def test_without_a_key_the_content_and_time_make_it_idempotent(tmp_path: Path) -> None:
    with floorstream.open(f"sqlite:///{tmp_path}/fs.db") as stream:
        for _ in range(3):
            stream.publish(source="odoo", subject="MO/1", type="note", summary="hello",
                           occurred_at=T0)
        stream.publish(source="odoo", subject="MO/1", type="note", summary="hello",
                       occurred_at=T0 + timedelta(seconds=1))
        assert stream.store.count_posts() == 2


def test_open_a_config_dict_or_file_routes_by_its_rules(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with floorstream.open(config) as stream:
        post = stream.publish(source="odoo", subject="MO/7", type="note", summary="x", key="1")
        assert post is not None and post.teams == ("planning",)
        other = stream.publish(source="crm", subject="C/1", type="note", summary="y", key="1")
        assert other is not None and other.teams == ("production",)  # the default team
    path = tmp_path / "floorstream.yaml"
    import yaml
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with floorstream.open(path) as stream:
        assert [p.summary for p in stream.feed("planning")] == ["x"]
    with floorstream.open(str(path)) as stream:
        assert stream.config.file == str(path)
    with pytest.raises(ConfigError):
        floorstream.open({"store": "sqlite://", "routes": [{"teams": []}]})


def test_publish_change_runs_the_configured_detectors_and_keeps_state(tmp_path: Path) -> None:
    def reading(n: int, temp: float) -> Change:
        return Change(source="presses", subject="press-07", kind="telemetry", position=str(n),
                      occurred_at=T0 + timedelta(seconds=n), data={"temp": temp})

    with floorstream.open(_config(tmp_path)) as stream:
        assert stream.publish_change(reading(1, 80)) == []
        (raised,) = stream.publish_change(reading(2, 91))
        assert raised.type == "metric.limit_exceeded" and raised.teams == ("maintenance",)
        assert raised.summary == "press-07: temp 91 °C, above the 85 °C limit"
        assert stream.publish_change(reading(3, 92)) == []
    # a new process: the raised state comes back from the store, so no second alert
    with floorstream.open(_config(tmp_path)) as stream:
        assert stream.publish_change(reading(4, 93)) == []
        (cleared,) = stream.publish_change(reading(5, 70))
        assert cleared.type == "metric.limit_cleared" and cleared.clears == raised.id
        assert "peak 93 °C" in cleared.summary
        # replaying an already committed change adds nothing
        assert stream.publish_change(reading(2, 91)) == []
        assert stream.store.count_posts() == 2
