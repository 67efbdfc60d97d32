"""Where a Sparkplug DDATA message's CPU goes, without a broker: the stages of the mqtt
source's Sparkplug path, one after the other, in one process (CPU time per message).

The stream is ``bench/mqtt.py --sparkplug``'s (births, then DDATA of 10 alias metrics):

- ``parse_us``: ``Payload.ParseFromString`` only (all the storm's ceiling does);
- ``read_us``: parse plus reading each metric's alias and value (the least any subscriber
  that uses the values pays with protobuf's Python API);
- ``decode_us``: ``SparkplugDecoder.decode_compact`` (checked values, names, flags);
- ``lazy_us``: ``SparkplugDecoder.decode_lazy`` (the parse and the header: what the adapter
  does on paho's thread; the session reads the metrics of interest itself);
- ``session_us``: the host side on lazily decoded messages (seq order, births, aliases, the
  metrics of interest read, the Change), with the source's interest worked out from the
  storm's config as the daemon does (``--all-fields``: as if a detector read everything),
  fed from a list of all the decoded messages (the garbage collector walks them, and a
  parsed payload read long after its parse is slower to read: an upper bound; the first run
  also keeps the output for the pipeline); ``session_birth_us`` and ``session_data_us``
  split it into the births (per birth) and the DDATA (per DDATA message);
- ``hot_data_us``: ``decode_lazy`` and the session one message after the other, per DDATA,
  as on paho's thread: the figure to compare with ``decode_us`` plus the session before;
- ``pipeline_us``: detect → render → route → commit on SQLite, batches of 2,000.

Run: ``python bench/sparkplug_micro.py [--nodes 200] [--devices 10] [--messages 30000]``;
prints one JSON object per repetition.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def _storm() -> Any:
    spec = importlib.util.spec_from_file_location("sensor_storm", HERE.parent / "mqtt.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Collect:
    """An emitter that keeps what it is given (``keep``) or drops it."""

    def __init__(self, keep: bool) -> None:
        from floorstream.processing import Envelope
        self.envelope, self.keep, self.items = Envelope, keep, list[Any]()

    def emit(self, change: Any, *, ack: Any = None, checkpoint: str | None = None) -> None:
        if self.keep:
            self.items.append(self.envelope("sensors", change=change, checkpoint=checkpoint))

    def event(self, event: Any, *, ack: Any = None, checkpoint: str | None = None) -> None:
        if self.keep:
            self.items.append(self.envelope("sensors", event=event, checkpoint=checkpoint))

    def checkpoint(self, checkpoint: str | None, *, ack: Any = None) -> None:
        if self.keep and checkpoint is not None:
            self.items.append(self.envelope("sensors", checkpoint=checkpoint))

    def quarantine(self, raw: bytes, error: str, **kwargs: Any) -> None:
        raise AssertionError(f"the storm has no bad input: {error}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--messages", type=int, default=30_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--all-fields", action="store_true",
                    help="the session reads every metric (no detector declares its fields)")
    a = ap.parse_args()

    import structlog
    from sqlalchemy import func, select

    from floorstream.adapters.mqtt.config import MqttConfig
    from floorstream.adapters.mqtt.sparkplug import classify
    from floorstream.adapters.mqtt.sparkplug_b import SparkplugDecoder
    from floorstream.adapters.mqtt.sparkplug_b import sparkplug_b_pb2 as pb
    from floorstream.adapters.mqtt.sparkplug_host import SparkplugHost
    from floorstream.config import parse_config
    from floorstream.interest import source_interest
    from floorstream.pipeline import Pipeline
    from floorstream.plugin import Interest
    from floorstream.plugins import build_plugins
    from floorstream.processing import Processor
    from floorstream.store import schema
    from floorstream.store.store import Store

    storm = _storm()
    with tempfile.TemporaryDirectory(prefix="fs-sparkplug-micro-") as tmp:
        work = Path(tmp)
        stream = work / "stream.tsv"
        storm.generate_sparkplug(stream, a.nodes, a.devices, a.messages)
        msgs = [(t.decode(), bytes.fromhex(h.decode())) for t, h, _ in
                (line.split(b"\t") for line in stream.read_bytes().splitlines())]
        n = len(msgs)
        decoder = SparkplugDecoder()
        cfg = MqttConfig.model_validate({"name": "sensors", "adapter": "mqtt",
                                         "decode": "sparkplug", "topics": ["spBv1.0/#"]})
        plugins = build_plugins(load_entry_points=False)

        def storm_config(db: Path) -> Any:
            return parse_config(storm.CONFIG_SPARKPLUG.format(
                dir=db, wait=1, port=1883, protocol="5", run="micro", qos=0), plugins)

        interest = Interest()
        if not a.all_fields:
            probe = storm_config(work)
            interest = source_interest(
                [d for d, _ in Processor(probe, plugins).sources["sensors"].detectors],
                probe.sources[0].summary, False)
        print(json.dumps({"fields": sorted(interest.fields) if interest.fields is not None
                          else None}), flush=True)
        for run in range(a.repeat):
            out: dict[str, Any] = {"messages": n, "run": run + 1}
            c0 = time.process_time()
            for _, payload in msgs:
                pb.Payload().ParseFromString(payload)
            out["parse_us"] = round((time.process_time() - c0) / n * 1e6, 1)
            c0 = time.process_time()
            for _, payload in msgs:
                message = pb.Payload()
                message.ParseFromString(payload)
                for metric in message.metrics:
                    which = metric.WhichOneof("value")
                    if which:
                        getattr(metric, which)
                    metric.alias  # noqa: B018 (the read is what is measured)
            out["read_us"] = round((time.process_time() - c0) / n * 1e6, 1)
            decode = decoder.decode_compact
            c0 = time.process_time()
            for _, payload in msgs:  # decoded and dropped, as on paho's thread
                decode(payload)
            out["decode_us"] = round((time.process_time() - c0) / n * 1e6, 1)
            lazy = decoder.decode_lazy
            c0 = time.process_time()
            for _, payload in msgs:
                lazy(payload)
            out["lazy_us"] = round((time.process_time() - c0) / n * 1e6, 1)
            decoded = [(topic, payload, lazy(payload)) for topic, payload in msgs]
            collect = _Collect(keep=run == 0)
            host = SparkplugHost(cfg, structlog.get_logger(), {}, None, interest)
            host.start(collect, host.sessions.dump_text, lambda topic, payload: None)  # type: ignore[arg-type]
            now = datetime.now(UTC)
            births = a.nodes * (a.devices + 1)  # the stream starts with them
            c0 = time.process_time()
            for topic, payload, data in decoded[:births]:
                _, levels, bridge = classify(topic.split("/"), None)
                host.message(levels, topic, payload, data, now, None, bridge)
            c1 = time.process_time()
            for topic, payload, data in decoded[births:]:
                _, levels, bridge = classify(topic.split("/"), None)
                host.message(levels, topic, payload, data, now, None, bridge)
            c2 = time.process_time()
            out["session_us"] = round((c2 - c0) / n * 1e6, 1)
            out["session_birth_us"] = round((c1 - c0) / births * 1e6, 1)
            out["session_data_us"] = round((c2 - c1) / (n - births) * 1e6, 1)
            # decode and session one message after the other, as on paho's thread (the
            # parsed payload is read while it is fresh): the figure to compare
            hot = SparkplugHost(cfg, structlog.get_logger(), {}, None, interest)
            hot.start(_Collect(keep=False), hot.sessions.dump_text,  # type: ignore[arg-type]
                      lambda topic, payload: None)
            split = [(classify(topic.split("/"), None), topic, payload)
                     for topic, payload in msgs]
            for (_, levels, bridge), topic, payload in split[:births]:
                hot.message(levels, topic, payload, lazy(payload), now, None, bridge)
            c0 = time.process_time()
            for (_, levels, bridge), topic, payload in split[births:]:
                hot.message(levels, topic, payload, lazy(payload), now, None, bridge)
            out["hot_data_us"] = round((time.process_time() - c0) / (n - births) * 1e6, 1)
            if run == 0:
                db = work / "store"
                db.mkdir()
                config = storm_config(db)
                store = Store.open(config.settings.store)
                pipeline = Pipeline(Processor(config, plugins, states=store), store,
                                    config.settings.pipeline, plugins)
                items = collect.items
                c0 = time.process_time()
                for i in range(0, len(items), 2000):
                    pipeline._handle(items[i:i + 2000])
                out["pipeline_us"] = round((time.process_time() - c0) / n * 1e6, 1)
                out["posts"] = store.count_posts()
                with store.engine.connect() as conn:  # which kinds: escalations are updates
                    table = schema.posts
                    out["post_types"] = {kind: count for kind, count in conn.execute(
                        select(table.c.type, func.count()).group_by(table.c.type)).all()}
                store.close()
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
