"""No loss at QoS 1: a daemon killed with SIGKILL mid-stream, and a broker restarted under a
running daemon. Both on a private Mosquitto (the shared one is never restarted), with unbounded
queues so the broker itself drops nothing while the daemon is away."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from floorstream.plugins import build_plugins
from floorstream.store.store import Store
from support import DaemonRunner, sentinel, wait_for
from support.mqtt import PrivateBroker, Publisher

pytestmark = pytest.mark.mqtt

T0 = 1_764_057_600_000
MACHINES = 10
READINGS = 600
FLIP_EVERY = 60  # state flips at 60, 120, … 540: 9 posts per machine


def _stream(prefix: str) -> list[tuple[str, bytes]]:
    messages = []
    for i in range(READINGS):
        for m in range(MACHINES):
            state = "STOPPED" if (i // FLIP_EVERY) % 2 else "RUNNING"
            payload = {"ts": T0 + i * 1000 + m, "state": state, "temp": 70.0}
            messages.append((f"{prefix}/press/m{m:02d}/telemetry", json.dumps(payload).encode()))
    return messages


def _expected() -> set[tuple[str, int]]:
    flips = range(FLIP_EVERY, READINGS, FLIP_EVERY)
    return {(f"m{m:02d}", T0 + i * 1000 + m) for m in range(MACHINES) for i in flips}


def _config(store: str, port: int, prefix: str) -> str:
    return f"""
store: {store}
flood: null
logging: {{level: warning}}
pipeline: {{batch_wait_ms: 1}}
sources:
  - name: presses
    adapter: mqtt
    url: mqtt://127.0.0.1:{port}
    client_id: fs-recovery
    qos: 1
    reconnect_min: 0.5
    reconnect_max: 1
    topics: ["{prefix}/+/+/telemetry"]
    position_field: ts
    time_field: ts
    detect:
      - state_change: {{field: state}}
"""


def _posted(store: Store) -> list[tuple[str, int]]:
    return [(p.subject, round(p.occurred_at.timestamp() * 1000))
            for p in store.feed("general", limit=10_000) if p.subject != "sentinel"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


def _sentinel(publisher: Publisher, prefix: str, store: Store) -> None:
    """A state flip of a sentinel machine behind the stream: once it is posted, everything
    queued before it (a redelivered duplicate too) has been handled."""
    topic = f"{prefix}/press/sentinel/telemetry"
    flip = [(topic, json.dumps({"ts": T0 + n, "state": state, "temp": 70.0}).encode())
            for n, state in enumerate(("RUNNING", "STOPPED"))]
    sentinel(lambda: publisher.publish_all(flip),
             lambda: any(p.subject == "sentinel" for p in store.feed("general", limit=10)),
             timeout=30)


def test_sigkill_mid_stream_then_restart_posts_every_event_exactly_once(
        broker: PrivateBroker, tmp_path: Path, topic_prefix: str) -> None:
    url = f"sqlite:///{tmp_path}/fs.db"
    with DaemonRunner(_config(url, broker.port, topic_prefix), process=True,
                      workdir=tmp_path) as daemon:
        daemon.start()
        store = daemon.store
        # the daemon's subscription must exist before publishing, or QoS 1 has nobody to queue
        # for: a CONNACK comes a moment before the SUBSCRIBE, longer on a busy machine
        broker.wait_subscriptions(1, timeout=60)
        publisher = Publisher("127.0.0.1", broker.port)
        messages = _stream(topic_prefix)
        feeder = threading.Thread(target=publisher.publish_paced, args=(messages, 4000.0))
        feeder.start()
        wait_for(lambda: len(_posted(store)) >= 10, timeout=30, interval=0.01)
        daemon.kill()
        at_kill = len(_posted(store))
        feeder.join(60)
        assert at_kill < len(_expected()), "the kill must come mid-stream"
        daemon.start()
        wait_for(lambda: len(_posted(store)) >= len(_expected()), timeout=60)
        _sentinel(publisher, topic_prefix, store)
        publisher.close()
        posted = _posted(store)
        assert len(posted) == len(set(posted)) == len(_expected())
        assert set(posted) == _expected()
        daemon.stop()


def test_broker_restart_reconnects_and_loses_nothing_at_qos1(
        broker: PrivateBroker, tmp_path: Path, topic_prefix: str) -> None:
    url = f"sqlite:///{tmp_path}/fs.db"
    with DaemonRunner(_config(url, broker.port, topic_prefix),
                      plugins=build_plugins(load_entry_points=False)) as daemon:
        daemon.start()
        store = daemon.store
        adapter = daemon.adapter("presses")
        wait_for(lambda: adapter.connected.is_set())
        messages = _stream(topic_prefix)
        half = len(messages) // 2
        publisher = Publisher("127.0.0.1", broker.port)
        publisher.publish_all(messages[:half])
        publisher.close()
        broker.stop()  # SIGTERM: mosquitto saves the daemon's session and its queue
        assert broker.saved, "the broker must have written its persistence file"
        assert len(_posted(store)) < len(_expected())
        wait_for(lambda: not adapter.connected.is_set())
        broker.start()
        wait_for(lambda: adapter.connected.is_set(), timeout=20)
        publisher = Publisher("127.0.0.1", broker.port)
        publisher.publish_all(messages[half:])
        wait_for(lambda: len(_posted(store)) >= len(_expected()), timeout=30)
        _sentinel(publisher, topic_prefix, store)
        publisher.close()
        posted = _posted(store)
        assert len(posted) == len(set(posted)) and set(posted) == _expected()
