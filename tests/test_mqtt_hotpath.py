"""The MQTT hot path's shortcuts keep what the long way does (docs/performance.md, "Hot path"):

- the messages of one socket read reach the pipeline queue together at the end of the read
  (``FastPathMixin.on_read_end`` → ``HeldEmitter.release``), in order, whichever thread
  emitted them, and before the network thread waits for more;
- an integer beyond 64 bits is still found (a substring search over the payload's digits
  instead of a regex) and becomes a float, the payload time and position still take the
  inline path or the checked one.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from floorstream.adapters.mqtt import connection
from floorstream.adapters.mqtt.connection import Client, FastClient
from floorstream.config import parse_mapping
from floorstream.handoff import Handoff
from floorstream.model import Change
from floorstream.pipeline import HeldEmitter, Pipeline
from floorstream.plugin.adapter import AdapterContext
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import Store
from support import sentinel, wait_for


def test_put_many_appends_in_order_and_signals_once() -> None:
    handoff: Handoff[int] = Handoff(4)
    handoff.put(0)
    handoff.put_many([1, 2, 3, 4, 5])  # room for one more: all of them go (one read's worth)
    handoff.put_many([])
    assert handoff.qsize() == 6
    assert handoff.take(100, 1.0) == [0, 1, 2, 3, 4, 5]
    blocked = threading.Thread(target=handoff.put_many, args=([6, 7, 8, 9, 10],))
    handoff.put_many([1, 2, 3, 4])
    blocked.start()  # full: waits for room, then appends everything at once
    assert handoff.take(2, 1.0) == [1, 2]
    blocked.join(10)
    assert not blocked.is_alive()
    assert handoff.take(100, 1.0) == [3, 4, 6, 7, 8, 9, 10]


def _pipeline(tmp_path: Path) -> Pipeline:
    plugins = build_plugins(load_entry_points=False)
    config = parse_mapping({"store": f"sqlite:///{tmp_path}/fs.db", "flood": None,
                            "sources": [{"name": "line", "adapter": "simulator"}]}, plugins)
    store = Store.open(config.settings.store)
    return Pipeline(Processor(config, plugins, states=store), store,
                    config.settings.pipeline, plugins)


def _change(n: int) -> Change:
    now = datetime.now(UTC)
    change: Change = Change._trusted({
        "source": "line", "subject": "m1", "kind": "telemetry", "position": str(n),
        "observed_at": now, "occurred_at": None, "data": {"n": n}, "before": None,
        "attrs": {}})
    return change


def test_held_emitter_queues_on_release_in_the_order_things_were_emitted(
        tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    held = pipeline.emitter("line").held()
    assert isinstance(held, HeldEmitter)
    held.emit(_change(0))
    held.checkpoint("after-0")
    held.quarantine(b"bad", "not JSON", position="q")
    assert pipeline.queue.qsize() == 0  # nothing reaches the queue before the release
    held.release()
    taken: list[Envelope] = pipeline.queue.take(100, 1.0)
    assert [(e.change.position if e.change else None, e.checkpoint,
             e.quarantine.error if e.quarantine else None) for e in taken] == [
        ("0", None, None), (None, "after-0", None), (None, None, "not JSON")]
    # two threads emitting and releasing at once (paho's and a Sparkplug tick): the queue
    # gets every item once, in the order of the emits
    order: list[int] = []
    lock = threading.Lock()

    def emit_from(start: int) -> None:
        for n in range(start, 4000, 2):
            with lock:  # the emit order, recorded as it happens
                held.emit(_change(n))
                order.append(n)
            if n % 50 < 2:
                held.release()
    threads = [threading.Thread(target=emit_from, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held.release()
    queued = [int(e.change.position) for e in pipeline.queue.take(10_000, 1.0) if e.change]
    assert queued == order and sorted(queued) == list(range(4000))
    pipeline.store.close()


@pytest.mark.mqtt
def test_a_read_reaches_the_pipeline_at_its_end_and_never_waits_for_the_next(
        mqtt_broker: tuple[str, int], topic_prefix: str) -> None:
    """Each message is handed on by the on_read_end of the read that brought it (in bursts:
    several per read), and a single message is handed on before the read lingers for more."""
    topic = f"{topic_prefix}/reads"
    received: list[bytes] = []
    released: list[int] = []  # how many messages had been received at each on_read_end
    subscribed = threading.Event()
    sub = Client(CallbackAPIVersion.VERSION2, client_id=f"fs-hp-{uuid.uuid4().hex[:8]}")
    assert isinstance(sub, FastClient)
    sub.on_read_end = lambda: released.append(len(received))
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.on_message = lambda c, u, m: received.append(bytes(m.payload))

    def on_connect(client: mqtt.Client, *args: Any) -> None:
        assert isinstance(client, FastClient)
        client.buffer_socket()
        client.subscribe(topic, qos=0)
    sub.on_connect = on_connect
    sub.connect(*mqtt_broker)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2)
    pub.max_queued_messages_set(0)
    pub.connect(*mqtt_broker)
    pub.loop_start()
    try:
        wait_for(subscribed.is_set)
        pub.publish(topic, b"first", qos=0).wait_for_publish(10)
        wait_for(lambda: released and released[-1] == 1)
        sub.read_linger = 2.0  # a lone message would wait this long without the early hand-on
        pub.publish(topic, b"lone", qos=0).wait_for_publish(10)
        wait_for(lambda: released[-1] == 2, timeout=1.5)  # before the 2 s linger ends
        sub.read_linger = 0.002
        assert received == [b"first", b"lone"]
        burst = [f"m{n}".encode() for n in range(2000)]
        for payload in burst:
            pub.publish(topic, payload, qos=0)
        sentinel(lambda: pub.publish(topic, b"sentinel", qos=1).wait_for_publish(10),
                 lambda: bool(released) and released[-1] == len(received)
                 and b"sentinel" in received, timeout=20)
        assert received == [b"first", b"lone", *burst, b"sentinel"]
        grew = [b - a for a, b in itertools.pairwise(released) if b > a]
        assert max(grew) > 1  # a burst is handed on several messages per read
    finally:
        pub.disconnect()
        pub.loop_stop()
        sub.disconnect()
        sub.loop_stop()


class _Collect:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.quarantined: list[str] = []

    def emit(self, change: Change, *, ack: Any = None, checkpoint: str | None = None) -> None:
        self.changes.append(change)

    def quarantine(self, raw: bytes, error: str, **kwargs: Any) -> None:
        self.quarantined.append(error)


def _handler(config: dict[str, Any]) -> tuple[Any, _Collect]:
    plugins = build_plugins(load_entry_points=False)
    source = parse_mapping({"store": "sqlite://", "sources": [
        {"name": "plant", "adapter": "mqtt", "topics": ["p/+"], **config}]},
        plugins).sources[0]
    adapter = plugins.adapters.get("mqtt")(source, AdapterContext(source.name, None,
                                                                    plugins.decoders))
    collect = _Collect()
    client = connection.Client(CallbackAPIVersion.VERSION2, client_id="hotpath-test")
    return adapter._handler(collect, connection.Acker(client)), collect


def _message(topic: str, payload: bytes) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(mid=1, topic=topic.encode())
    message.payload = payload
    return message


def test_long_integers_times_and_positions_on_the_inline_path_and_off_it() -> None:
    handler, collect = _handler({"subject": "{topic[1]}", "position_field": "ts",
                                 "time_field": "ts"})
    payloads = [
        b'{"ts": 1764057600000, "n": 123456789012345678901234}',  # 24 digits: a float
        b'{"ts": 1764057600001, "n": 18446744073709551615, "m": -9223372036854775808}',
        b'{"ts": 1764057600002, "n": 1e400}',  # orjson refuses it; json reads inf
        b'{"ts": 1764057600.5, "n": 1}',  # seconds, a float: the checked path
        b'{"ts": "2025-11-25T08:00:00+01:00", "n": 1}',  # ISO text
        b'{"ts": 99999999999999999, "n": 1}',  # milliseconds past the year 2999: refused
        b'{"ts": true, "n": 1}',
        b'{"n": 1}',  # no position field: refused, as before
    ]
    for payload in payloads:
        handler(None, None, _message("p/m1", payload))
    first, second, third, fourth, fifth = collect.changes
    assert first.data["n"] == 1.2345678901234568e23 and isinstance(first.data["n"], float)
    assert first.position == "p/m1|1764057600000"
    assert first.occurred_at == datetime(2025, 11, 25, 8, 0, tzinfo=UTC)
    assert second.data == {"ts": 1764057600001, "n": 18446744073709551615,
                           "m": -9223372036854775808}  # 64 bits: still integers
    assert third.data["n"] == float("inf")
    assert fourth.occurred_at == datetime(2025, 11, 25, 8, 0, 0, 500000, tzinfo=UTC)
    assert fourth.position == "p/m1|1764057600.5"
    assert fifth.occurred_at == datetime(2025, 11, 25, 7, 0, tzinfo=UTC)
    assert [e.split(":")[0] for e in collect.quarantined] == [
        "time field 'ts' is out of range", "time field 'ts' is a boolean",
        "missing position field 'ts'"]
