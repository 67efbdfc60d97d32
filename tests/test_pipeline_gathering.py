"""Group commit that adapts to the arrival rate (docs/performance.md, "Steady load").

A steady stream is gathered: the pipeline thread sleeps until ``pipeline.gather_ms`` after the
last batch or until enough input is queued, and producers signal only the item that makes
enough, so a paced stream costs a wake-up (and at most a commit) per interval instead of per
message. A gathering batch is taken once half the smallest unacked window a source declares (an MQTT
broker's in-flight limit) is queued: waiting for more would stall the broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from floorstream.config import parse_mapping
from floorstream.daemon import Daemon
from floorstream.handoff import Handoff
from floorstream.model import Change, utcnow
from floorstream.pipeline import Pipeline
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import Store
from support import wait_for


def test_gather_returns_once_enough_items_are_queued() -> None:
    handoff: Handoff[int] = Handoff(100)

    def produce() -> None:
        for n in range(8):
            time.sleep(0.01)
            handoff.put(n)

    producer = threading.Thread(target=produce)
    started = time.monotonic()
    producer.start()
    batch = handoff.gather(50, 30.0, 5)
    took = time.monotonic() - started
    producer.join()
    assert 5 <= len(batch) <= 8 and batch == list(range(len(batch)))
    assert took < 15.0  # woken by the fifth item, not by the 30 s deadline


def test_gather_takes_what_is_there_at_the_deadline() -> None:
    handoff: Handoff[int] = Handoff(100)
    handoff.put(1)
    handoff.put(2)
    started = time.monotonic()
    assert handoff.gather(50, 0.05, 10) == [1, 2]
    assert time.monotonic() - started >= 0.04
    assert handoff.gather(50, 0.01, 10) == []
    handoff.put(3)  # after a gather, one item wakes a plain take again
    assert handoff.take(10, 5.0) == [3]


def test_gather_does_not_wait_for_more_than_the_handoff_holds() -> None:
    handoff: Handoff[int] = Handoff(3)
    for n in range(3):
        handoff.put(n)
    started = time.monotonic()
    assert handoff.gather(10, 30.0, 10) == [0, 1, 2]  # a full hand-off: producers wait
    assert time.monotonic() - started < 15.0


@pytest.fixture
def store_config(tmp_path: Path) -> Iterator[tuple[Any, Any, Store]]:
    plugins = build_plugins(load_entry_points=False)
    config = parse_mapping({
        "store": f"sqlite:///{tmp_path}/fs.db", "flood": None,
        "pipeline": {"gather_ms": 30},
        "sources": [{"name": "line", "adapter": "simulator",
                     "detect": [{"state_change": {"field": "state"}}]}],
    }, plugins)
    store = Store.open(config.settings.store)
    yield config, plugins, store
    store.close()


class Recorder:
    """The pipeline with the size of every batch it takes recorded."""

    def __init__(self, config: Any, plugins: Any, store: Store) -> None:
        self.pipeline = Pipeline(Processor(config, plugins, states=store), store,
                                 config.settings.pipeline, plugins)
        self.sizes: list[int] = []
        self.acked = 0
        self._lock = threading.Lock()
        handle = self.pipeline._handle

        def recorded(items: list[Envelope]) -> None:
            self.sizes.append(len(items))
            handle(items)
        self.pipeline._handle = recorded  # type: ignore[method-assign]

    def ack(self) -> None:
        with self._lock:
            self.acked += 1

    def envelope(self, n: int) -> Envelope:
        change = Change(source="line", subject=f"m{n % 7}", kind="telemetry", position=str(n),
                        observed_at=utcnow(), data={"state": "RUNNING"})
        return Envelope("line", change=change, ack=self.ack)


def test_a_steady_stream_is_taken_in_batches_per_interval(
        store_config: tuple[Any, Any, Store]) -> None:
    recorder = Recorder(*store_config)
    recorder.pipeline.start()
    try:
        for n in range(300):  # ~1 a millisecond against a 30 ms gathering interval
            recorder.pipeline.submit(recorder.envelope(n))
            time.sleep(0.001)
        wait_for(lambda: recorder.acked == 300, timeout=30)
    finally:
        recorder.pipeline.stop()
    assert sum(recorder.sizes) == 300
    assert recorder.sizes[0] == 1  # input after a quiet spell is taken at once
    # a batch per message would be 300; gathered, a few dozen at most (a loaded machine
    # only makes the batches bigger)
    assert len(recorder.sizes) < 100, recorder.sizes


def test_a_gathering_batch_ends_at_half_the_smallest_unacked_window(
        store_config: tuple[Any, Any, Store]) -> None:
    pipeline = Recorder(*store_config).pipeline
    assert pipeline.gather_enough() == pipeline.settings.batch_max  # no window: the interval
    pipeline.limit_unacked("line", 20)  # an MQTT 3.1.1 broker's in-flight limit
    pipeline.limit_unacked("other", 1000)  # an MQTT 5 source's receive_maximum
    assert pipeline.gather_enough() == 10
    pipeline.limit_unacked("line", None)  # e.g. a QoS 0 source
    assert pipeline.gather_enough() == 500


def test_a_backlog_is_taken_whole(store_config: tuple[Any, Any, Store]) -> None:
    recorder = Recorder(*store_config)
    recorder.pipeline.limit_unacked("line", 20)
    for n in range(100):  # queued before the thread starts: a backlog
        recorder.pipeline.submit(recorder.envelope(n))
    recorder.pipeline.start()
    try:
        wait_for(lambda: recorder.acked == 100, timeout=30)
    finally:
        recorder.pipeline.stop()
    assert recorder.sizes == [100]


@pytest.mark.parametrize(("settings", "window"), [
    ({"protocol": "3.1.1", "qos": 1}, 20),
    ({"protocol": "3.1.1", "qos": 1, "broker_inflight": 100}, 100),
    ({"protocol": "5", "qos": 1, "receive_maximum": 64}, 64),
    ({"protocol": "5", "qos": 0}, None),
    ({"protocol": "5", "qos": 0, "topics": [{"filter": "b/#", "qos": 1}]}, 1000),
])
def test_an_mqtt_source_declares_its_in_flight_window(
        tmp_path: Path, settings: dict[str, Any], window: int | None) -> None:
    plugins = build_plugins(load_entry_points=False)
    source = {"name": "presses", "adapter": "mqtt", "url": "mqtt://127.0.0.1:9",
              "topics": ["a/#"], **settings}
    config = parse_mapping({"store": f"sqlite:///{tmp_path}/fs.db", "sources": [source]},
                           plugins)
    daemon = Daemon(config, plugins)
    daemon.start()  # the broker's port is closed: paho retries in the background
    try:
        wait_for(lambda: "presses" in daemon._adapters, timeout=10)
        assert daemon.pipeline.unacked_windows.get("presses") == window
    finally:
        daemon.stop()
