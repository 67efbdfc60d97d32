"""Reading only what is read: a Sparkplug source whose detectors and templates name the
metrics they use gives the same posts and detector state as one that reads every metric.

The host (fed as the adapter's paho thread feeds it, lazily decoded records, no broker) hands
its Changes to the real pipeline on SQLite; the run with the source's interest (worked out as
the daemon does: floorstream.interest) and the run that reads everything must post the same
things with the same words and leave the same detector state. One metric is watched only by
the summary template; a plugin's detector that declares no fields gets them all.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, ClassVar

import structlog

from floorstream.adapters.mqtt.config import MqttConfig
from floorstream.adapters.mqtt.sparkplug_b import encode_payload
from floorstream.adapters.mqtt.sparkplug_host import SparkplugHost
from floorstream.config import parse_config
from floorstream.interest import source_interest, template_fields
from floorstream.pipeline import Pipeline
from floorstream.plugin import (
    Change,
    Detector,
    DetectorOptions,
    DetectorState,
    Event,
    Interest,
    Registry,
    Severity,
    hookimpl,
)
from floorstream.plugins import Plugins, build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import Store
from support.daemon import all_posts
from support.sparkplug import feed

T0 = 1_764_057_600_000
METRICS = [("State", "String"), ("Reason", "String"), ("Temp", "Double"), ("Load", "Float"),
           ("Other", "Int32"), ("Spare", "Double")]

CONFIG = """
store: sqlite:///{db}
flood: null
teams: {{maintenance: {{}}}}
default_team: maintenance
sources:
  - name: sp
    adapter: mqtt
    decode: sparkplug
    topics: ["spBv1.0/#"]
    sparkplug: {{reorder_timeout: 0s}}
    summary:
      "metric.limit_*": "{{{{ default }}}} at load {{{{ row.Load }}}}"
    detect:
      - state_change: {{field: State, reason: Reason, normal: [RUNNING]}}
      - threshold: {{field: Temp, above: 85, clear_below: 80, unit: "°C",
                    levels: {{critical: 90}}}}
      - silence: {{after: 60s}}
{extra}
"""


class OtherOptions(DetectorOptions):
    above: int = 50


class OtherHigh(Detector):
    """A plugin's detector that declares nothing (Detector.reads: None) and reads ``Other``."""

    name: ClassVar[str] = "other_high"
    options_model: ClassVar[type[DetectorOptions]] = OtherOptions

    def on_change(self, change: Change, state: DetectorState) -> list[Event]:
        value = change.data.get("Other")
        assert isinstance(self.options, OtherOptions)
        high = isinstance(value, int) and value > self.options.above
        if high == bool(state.data.get("high")):
            return []
        state.update(high=high)
        return [self.event(change, "test.other_high" if high else "test.other_ok",
                           Severity.NOTICE, {"other": value})] if high else []


class OtherPlugin:
    @hookimpl
    def register_detectors(self, registry: Registry[type[Detector]]) -> None:
        registry.add(OtherHigh)


def _stream() -> list[tuple[str, bytes]]:
    """Two nodes of two devices: births, then DDATA by alias that carry random subsets of the
    metrics (some none of interest), state changes with reasons, a temperature that rises
    through the levels and falls back, a skipped seq (a gap), two backfills (the second ended
    by values nobody reads), a death and a rebirth."""
    rnd = random.Random(5)
    out: list[tuple[str, bytes]] = []
    seqs = {"Gw1": 0, "Gw2": 0}

    def nxt(node: str) -> int:
        seqs[node] = (seqs[node] + 1) % 256
        return seqs[node]

    values: dict[str, list[Any]] = {}
    for node in seqs:
        out.append((f"spBv1.0/g/NBIRTH/{node}", encode_payload(
            [{"name": "bdSeq", "datatype": "Int64", "value": 0}], timestamp=T0, seq=0)))
        for device in ("M1", "M2"):
            values[f"{node}/{device}"] = ["RUNNING", "", 70.0, 1.0, 0, 0.0]
            out.append((f"spBv1.0/g/DBIRTH/{node}/{device}", encode_payload(
                [{"name": name, "alias": i + 1, "datatype": t, "value": v}
                 for i, ((name, t), v) in enumerate(zip(METRICS, values[f"{node}/{device}"],
                                                        strict=True))],
                timestamp=T0 + 1, seq=nxt(node))))
    stamp = T0 + 10_000
    for k in range(600):
        stamp += 1000
        node, device = rnd.choice(list(seqs)), rnd.choice(["M1", "M2"])
        v = values[f"{node}/{device}"]
        if rnd.random() < 0.05:
            v[0], v[1] = rnd.choice([("STOPPED", "Jam"), ("RUNNING", ""), ("HELD", "Blocked")])
        v[2] = max(60.0, min(99.0, v[2] + rnd.uniform(-3, 3.4)))
        v[3] = round(rnd.uniform(0, 5), 2)
        v[4] = rnd.randrange(0, 100)
        v[5] = rnd.uniform(0, 1)
        chosen = [i for i in range(len(METRICS)) if rnd.random() < 0.6]
        if k % 7 == 0:
            chosen = [4, 5]  # Other and Spare only: of interest to OtherHigh alone
        if k == 200:
            nxt(node)  # a gap
        if k in (300, 450):  # a store-and-forward flush, then (450) unwatched values end it
            for back in range(5):
                out.append((f"spBv1.0/g/DDATA/{node}/{device}", encode_payload(
                    [{"alias": i + 1, "datatype": METRICS[i][1], "value": v[i],
                      "is_historical": True, "timestamp": stamp - 60_000 + back * 1000}
                     for i in (2, 3, 4)], timestamp=stamp, seq=nxt(node))))
            if k == 450:
                chosen = [4, 5]
        out.append((f"spBv1.0/g/DDATA/{node}/{device}", encode_payload(
            [{"alias": i + 1, "datatype": METRICS[i][1], "value": v[i]} for i in chosen],
            timestamp=stamp, seq=nxt(node))))
        if k == 400:
            out.append(("spBv1.0/g/NDEATH/Gw2", encode_payload(
                [{"name": "bdSeq", "datatype": "Int64", "value": 0}], timestamp=stamp)))
            seqs["Gw2"] = 0
            out.append(("spBv1.0/g/NBIRTH/Gw2", encode_payload(
                [{"name": "bdSeq", "datatype": "Int64", "value": 1}], timestamp=stamp + 1,
                seq=0)))
            for dev in ("M1", "M2"):
                out.append((f"spBv1.0/g/DBIRTH/Gw2/{dev}", encode_payload(
                    [{"name": name, "alias": i + 1, "datatype": t, "value": val}
                     for i, ((name, t), val) in enumerate(zip(METRICS, values[f"Gw2/{dev}"],
                                                              strict=True))],
                    timestamp=stamp + 2, seq=nxt("Gw2"))))
    return out


class _Envelopes:
    """The emitter: what the host hands the pipeline, as envelopes."""

    def __init__(self) -> None:
        self.items: list[Envelope] = []

    def emit(self, change: Change, *, ack: Any = None, checkpoint: str | None = None) -> None:
        self.items.append(Envelope("sp", change=change, checkpoint=checkpoint))

    def event(self, event: Event, *, ack: Any = None, checkpoint: str | None = None) -> None:
        self.items.append(Envelope("sp", event=event, checkpoint=checkpoint))

    def checkpoint(self, checkpoint: str | None, *, ack: Any = None) -> None:
        self.items.append(Envelope("sp", checkpoint=checkpoint))

    def quarantine(self, raw: bytes, error: str, **kwargs: Any) -> None:
        raise AssertionError(f"nothing in this stream is bad: {error}")


def _run(tmp: Path, name: str, plugins: Plugins, extra: str, interest: Interest | None
         ) -> tuple[Interest, list[tuple[Any, ...]], dict[tuple[str, str], Any], int]:
    """The source's own interest, and the posts, detector states and the number of values in
    Changes of the stream read with that interest (``interest`` None) or the one given."""
    db = tmp / f"{name}.db"
    config = parse_config(CONFIG.format(db=db, extra=extra), plugins)
    processor_for_interest = Processor(config, plugins)
    own = source_interest([d for d, _ in processor_for_interest.sources["sp"].detectors],
                          config.sources[0].summary, False)
    cfg = MqttConfig.model_validate({"name": "sp", "adapter": "mqtt", "decode": "sparkplug",
                                     "topics": ["spBv1.0/#"],
                                     "sparkplug": {"reorder_timeout": "0s"}})
    host = SparkplugHost(cfg, structlog.get_logger(), {}, None,
                         own if interest is None else interest)
    host.presence_lag = 0.0  # every quiet message told at once: the same silence state
    emitter = _Envelopes()
    host.start(emitter, host.sessions.dump_text,  # type: ignore[arg-type]
               lambda topic, payload: None)
    feed(host, _stream())
    store = Store.open(config.settings.store)
    try:
        processor = Processor(config, plugins, states=store)
        pipeline = Pipeline(processor, store, config.settings.pipeline, plugins)
        items = emitter.items
        for start in range(0, len(items), 100):
            pipeline._handle(items[start:start + 100])
        posts = [(p.id, p.type, p.subject, p.summary, p.severity, p.refers_to, p.thread)
                 for p in all_posts(store)]
        states = {key: state.data for key, state in processor.sources["sp"].states.items()
                  if key[1] != "replay-guard"}
    finally:
        store.close()
    values = sum(len(item.change.data) for item in items if item.change is not None)
    return own, posts, states, values


def test_reading_only_the_metrics_of_interest_posts_the_same(tmp_path: Path) -> None:
    plugins = build_plugins(load_entry_points=False)
    own, posts, states, values = _run(tmp_path, "interest", plugins, "", None)
    assert own.fields == frozenset({"State", "Reason", "Temp", "Load"})  # Load: the template's
    assert own.presence_lag == 1.0  # silence after 60 s: a second at most
    _, posts_all, states_all, values_all = _run(tmp_path, "all", plugins, "", Interest())
    types = {post[1] for post in posts}
    assert {"machine.state_changed", "metric.limit_exceeded", "metric.limit_cleared",
            "machine.offline", "machine.online", "metric.backfilled"} <= types
    assert any(" at load " in post[3] for post in posts)  # the template read Load
    assert posts == posts_all
    assert states == states_all  # silence's last position included: presence Changes
    assert values < values_all * 0.8  # the others were never read


def test_a_detector_that_declares_no_fields_gets_every_field(tmp_path: Path) -> None:
    plugins = build_plugins(extra=[OtherPlugin()], load_entry_points=False)
    extra = "      - other_high: {above: 90}"
    own, posts, states, _ = _run(tmp_path, "plugin", plugins, extra, None)
    assert own == Interest()  # OtherHigh declares nothing: every field of every message
    assert any(post[1] == "test.other_high" for post in posts)
    _, posts_all, states_all, _ = _run(tmp_path, "plugin-all", plugins, extra, Interest())
    assert (posts, states) == (posts_all, states_all)


def test_what_templates_read() -> None:
    assert template_fields("{{ row.Temp }} {{ fields.peak }} {{ subject }}") == frozenset(
        {"Temp"})
    assert template_fields('{{ row["Motor/Speed"] }} was {{ before.State }}') == frozenset(
        {"Motor/Speed", "State"})
    assert template_fields("{{ row.spindle.temp }}") == frozenset({"spindle"})
    for anything in ("{{ row.get('Temp') }}", "{% for k in row %}{{ k }}{% endfor %}",
                     "{{ row[name] }}", "{{ event.change.data.Temp }}", "{{ row }}",
                     "{{ unclosed"):
        assert template_fields(anything) is None, anything
