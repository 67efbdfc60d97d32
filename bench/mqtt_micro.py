"""Per-message CPU cost of floorstream's MQTT path, without the network or a broker.

``bench/mqtt.py`` measures the whole thing against a real Mosquitto; this one splits the cost
so a change can be judged in seconds: the adapter's ``on_message`` handler alone (what paho's
thread pays per message on top of its own parsing), the pipeline alone (detect → render →
commit on SQLite, single-threaded), and both in their real threads (handler fed from this
thread, pipeline in its own), whose CPU beyond the sum is the hand-off overhead (GIL
switches, and the 100,000 envelopes and Changes alive at once). At ``--qos 1`` the acks the
pipeline runs are recorded but never sent (no network thread), so they pile up: compare QoS 1
runs with each other, not with QoS 0.

Run: ``python bench/mqtt_micro.py [--messages N] [--qos 0|1] [--switch S] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mqtt as sensor_storm
from paho.mqtt.enums import CallbackAPIVersion

from floorstream.adapters.mqtt import connection
from floorstream.config import Config, parse_config
from floorstream.pipeline import Pipeline
from floorstream.plugin.adapter import Ack, AdapterContext
from floorstream.plugins import Plugins, build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import Store


class Collect:
    """An emitter that keeps envelopes (to feed the pipeline alone later)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Envelope] = []

    def emit(self, change: Any, *, ack: Ack | None = None,
             checkpoint: str | None = None) -> None:
        self.items.append(Envelope(self.source, change=change, ack=ack, checkpoint=checkpoint))

    def quarantine(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the sensor storm has no bad input")


class Discard:
    """An emitter that drops everything: the handler's own cost."""

    def emit(self, change: Any, *, ack: Ack | None = None,
             checkpoint: str | None = None) -> None:
        pass

    def quarantine(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the sensor storm has no bad input")


def messages(work: Path, count: int, qos: int) -> list[mqtt.MQTTMessage]:
    stream = work / "stream.tsv"
    sensor_storm.generate(stream, 200, count)
    out = []
    for mid, line in enumerate(stream.read_text().splitlines()):
        topic, payload, _ = line.split("\t")
        msg = mqtt.MQTTMessage(mid=mid % 65535 + 1, topic=topic.encode())
        msg.payload = payload.encode()
        msg.qos = qos
        out.append(msg)
    return out


def setup(work: Path, name: str, qos: int) -> tuple[Config, Plugins, Store, Any]:
    db = work / name
    db.mkdir()
    text = sensor_storm.CONFIG.format(dir=db, wait=1, port=1883, protocol="5", run=name, qos=qos)
    plugins = build_plugins(load_entry_points=False)
    config = parse_config(text, plugins)
    store = Store.open(config.settings.store)
    source = config.sources[0]
    adapter = plugins.adapters.get("mqtt")(source, AdapterContext(source.name, None,
                                                                   plugins.decoders))
    return config, plugins, store, adapter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--qos", type=int, default=0, choices=[0, 1])
    ap.add_argument("--switch", type=float, default=0, help="sys.setswitchinterval (s)")
    ap.add_argument("--profile", action="store_true", help="cProfile handler and pipeline")
    a = ap.parse_args()
    if a.switch:
        sys.setswitchinterval(a.switch)
    with tempfile.TemporaryDirectory(prefix="fs-mqtt-micro-") as tmp:
        work = Path(tmp)
        msgs = messages(work, a.messages, a.qos)
        n = len(msgs)
        # acks of a client that is not connected: recorded, never sent (the cost is real)
        client = connection.Client(CallbackAPIVersion.VERSION2, client_id="micro")

        # 1. the handler alone
        config, plugins, store, adapter = setup(work, "handler", a.qos)
        handler = adapter._handler(Discard(), connection.Acker(client))
        c0 = time.process_time()
        for msg in msgs:
            handler(None, None, msg)
        handler_us = (time.process_time() - c0) / n * 1e6
        if a.profile:
            cProfile.runctx("for m in msgs: handler(None, None, m)", globals(),
                            {"msgs": msgs, "handler": handler}, "/tmp/mqtt_micro_handler.prof")
        collect = Collect(config.sources[0].name)  # untimed: keeping 100k envelopes costs GC
        handler = adapter._handler(collect, connection.Acker(client))
        for msg in msgs:
            handler(None, None, msg)
        items = collect.items

        # 2. the pipeline alone, in batches of 2000 as in the storm
        config, plugins, store, _ = setup(work, "pipeline", a.qos)
        pipeline = Pipeline(Processor(config, plugins, states=store), store,
                            config.settings.pipeline, plugins)
        c0 = time.process_time()
        for i in range(0, n, 2000):
            pipeline._handle(items[i:i + 2000])
        pipeline_us = (time.process_time() - c0) / n * 1e6
        posts_alone = store.count_posts()
        client.pending_acks.clear()
        if a.profile:
            config, plugins, store, _ = setup(work, "profiled", a.qos)
            pipeline = Pipeline(Processor(config, plugins, states=store), store,
                                config.settings.pipeline, plugins)
            cProfile.runctx("for i in range(0, n, 2000): handle(items[i:i + 2000])", globals(),
                            {"n": n, "items": items, "handle": pipeline._handle},
                            "/tmp/mqtt_micro_pipeline.prof")
            client.pending_acks.clear()

        # 3. both, each in its own thread, as in the daemon
        config, plugins, store, adapter = setup(work, "threads", a.qos)
        pipeline = Pipeline(Processor(config, plugins, states=store), store,
                            config.settings.pipeline, plugins)
        handler = adapter._handler(pipeline.emitter(config.sources[0].name),
                                   connection.Acker(client))
        pipeline.start()
        t0, c0 = time.perf_counter(), time.process_time()
        for msg in msgs:
            handler(None, None, msg)
        pipeline.stop()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        posts_threads = store.count_posts()
        assert posts_threads == posts_alone, (posts_threads, posts_alone)
        print(f"messages {n:,} (QoS {a.qos}), posts {posts_alone:,}")
        print(f"handler alone:       {handler_us:5.1f} µs CPU/msg")
        print(f"pipeline alone:      {pipeline_us:5.1f} µs CPU/msg")
        print(f"handler + pipeline:  {cpu / n * 1e6:5.1f} µs CPU/msg in two threads "
              f"({n / wall:,.0f} msgs/s, {pipeline.committed_batches} batches; hand-off "
              f"overhead {cpu / n * 1e6 - handler_us - pipeline_us:+.1f} µs/msg)")
        if a.profile:
            for name in ("handler", "pipeline"):
                print(f"--- {name}")
                pstats.Stats(f"/tmp/mqtt_micro_{name}.prof").sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
