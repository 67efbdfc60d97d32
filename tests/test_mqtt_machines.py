"""Settling and the time model end to end on the shared local Mosquitto (issue 12, items 5
and 8): the real daemon, real JSON messages, the posts read back from the store."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from floorstream.plugins import build_plugins
from machines_sim import account, make_shift
from support import DaemonRunner, sentinel, wait_for
from support.mqtt import Publisher, Subscriptions

pytestmark = pytest.mark.mqtt


def _config(store: str, host: str, port: int, prefix: str, states: str, flood: str) -> str:
    return f"""
store: {store}
flood: {flood}
pipeline: {{batch_wait_ms: 1}}
sources:
  - name: plant
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: fs-{prefix.replace('/', '-')}
    topics: ["{prefix}/+/state"]
    subject: "{{topic[-2]}}"
    position_field: n
    time_field: ts
    states: {states}
    detect:
      - state_change: {{field: state, reason: reason}}
      - threshold: {{field: temp, above: 85}}
"""


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], DaemonRunner]]:
    subscriptions = Subscriptions().install(monkeypatch)
    started: list[DaemonRunner] = []

    def start(text: str) -> DaemonRunner:
        runner = DaemonRunner(text, plugins=build_plugins(load_entry_points=False)).start()
        started.append(runner)
        subscriptions.wait("plant")
        return runner

    yield start
    for runner in started:
        runner.close()


def _msg(n: int, ts_ms: int, **data: object) -> bytes:
    return json.dumps({"n": n, "ts": ts_ms, **data}).encode()


def test_holding_then_held_is_one_post(daemon: Callable[[str], DaemonRunner],
                                       mqtt_broker: tuple[str, int], tmp_path: object,
                                       topic_prefix: str) -> None:
    host, port = mqtt_broker
    prefix = topic_prefix
    runner = daemon(_config(f"sqlite:///{tmp_path}/fs.db", host, port, prefix,
                            "{settle: 2s}", "null"))
    publisher = Publisher(host, port)
    try:
        now = int(time.time() * 1000)
        topic = f"{prefix}/filler-3/state"
        publisher.publish_all([
            (topic, _msg(1, now - 10_000, state="EXECUTE")),
            (topic, _msg(2, now - 5_000, state="HOLDING")),
            (topic, _msg(3, now - 4_600, state="HELD", reason="Jam at infeed")),
            (topic, _msg(4, now - 1_000, state="HELD", reason="Jam at infeed")),
        ])
        wait_for(lambda: [p for p in runner.posts() if p.subject == "filler-3"], 15,
                 "the settled post")
        sentinel(lambda: publisher.publish_all([(f"{prefix}/sentinel/state",
                                                 _msg(5, now, temp=99))]),
                 lambda: any(p.subject == "sentinel" for p in runner.posts()))
        posts = [p for p in runner.posts() if p.subject == "filler-3"]
        assert [p.summary for p in posts] == [
            "filler-3 held (via holding, was execute) — Jam at infeed"]
        assert posts[0].fields["transitions"] == 2
    finally:
        publisher.close()


def test_a_shift_replayed_far_faster_than_real_time_loses_no_transition(
        daemon: Callable[[str], DaemonRunner], mqtt_broker: tuple[str, int],
        tmp_path: object, topic_prefix: str) -> None:
    """Two hours of ten machines published as fast as the broker takes them (well over 100×
    real time), with settling, flap detection and a tight flood limit: every raw state change
    is a post or counted in one, and no two posts share an id."""
    host, port = mqtt_broker
    prefix = topic_prefix
    shift = make_shift(machines=10, hours=2.0, changes=12, pauses=0, seed=3)
    runner = daemon(_config(f"sqlite:///{tmp_path}/fs.db", host, port, prefix,
                            "{settle: 45s, flap: {changes: 3, within: 2m, stable: 5m}}",
                            "{max_posts: 3, window: 5m}"))
    publisher = Publisher(host, port)
    try:
        start = int(time.time() * 1000) - 3 * 3600_000  # the shift happened hours ago
        publisher.publish_all(
            (f"{prefix}/{machine}/state", _msg(n, start + int(t * 1000), state=state))
            for n, (t, machine, state) in enumerate(shift.readings))
        # a reading of now: the source's watermark passes every window of the shift
        publisher.publish_all([(f"{prefix}/sentinel/state",
                                _msg(len(shift.readings), int(time.time() * 1000), temp=99))])

        def tally() -> dict[str, int] | None:
            found = account([p for p in runner.posts() if p.subject != "sentinel"])
            return found if found["total"] == shift.transitions else None

        found = wait_for(tally, 30, "every transition posted or counted")
        assert found is not None and found.get("flapping", 0) > 0 and found["posted"] > 0
        posts = runner.posts()
        assert len({p.id for p in posts}) == len(posts)
    finally:
        publisher.close()
