"""Poison over MQTT: every bad message is quarantined with its payload and a reason, logged as one
warning (no traceback), and the source goes on — for the json decoder, the value decoder and
Sparkplug B. Also: a payload without the configured ``position_field`` is refused (an arrival
time would make each redelivery look new), and a topic that is not UTF-8 costs its message, not
paho's network thread.

Real daemon, real PostgreSQL (where a NUL, a lone surrogate, an integer beyond 64 bits, a year-1
date or a 300-character subject used to fail every commit after it), the local Mosquitto.
A marker behind the poison on every source proves the source kept flowing and that nothing
else was posted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import structlog
from sqlalchemy import select

from floorstream.adapters.mqtt.sparkplug_b import encode_payload
from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins
from floorstream.store import schema
from support.mqtt import Publisher
from support.waiting import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]

T0 = 1_764_057_600_000


def _reading(seq: int, **fields: Any) -> bytes:
    return json.dumps({"seq": seq, "ts": T0 + seq, "state": "RUNNING", "temp": 70.0,
                       **fields}).encode()


def _raw(seq: int, tail: bytes) -> bytes:
    """A reading with ``tail`` spliced in as its last member (what json.dumps cannot write)."""
    return _reading(seq)[:-1] + b"," + tail + b"}"


#: topic level → (payload, a phrase of the quarantine reason); on the json source
JSON_POISON: dict[str, tuple[bytes, str]] = {
    "deep": (b'{"seq":1,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
             "nested deeper than 64 levels"),
    "deep300": (b'{"seq":2,"x":' + b"[" * 300 + b"]" * 300 + b"}", "nested deeper"),
    "huge-int": (_raw(3, b'"n":' + b"7" * 5_000), "4300 digits"),
    "float-overflow": (_raw(4, b'"temp":' + b"8" * 400), "out of range"),
    "ts-overflow": (_reading(5, ts=1e300), "time field 'ts' is out of range"),
    "ts-year-1": (_reading(6, ts="0001-01-01T00:00:00+14:00"), "out of range"),
    "ts-1850": (_reading(7, ts="1850-01-01T00:00:00"), "out of range"),
    "ts-nan": (_raw(8, b'"ts":NaN'), "out of range"),
    "surrogate": (_reading(9, state="\ud800"), "lone surrogate"),  # written as "\ud800"
    "surrogate-bytes": (_raw(10, b'"note":"\xed\xa0\x80"'), "lone surrogate"),
    "surrogate-key": (_raw(11, b'"\\udc00":1'), "lone surrogate"),
    "nul": (_reading(12, state="RUN\x00NING"), "NUL"),
    "bad-utf8": (_raw(13, b'"note":"\xff\xfe"'), "invalid JSON"),
    "no-position": (json.dumps({"ts": T0, "state": "RUNNING"}).encode(),
                    "missing position field 'seq'"),
    "null-position": (json.dumps({"seq": None, "state": "RUNNING"}).encode(),
                      "missing position field 'seq'"),
    "object-position": (json.dumps({"seq": {"n": 1}, "state": "RUNNING"}).encode(),
                        "position field 'seq' is not a number or a string"),
    "x" * 300: (_reading(14), "more than 255"),
}
#: well-formed though odd: posted or learnt, never quarantined
JSON_FINE: dict[str, bytes] = {
    # beyond 64 bits: read as a float on both of the decoder's paths (orjson does it anyway)
    "long-int": _raw(20, b'"temp":123456789012345678901234567890'),
    "long-int-json-path": _raw(21, b'"temp":223456789012345678901234567890,"aux":NaN'),
    "long-int-state": _raw(22, b'"state":323456789012345678901234567890,"aux":NaN'),
    "emoji": _raw(23, b'"note":"\\ud83d\\ude00","temp":90'),
}
VALUE_POISON: dict[str, tuple[bytes, str]] = {
    "v-huge": (b"9" * 5_000, "too long"),
    "v-float-overflow": (b"9" * 400, "out of range"),
    "v-nul": (b"99\x00", "NUL"),
    "v-bad-utf8": (b"\xff\xfe99", "not UTF-8"),
    "v-empty": (b"  ", "empty payload"),
}


def _spb(metrics: list[dict[str, Any]], timestamp: int = T0) -> bytes:
    return encode_payload(metrics, timestamp=timestamp, seq=0)


_GOOD_SPB = _spb([{"name": "State", "datatype": "String", "value": "RUNNING"},
                  {"name": "temp", "datatype": "Double", "value": 70.0}])
#: Sparkplug device → (payload, reason)
SPB_POISON: dict[str, tuple[bytes, str]] = {
    "d-bad-name": (_GOOD_SPB.replace(b"State", b"St\xffte"), "metric name is not UTF-8"),
    "d-nul": (_GOOD_SPB.replace(b"RUNNING", b"RUNN\x00NG"), "NUL"),
    "d-time": (_spb([{"name": "temp", "datatype": "Double", "value": 1.0}], 2 ** 63),
               "payload timestamp 9223372036854775808 is out of range"),
    "d-garbage": (b"\x0a\xff\xff\x03garbage", "not a Sparkplug B payload"),
}


@dataclass
class Plant:
    daemon: Daemon
    publisher: Publisher
    prefix: str
    group: str
    logs: list[Any]

    def posts(self) -> dict[str, set[str]]:
        p = schema.posts
        with self.daemon.store.engine.connect() as conn:
            rows = conn.execute(select(p.c.source, p.c.subject)).all()
        found: dict[str, set[str]] = {}
        for source, subject in rows:
            found.setdefault(source, set()).add(subject)
        return found

    def quarantined(self) -> list[Any]:
        q = schema.quarantine
        with self.daemon.store.engine.connect() as conn:
            return list(conn.execute(select(q.c.source, q.c.error, q.c.raw, q.c.context)))

    def markers(self) -> None:
        """A good message behind everything on every source; wait until each is posted."""
        self.publisher.publish_all([
            (f"{self.prefix}/plant/marker", _reading(999, temp=99.0)),
            (f"{self.prefix}/gauge/marker", b"99"),
            (f"spBv1.0/{self.group}/DDATA/n1/marker",
             _spb([{"name": "temp", "datatype": "Double", "value": 99.0}]))])
        wait_for(lambda: all("marker" in self.posts().get(s, ()) for s in
                             ("plant", "gauge", "sp")), 30, "the three markers' posts")


@pytest.fixture
def plant(mqtt_broker: tuple[str, int], topic_prefix: str, pg_url: str) -> Iterator[Plant]:
    host, port = mqtt_broker
    group = topic_prefix.replace("/", "-")
    client = topic_prefix.replace("/", "-")
    text = f"""
store: {pg_url}
flood: null
default_team: everyone
pipeline: {{batch_wait_ms: 1}}
sources:
  - name: plant
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: {client}-plant
    topics: ["{topic_prefix}/plant/+"]
    subject: "{{topic[-1]}}"
    position_field: seq
    time_field: ts
    types: {{temp: number}}
    detect:
      - state_change: {{field: state}}
      - threshold: {{field: temp, above: 80}}
  - name: gauge
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: {client}-gauge
    decode: value
    topics: ["{topic_prefix}/gauge/+"]
    subject: "{{topic[-1]}}"
    detect:
      - threshold: {{field: value, above: 80}}
  - name: sp
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: {client}-sp
    decode: sparkplug
    topics: ["spBv1.0/{group}/#"]
    detect:
      - state_change: {{field: State}}
      - threshold: {{field: temp, above: 80}}
"""
    plugins = build_plugins(load_entry_points=False)
    daemon = Daemon(parse_config(text, plugins), plugins)
    with structlog.testing.capture_logs() as logs:
        daemon.start()
        publisher: Publisher | None = None
        try:
            for name in ("plant", "gauge", "sp"):
                adapter = wait_for(lambda n=name: daemon._adapters.get(n), 10)
                wait_for(lambda a=adapter: a.connected.is_set(), 10)  # type: ignore[attr-defined]
            publisher = Publisher(host, port)
            yield Plant(daemon, publisher, topic_prefix, group, logs)
        finally:
            if publisher is not None:
                publisher.close()
            daemon.stop()


def _errors(logs: list[Any]) -> list[Any]:
    return [e for e in logs if e["log_level"] in ("error", "critical") or "exc_info" in e]


def test_poison_messages_are_quarantined_with_a_reason_and_every_source_goes_on(
        plant: Plant) -> None:
    prefix, group = plant.prefix, plant.group
    messages: list[tuple[str, bytes]] = []
    for level, (payload, _reason) in JSON_POISON.items():
        messages.append((f"{prefix}/plant/{level}", payload))
    for level, payload in JSON_FINE.items():
        messages.append((f"{prefix}/plant/{level}", payload))
    for level, (payload, _reason) in VALUE_POISON.items():
        messages.append((f"{prefix}/gauge/{level}", payload))
    messages.append((f"{prefix}/gauge/v-long", b"9" * 30))  # a float, above the limit
    for device, (payload, _reason) in SPB_POISON.items():
        messages.append((f"spBv1.0/{group}/DDATA/n1/{device}", payload))
    plant.publisher.publish_all(messages)
    plant.markers()

    rows = plant.quarantined()
    by_topic = {r.context.get("topic", "").rsplit("/", 1)[-1]: r for r in rows}
    expected = {**JSON_POISON, **VALUE_POISON, **SPB_POISON}
    assert sorted(by_topic) == sorted(expected)
    for level, (payload, reason) in expected.items():
        row = by_topic[level]
        assert reason in row.error, (level, row.error)
        assert bytes(row.raw) == payload, level
    # the sentinel: nothing but the markers and the well-formed messages was posted
    posts = plant.posts()
    assert posts["plant"] == {"marker", "long-int", "long-int-json-path", "emoji"}
    assert posts["gauge"] == {"marker", "v-long"}
    assert posts["sp"] == {"marker"}
    # one warning per poison message, with its reason; no error line, no traceback
    warned = [e for e in plant.logs if e["event"] == "input_quarantined"]
    assert len(warned) == len(expected)
    assert {e["log_level"] for e in warned} == {"warning"}
    assert _errors(plant.logs) == []
    assert {n: s.restarts for n, s in plant.daemon.status.items()} == {
        "plant": 0, "gauge": 0, "sp": 0}
    assert plant.daemon.pipeline.alive and plant.daemon.pipeline.error is None


def test_a_topic_that_is_not_utf8_costs_its_message_not_the_network_thread(
        plant: Plant) -> None:
    """Mosquitto refuses such a PUBLISH, other brokers pass it on: paho hands the message over
    and ``msg.topic`` raises. The handler used to log ``topic=msg.topic`` in its error path,
    which raised again, out of on_message into paho's loop."""
    adapter = plant.daemon._adapters["plant"]
    client = adapter.client  # type: ignore[attr-defined]
    message = mqtt.MQTTMessage(mid=0, topic=f"{plant.prefix}/plant/".encode() + b"\xff\xfe")
    message.payload = _reading(1)
    client.on_message(client, None, message)  # as paho's network thread calls it
    plant.markers()
    (row,) = plant.quarantined()
    assert row.source == "plant" and "is not UTF-8" in row.error
    assert row.context["topic"] == f"{plant.prefix}/plant/\\xff\\xfe"
    assert bytes(row.raw) == _reading(1)
    assert _errors(plant.logs) == []
