"""A Sparkplug birth storm's checkpoints share the sessions' parts instead of a copy each.

Every birth changes a node's session, so every birth goes with the source's checkpoint —
the sessions of all nodes. Joined per birth, 2,200 births of 200 nodes x 10 devices left
114 MB of checkpoint text in the pipeline's queue (quadratic in the nodes). The host now
hands the emitter a ``CheckpointParts`` of the parts the sessions keep per node; the
pipeline joins the one it commits. Checked here: each checkpoint is exactly the text as of
its birth however late it is joined, the parts of unchanged nodes are shared, and the
pipeline commits the joined text (a restart reads it back).
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from floorstream.adapters.mqtt.config import MqttConfig
from floorstream.adapters.mqtt.sparkplug_b import encode_payload
from floorstream.adapters.mqtt.sparkplug_host import SparkplugHost
from floorstream.config import parse_config
from floorstream.pipeline import Pipeline
from floorstream.plugin import CheckpointParts, checkpoint_text
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import Store
from support.sparkplug import feed

T0 = 1_764_057_600_000
NODES, DEVICES = 12, 3


class _Keep:
    """Keeps each emission's checkpoint as given, with the host's text at that moment."""

    def __init__(self, host: SparkplugHost) -> None:
        self.host = host
        self.kept: list[tuple[Any, str]] = []

    def _keep(self, checkpoint: Any) -> None:
        if checkpoint is not None:
            self.kept.append((checkpoint, self.host.checkpoint_text({})))

    def emit(self, change: Any, *, ack: Any = None, checkpoint: Any = None) -> None:
        self._keep(checkpoint)

    def event(self, event: Any, *, ack: Any = None, checkpoint: Any = None) -> None:
        self._keep(checkpoint)

    def checkpoint(self, checkpoint: Any, *, ack: Any = None, state: Any = None) -> None:
        self._keep(checkpoint)

    def quarantine(self, raw: bytes, error: str, **kwargs: Any) -> None:
        raise AssertionError(error)


def _births() -> list[tuple[str, bytes]]:
    out = []
    for n in range(NODES):
        node = f"Gw{n}"
        out.append((f"spBv1.0/plant/NBIRTH/{node}", encode_payload(
            [{"name": "bdSeq", "datatype": "Int64", "value": 0},
             {"name": "Node Control/Rebirth", "alias": 1, "datatype": "Boolean",
              "value": False}], timestamp=T0, seq=0)))
        for d in range(DEVICES):
            out.append((f"spBv1.0/plant/DBIRTH/{node}/M{d}", encode_payload(
                [{"name": f"Temperature{k}", "alias": 10 + k, "datatype": "Double",
                  "value": 20.0 + k, "properties": {"engUnit": "degC"}} for k in range(5)],
                timestamp=T0 + 1, seq=d + 1)))
    return out


def _host() -> tuple[SparkplugHost, _Keep]:
    cfg = MqttConfig.model_validate({"name": "sp", "adapter": "mqtt", "decode": "sparkplug",
                                     "topics": ["spBv1.0/#"]})
    host = SparkplugHost(cfg, structlog.get_logger(), {}, None, None)
    keep = _Keep(host)
    host.start(keep, lambda: host.checkpoint_parts({}),  # type: ignore[arg-type]
               lambda topic, payload: None)
    return host, keep


def test_each_birth_checkpoint_is_the_text_as_of_its_birth_and_shares_the_parts() -> None:
    host, keep = _host()
    feed(host, _births())
    births = NODES * (DEVICES + 1)
    assert len(keep.kept) == births
    assert all(isinstance(cp, CheckpointParts) for cp, _ in keep.kept)
    # joined long after (every later birth changed the sessions): still its own moment's text
    for checkpoint, text_then in keep.kept:
        assert str(checkpoint) == checkpoint_text(checkpoint) == text_then
    final = keep.kept[-1][1]
    assert str(keep.kept[-1][0]) == host.checkpoint_text({})
    assert len(json.loads(final)["sparkplug"]) == NODES
    # what the queue holds: the parts are shared, so the distinct text is about one
    # checkpoint's worth, not one per birth
    distinct = {id(part): len(part) for cp, _ in keep.kept for part in cp.parts}
    joined = sum(len(text) for _, text in keep.kept)
    assert sum(distinct.values()) < 4 * len(final) < joined / 5


def test_the_pipeline_commits_the_joined_text_of_a_batchs_last_checkpoint(
        tmp_path: Any) -> None:
    host, keep = _host()
    feed(host, _births())
    plugins = build_plugins(load_entry_points=False)
    config = parse_config(f"""
store: sqlite:///{tmp_path}/fs.db
sources:
  - {{name: sp, adapter: simulator}}
""", plugins)
    store = Store.open(config.settings.store)
    pipeline = Pipeline(Processor(config, plugins, states=store), store,
                        config.settings.pipeline, plugins)
    half = len(keep.kept) // 2
    for part in (keep.kept[:half], keep.kept[half:]):
        pipeline.run_now([Envelope("sp", checkpoint=cp) for cp, _ in part])
        assert store.checkpoints() == {"sp": part[-1][1]}
    restored, _ = _host()
    restored.load(json.loads(store.checkpoints()["sp"]))
    assert restored.checkpoint_text({}) == host.checkpoint_text({})
    store.close()
