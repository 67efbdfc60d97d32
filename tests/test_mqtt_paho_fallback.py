"""The mqtt source end to end in its three client modes, on the local Mosquitto: the fast path,
``fast_path: false``, and the capability check failed (its result forced, the broker untouched).

Every mode must behave the same: QoS 0 and QoS 1 messages each posted exactly once, QoS 1 acked
only after the commit that holds its post, and nothing redelivered after a restart (the broker
had every ack). A failed check is announced by exactly one warning line, however many clients
are made.
"""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from floorstream.adapters.mqtt import connection, fastpath
from floorstream.adapters.mqtt.adapter import MqttAdapter
from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.logs import configure_logging
from floorstream.plugins import build_plugins
from mqtt_support import Publisher, wait_for

pytestmark = pytest.mark.mqtt

T0 = 1_764_057_600_000
COUNT = 20  # messages per QoS


@pytest.fixture(params=["fast", "fast_path_false", "check_failed"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fast" and not fastpath.FAST_PATH_AVAILABLE:
        pytest.skip(f"no fast path: {fastpath.FAST_PATH_PROBLEM}")
    if request.param == "check_failed":
        monkeypatch.setattr(fastpath, "FAST_PATH_AVAILABLE", False)
        monkeypatch.setattr(fastpath, "FAST_PATH_PROBLEM", "forced by the test")
        monkeypatch.setattr(connection, "_warned", False)
    mode: str = request.param
    return mode


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    yield stream
    structlog.reset_defaults()


class Acks:
    """Counts the adapter's ack callbacks and what the pipeline had committed when each ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.daemon: Daemon | None = None
        self.made = 0
        #: committed posts at the moment of each ack, in order
        self.committed_at_ack: list[int] = []
        original = connection.Acker.callback

        def callback(acker: connection.Acker, mid: int, qos: int) -> Callable[[], None]:
            ack = original(acker, mid, qos)
            self.made += 1

            def counted() -> None:
                assert self.daemon is not None
                self.committed_at_ack.append(self.daemon.pipeline.committed_posts)
                ack()
            return counted

        monkeypatch.setattr(connection.Acker, "callback", callback)


def _config(store: str, host: str, port: int, prefix: str, client_id: str, protocol: str,
            mode: str) -> Any:
    return parse_config(f"""
store: {store}
flood: null
pipeline: {{batch_wait_ms: 1}}
sources:
  - name: plant
    adapter: mqtt
    url: mqtt://{host}:{port}
    protocol: "{protocol}"
    client_id: {client_id}
    fast_path: {"false" if mode == "fast_path_false" else "true"}
    topics:
      - {{filter: "{prefix}/+/+/q0", qos: 0}}
      - {{filter: "{prefix}/+/+/q1", qos: 1}}
    position_field: ts
    detect:
      - threshold: {{field: temp, above: 85, clear_below: 80}}
""", build_plugins(load_entry_points=False))


def _start(config: Any, acks: Acks) -> tuple[Daemon, MqttAdapter]:
    daemon = Daemon(config, build_plugins(load_entry_points=False))
    acks.daemon = daemon
    daemon.start()
    adapter = wait_for(lambda: daemon._adapters.get("plant"))
    assert isinstance(adapter, MqttAdapter)
    wait_for(adapter.connected.is_set)
    return daemon, adapter


def _reading(ts: int, temp: float) -> bytes:
    return json.dumps({"ts": ts, "temp": temp}).encode()


def _subjects(daemon: Daemon) -> Counter[str]:
    return Counter(p.subject for p in daemon.store.feed("general", limit=10_000))


def _forget_session(host: str, port: int, client_id: str, protocol: str) -> None:
    """A clean connect under the test's client id: the broker drops the session we left."""
    if protocol == "5":
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        client.connect(host, port, clean_start=True)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=True)
        client.connect(host, port)
    client.loop_start()
    try:
        wait_for(client.is_connected)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_qos0_and_qos1_posted_once_acked_after_commit_and_not_redelivered(
        mqtt_broker: tuple[str, int], topic_prefix: str, tmp_path: Path, mode: str,
        protocol: str, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    host, port = mqtt_broker
    client_id = f"fs-fallback-{uuid.uuid4().hex[:10]}"
    config = _config(f"sqlite:///{tmp_path}/fs.db", host, port, topic_prefix, client_id,
                     protocol, mode)
    acks = Acks(monkeypatch)
    publisher = Publisher(host, port)
    daemons: list[Daemon] = []
    try:
        daemon, adapter = _start(config, acks)
        daemons.append(daemon)
        expected = connection.FastClient if mode == "fast" else connection.Client
        assert type(adapter.client) is expected

        def probe() -> int:
            """Subscribed once a (cold, unacked) QoS 0 probe gets through: both filters are
            in the one SUBSCRIBE packet."""
            publisher.publish(f"{topic_prefix}/press/probe/q0", _reading(T0, 20.0), qos=0)
            return adapter.received

        wait_for(probe, interval=0.1)

        publisher.publish_all([(f"{topic_prefix}/press/q1-{n:02d}/q1", _reading(T0 + n, 95.0))
                               for n in range(COUNT)], qos=1)
        wait_for(lambda: len(acks.committed_at_ack) >= COUNT)
        # every ack ran after the commit of its message's post: the i-th ack saw i posts
        assert acks.made == COUNT
        assert all(committed >= n for n, committed in enumerate(acks.committed_at_ack, 1))
        publisher.publish_all([(f"{topic_prefix}/press/q0-{n:02d}/q0", _reading(T0 + n, 95.0))
                               for n in range(COUNT)], qos=0)
        expected_subjects = Counter({f"q{qos}-{n:02d}": 1 for qos in (0, 1)
                                     for n in range(COUNT)})
        wait_for(lambda: sum(_subjects(daemon).values()) >= 2 * COUNT)
        assert _subjects(daemon) == expected_subjects
        assert acks.made == COUNT  # QoS 0 is never acked

        daemons.pop().stop(10)  # a clean stop: the session (and anything unacked) stays
        daemon, adapter = _start(config, acks)
        daemons.append(daemon)
        assert type(adapter.client) is expected
        # the sentinel comes after anything the broker would redeliver
        publisher.publish_all([(f"{topic_prefix}/press/sentinel/q1", _reading(T0, 95.0))])
        wait_for(lambda: _subjects(daemon)["sentinel"])
        assert adapter.received == 1  # the sentinel: every QoS 1 message had been acked
        assert _subjects(daemon) == expected_subjects + Counter({"sentinel": 1})
        wait_for(lambda: acks.made == COUNT + 1 and len(acks.committed_at_ack) == COUNT + 1)
    finally:
        publisher.close()
        for daemon in daemons:
            daemon.stop(10)
        _forget_session(host, port, client_id, protocol)

    events = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    assert sum(e["event"] == "mqtt_connected" for e in events) == 2
    unavailable = [e for e in events if e["event"] == "mqtt_fast_path_unavailable"]
    if mode == "check_failed":  # two clients made, one line
        assert [(e["level"], e["reason"]) for e in unavailable] == [
            ("warning", "forced by the test")]
    else:
        assert unavailable == []
