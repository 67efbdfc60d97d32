"""The mqtt adapter end to end on the shared local Mosquitto: plain JSON telemetry through the
real daemon into the store, and bad input quarantined while good messages keep flowing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from floorstream.model import Post
from support import DaemonRunner, sentinel
from support.mqtt import Publisher, subscribed_daemons

pytestmark = pytest.mark.mqtt


def _config(store: str, host: str, port: int, prefix: str, extra: str = "") -> str:
    return f"""
store: {store}
flood: null
pipeline: {{batch_wait_ms: 1}}
teams: {{maintenance: {{}}, paint: {{}}}}
routes:
  - match: {{attrs: {{area: press}}}}
    teams: [maintenance]
  - match: {{attrs: {{area: paint}}}}
    teams: [paint]
sources:
  - name: plant
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: fs-{prefix.replace('/', '-')}
    topics: ["{prefix}/+/+/telemetry"]
    subject: "{{topic[-2]}}"
    attrs: {{area: "{{topic[-3]}}", site: berlin}}
    position_field: ts
    time_field: ts
    detect:
      - state_change: {{field: state, normal: [RUNNING], severity: {{FAULT: critical}}}}
      - threshold: {{field: spindle_temp, above: 85, clear_below: 80, unit: "°C"}}
{extra}
"""


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], DaemonRunner]]:
    """Starts a daemon on a config; returns once its mqtt source is subscribed."""
    yield from subscribed_daemons(monkeypatch, "plant")


def _sentinel(publisher: Publisher, prefix: str, runner: DaemonRunner) -> None:
    """A hot reading of a sentinel press behind the input; once it is posted, everything
    published before it has been handled."""
    sentinel(lambda: publisher.publish_all([(f"{prefix}/press/sentinel/telemetry",
                                             _reading("sentinel", 1, temp=99.0))]),
             lambda: any(p.subject == "sentinel" for p in runner.posts()))


def _plant(runner: DaemonRunner, *teams: str) -> list[Post]:
    """The posts of the machines under test (oldest first), the sentinel's left out."""
    return [p for p in runner.posts(*teams) if p.subject != "sentinel"]


def _reading(machine: str, ts: int, state: str = "RUNNING", temp: float = 70.0) -> bytes:
    return json.dumps({"machine": machine, "ts": ts, "state": state,
                       "spindle_temp": temp}).encode()


def test_json_telemetry_becomes_posts_routed_by_area(
        mqtt_broker: tuple[str, int], topic_prefix: str, sqlite_url: str,
        daemon: Callable[[str], DaemonRunner]) -> None:
    host, port = mqtt_broker
    runner = daemon(_config(sqlite_url, host, port, topic_prefix))
    base = 1_764_057_600_000
    messages: list[tuple[str, bytes]] = []
    for i in range(40):  # 10 readings a second: only the changes may become posts
        state = "STOPPED" if 20 <= i < 30 else "RUNNING"
        messages.append((f"{topic_prefix}/press/press-07/telemetry",
                         _reading("press-07", base + i * 100, state)))
        temp = 90.0 if 10 <= i < 25 else 72.0
        messages.append((f"{topic_prefix}/paint/oven-2/telemetry",
                         _reading("oven-2", base + i * 100, temp=temp)))
    publisher = Publisher(host, port)
    try:
        publisher.publish_all(messages)
        _sentinel(publisher, topic_prefix, runner)
    finally:
        publisher.close()
    maintenance = _plant(runner, "maintenance")
    paint = _plant(runner, "paint")
    assert [p.summary for p in maintenance] == [
        "press-07 stopped (was running)", "press-07 running again after 1 s"]
    assert [p.type for p in paint] == ["metric.limit_exceeded", "metric.limit_cleared"]
    assert "oven-2: spindle temp 90 °C, above the 85 °C limit" in paint[0].summary
    assert "area:paint" in paint[0].tags and "site:berlin" in paint[0].tags
    # occurred_at comes from the payload's ts, not from the arrival time
    assert int(maintenance[0].occurred_at.timestamp() * 1000) == base + 2000
    assert len(_plant(runner)) == 4  # nothing else: the readings between changes say nothing


def test_bad_input_is_quarantined_and_good_messages_keep_flowing(
        mqtt_broker: tuple[str, int], topic_prefix: str, sqlite_url: str,
        daemon: Callable[[str], DaemonRunner]) -> None:
    host, port = mqtt_broker
    extra = "    types: {spindle_temp: number, state: string}\n    max_payload: 400\n"
    runner = daemon(_config(sqlite_url, host, port, topic_prefix, extra))
    topic = f"{topic_prefix}/press/press-08/telemetry"
    base = 1_764_057_600_000
    bad = [b'{"machine": "press-08", "ts": 1, "state": ', b"[1, 2, 3]",
           json.dumps({"ts": 2, "state": "RUNNING", "spindle_temp": "hot"}).encode(),
           json.dumps({"ts": 3, "state": "RUNNING", "pad": "x" * 500}).encode(),
           b"\xff\xfe not utf-8"]
    messages: list[tuple[str, bytes]] = [(topic, _reading("press-08", base, "RUNNING"))]
    for i, payload in enumerate(bad):
        messages.append((topic, payload))
        messages.append((topic, _reading("press-08", base + 1 + i,
                                         "FAULT" if i % 2 == 0 else "RUNNING")))
    publisher = Publisher(host, port)
    try:
        publisher.publish_all(messages)
        _sentinel(publisher, topic_prefix, runner)
    finally:
        publisher.close()
    rows = runner.store.quarantined(source="plant")
    assert len(rows) == 5
    raws = {bytes(r.raw) for r in rows}
    assert bad[0] in raws and bad[1] in raws and bad[2] in raws and bad[4] in raws
    errors = " | ".join(r.error for r in rows)
    assert "invalid JSON" in errors and "expected a JSON object" in errors
    assert "should be a number" in errors and "exceeds max_payload 400" in errors
    # the oversized payload keeps its first max_payload bytes
    assert any(len(r.raw) == 400 for r in rows)
    posts = _plant(runner, "maintenance")
    assert [p.summary for p in posts][:2] == [
        "press-08 fault (was running)", "press-08 running again after 0 s"]
    assert len(posts) == 5
