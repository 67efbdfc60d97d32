"""Sparkplug B through the real daemon: births name aliases, seq wraps, historical metrics stay
out of the detectors, a stale NDEATH is ignored and a real one is a single post for the node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from floorstream.adapters.mqtt.sparkplug_b import SparkplugDecoder, encode_payload
from floorstream.plugins import build_plugins
from floorstream.store.store import Store
from support import DaemonRunner, sentinel
from support.mqtt import Publisher, Subscriptions

pytestmark = pytest.mark.mqtt

T0 = 1_764_057_600_000


def _birth_metrics(state: str, temp: float) -> list[dict[str, object]]:
    return [{"name": "State", "alias": 1, "datatype": "String", "value": state},
            {"name": "Temp", "alias": 2, "datatype": "Double", "value": temp}]


@pytest.fixture
def running(mqtt_broker: tuple[str, int], topic_prefix: str, sqlite_url: str,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Publisher, str, Store]]:
    host, port = mqtt_broker
    group = topic_prefix.replace("/", "-")
    text = f"""
store: {sqlite_url}
flood: null
pipeline: {{batch_wait_ms: 1}}
teams: {{maintenance: {{}}}}
default_team: maintenance
sources:
  - name: sp
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: fs-{group}
    decode: sparkplug
    topics: ["spBv1.0/{group}/#"]
    detect:
      - state_change: {{field: State}}
      - threshold: {{field: Temp, above: 85, clear_below: 80, unit: "°C"}}
"""
    subscriptions = Subscriptions().install(monkeypatch)
    with DaemonRunner(text, plugins=build_plugins(load_entry_points=False)) as daemon:
        daemon.start()
        subscriptions.wait("sp")
        publisher = Publisher(host, port)
        try:
            yield publisher, f"spBv1.0/{group}", daemon.store
        finally:
            publisher.close()


def test_decoder_checks_values_against_their_datatype() -> None:
    decoder = SparkplugDecoder()
    payload = encode_payload([{"name": "bdSeq", "datatype": "Int64", "value": -1},
                              {"name": "f", "datatype": "Float", "value": 12.1},
                              {"alias": 7, "datatype": "Int8", "value": -3}], seq=4)
    record = decoder.decode(payload)
    assert record["seq"] == 4
    assert [m["value"] for m in record["metrics"]] == [-1, 12.1, -3]
    assert record["metrics"][2]["name"] is None and record["metrics"][2]["alias"] == 7
    wrong = encode_payload([{"name": "x", "datatype": "Int32", "value": "7",
                             "field": "string_value"}])
    with pytest.raises(Exception, match="declared Int32 but carries string_value"):
        decoder.decode(wrong)
    with pytest.raises(Exception, match="not a Sparkplug B payload"):
        decoder.decode(b"\xff\xff\xff\xff")


def test_sparkplug_session_births_aliases_seq_wrap_history_and_death(
        running: tuple[Publisher, str, Store]) -> None:
    publisher, ns, store = running
    node = "Line3-Gateway"
    seq = 0
    messages: list[tuple[str, bytes]] = [
        (f"{ns}/NBIRTH/{node}", encode_payload(
            [{"name": "bdSeq", "datatype": "Int64", "value": 1},
             {"name": "Node Control/Rebirth", "datatype": "Boolean", "value": False}],
            timestamp=T0, seq=0))]
    for device in ("Press07", "Press08"):
        seq += 1
        messages.append((f"{ns}/DBIRTH/{node}/{device}", encode_payload(
            _birth_metrics("RUNNING", 70.0), timestamp=T0 + seq, seq=seq)))
    # 300 alias-only DDATA: seq runs past 255 and wraps to 0; Press07 stops after the wrap
    for i in range(300):
        seq = (seq + 1) % 256
        state = "STOPPED" if i >= 280 else "RUNNING"
        messages.append((f"{ns}/DDATA/{node}/Press07", encode_payload(
            [{"alias": 1, "datatype": "String", "value": state},
             {"alias": 2, "datatype": "Double", "value": 71.0}],
            timestamp=T0 + 1000 + i, seq=seq)))
    seq = (seq + 1) % 256
    # historical values above the limit: feed only, no limit_exceeded
    messages.append((f"{ns}/DDATA/{node}/Press08", encode_payload(
        [{"alias": 2, "datatype": "Double", "value": 99.0, "is_historical": True}],
        timestamp=T0 + 2000, seq=seq)))
    seq = (seq + 1) % 256
    messages.append((f"{ns}/DDATA/{node}/Press08", encode_payload(
        [{"alias": 99, "datatype": "Double", "value": 1.0}], timestamp=T0 + 2001, seq=seq)))
    # a stale will from session bdSeq 0, then the real death and its duplicate (the will)
    death = [{"name": "bdSeq", "datatype": "UInt64", "value": 0}]
    messages.append((f"{ns}/NDEATH/{node}", encode_payload(death, timestamp=T0 + 3000)))
    death = [{"name": "bdSeq", "datatype": "UInt64", "value": 1}]
    messages.append((f"{ns}/NDEATH/{node}", encode_payload(death, timestamp=T0 + 4000)))
    messages.append((f"{ns}/NDEATH/{node}", encode_payload(death, timestamp=T0 + 4001)))
    messages.append((f"{ns}/NBIRTH/{node}", encode_payload(
        [{"name": "bdSeq", "datatype": "Int64", "value": 2}], timestamp=T0 + 64000, seq=0)))
    messages.append((f"spBv1.0/STATE/{ns.split('/')[1]}", b'{"online": true}'))
    publisher.publish_all(messages)
    # a sentinel node behind the session: its device's limit post comes after everything
    # above was handled, so the lists below are complete
    marker = f"{ns}/DDATA/Sentinel-Gateway/Sentinel"
    sentinel(lambda: publisher.publish_all([
        (f"{ns}/NBIRTH/Sentinel-Gateway", encode_payload(
            [{"name": "bdSeq", "datatype": "Int64", "value": 1}], timestamp=T0, seq=0)),
        (f"{ns}/DBIRTH/Sentinel-Gateway/Sentinel", encode_payload(
            _birth_metrics("RUNNING", 70.0), timestamp=T0 + 1, seq=1)),
        (marker, encode_payload([{"alias": 2, "datatype": "Double", "value": 99.0}],
                                timestamp=T0 + 2, seq=2))]),
        lambda: any(p.subject == "Sentinel" for p in store.feed("maintenance")))
    posts = [p for p in reversed(store.feed("maintenance")) if p.subject != "Sentinel"]
    assert [(p.type, p.subject) for p in posts] == [
        ("machine.state_changed", "Press07"),
        ("sparkplug.awaiting_birth", "Press08"),
        ("metric.backfilled", "Press08"),
        ("machine.offline", node),
        ("machine.online", node),
    ]
    assert posts[0].summary == "Press07 stopped (was running)"
    assert int(posts[0].occurred_at.timestamp() * 1000) == T0 + 1000 + 280
    assert posts[1].summary == "unresolved aliases from Press08, waiting for a birth"
    assert posts[2].fields["maxima"] == {"Temp": 99.0}
    assert posts[2].summary == "Press08: backfilled 1 value at 08:00 UTC (max Temp 99)"
    offline = posts[3]
    assert offline.summary == "Line3-Gateway offline — 2 machines silent"
    assert offline.fields["devices"] == ["Press07", "Press08"]
    assert offline.fields["bdSeq"] == 1 and offline.fields["state"] == "offline"
    assert offline.thread == node
    assert posts[4].clears == offline.id and posts[4].thread == node
    assert posts[4].summary == "Line3-Gateway back online after 1 min"
    rows = store.quarantined(source="sp")
    # the message with alias 99 waited for a birth; the NDEATH ended that wait
    assert len(rows) == 1 and "unknown alias 99" in rows[0].error
    assert rows[0].error.startswith("1 message from node ")
