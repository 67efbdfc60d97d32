"""What a Sparkplug source does with each kind of topic: a host application's STATE (JSON) is
ignored, not quarantined as corrupt protobuf; an edge node behind a bridge prefix
(``site/spBv1.0/…``) is read like any other; a topic that is not Sparkplug at all is
quarantined with the reason, never acked and dropped silently."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from floorstream.adapters.mqtt.sparkplug import sparkplug_levels
from floorstream.adapters.mqtt.sparkplug_b import encode_payload
from floorstream.plugins import build_plugins
from floorstream.store.store import Store
from support import DaemonRunner, sentinel
from support.mqtt import Publisher, Subscriptions

pytestmark = pytest.mark.mqtt

T0 = 1_764_057_600_000


def test_topic_kinds() -> None:
    assert sparkplug_levels(["spBv1.0", "G", "NBIRTH", "n"]) == (
        "edge", ["spBv1.0", "G", "NBIRTH", "n"])
    assert sparkplug_levels(["site-a", "spBv1.0", "G", "DDATA", "n", "d"]) == (
        "edge", ["spBv1.0", "G", "DDATA", "n", "d"])
    assert sparkplug_levels(["spBv1.0", "STATE", "scada"])[0] == "state"
    assert sparkplug_levels(["site-a", "spBv1.0", "STATE", "scada"])[0] == "state"
    assert sparkplug_levels(["plant", "press", "temp"])[0] == "other"
    assert sparkplug_levels(["spBv1.0", "G", "NOPE", "n"])[0] == "other"


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
    topics: ["spBv1.0/STATE/{group}", "bridge-{group}/spBv1.0/{group}/#",
             "junk-{group}/#"]
    detect:
      - state_change: {{field: State}}
"""
    subscriptions = Subscriptions().install(monkeypatch)
    with DaemonRunner(text, plugins=build_plugins(load_entry_points=False)) as daemon:
        daemon.start()
        subscriptions.wait("sp")
        publisher = Publisher(host, port)
        try:
            yield publisher, group, daemon.store
        finally:
            publisher.close()


def test_state_is_ignored_a_bridged_node_is_read_and_junk_is_quarantined(
        running: tuple[Publisher, str, Store]) -> None:
    publisher, group, store = running
    ns = f"bridge-{group}/spBv1.0/{group}"
    publisher.publish_all([
        (f"spBv1.0/STATE/{group}", b'{"online": true, "timestamp": 1764057600000}'),
        (f"junk-{group}/press/temp", b'{"temp": 71}'),
        (f"{ns}/NBIRTH/Gw", encode_payload(
            [{"name": "bdSeq", "datatype": "Int64", "value": 1}], timestamp=T0, seq=0)),
        (f"{ns}/DBIRTH/Gw/Press07", encode_payload(
            [{"name": "State", "alias": 1, "datatype": "String", "value": "RUNNING"}],
            timestamp=T0 + 1, seq=1)),
        (f"{ns}/DDATA/Gw/Press07", encode_payload(
            [{"alias": 1, "datatype": "String", "value": "STOPPED"}],
            timestamp=T0 + 2, seq=2)),
    ])
    sentinel(lambda: publisher.publish_all([(f"{ns}/DDATA/Gw/Press07", encode_payload(
        [{"alias": 1, "datatype": "String", "value": "RUNNING"}], timestamp=T0 + 3, seq=3))]),
        lambda: len(store.feed("maintenance")) >= 2)
    posts = list(reversed(store.feed("maintenance")))
    assert [p.summary for p in posts] == ["Press07 stopped (was running)",
                                          "Press07 running (was stopped)"]
    rows = store.quarantined(source="sp")
    assert len(rows) == 1, [r.error for r in rows]  # the junk, not the STATE message
    assert rows[0].context["topic"] == f"junk-{group}/press/temp"
    assert "topic does not fit the Sparkplug B namespace" in rows[0].error
