"""The Sparkplug fast paths decide exactly as the general ones.

``decode_compact`` reads each metric's fields once and the common scalar values inline; the
host translates a plain DATA message (alias-only, live) without the general stages. Both exist
for speed only (bench/sparkplug_micro.py), so they are checked against the slow paths: the
compact tuples against ``decode``'s dicts, and a whole session's output with the host's fast
path switched off against its output with it on — for a stream with births, control metrics,
unknown aliases, a gap, late readings, out-of-range times, deaths and rebirths. No broker: the
host is fed decoded messages directly, as the adapter's paho thread does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from floorstream.adapters.mqtt.adapter import _compact
from floorstream.adapters.mqtt.config import MqttConfig
from floorstream.adapters.mqtt.sparkplug import classify
from floorstream.adapters.mqtt.sparkplug_b import SparkplugDecoder, complete, encode_payload
from floorstream.adapters.mqtt.sparkplug_host import SparkplugHost
from floorstream.plugin import DecodeError, Interest

T0 = 1_764_057_600_000
NAMES = [("State", "String"), ("Temp", "Double"), ("Load", "Float"), ("Count", "Int64"),
         ("Delta", "Int32"), ("On", "Boolean"), ("Small", "Int8"), ("Big", "UInt64")]


def _value(rnd: random.Random, datatype: str) -> Any:
    makers: dict[str, Callable[[], Any]] = {
        "String": lambda: rnd.choice(["RUNNING", "STOPPED", "ü-ß"]),
        "Double": lambda: round(rnd.uniform(-100, 100), 3),
        "Float": lambda: round(rnd.uniform(0, 5), 2),
        "Int64": lambda: rnd.randrange(-2**63, 2**63),
        "Int32": lambda: rnd.randrange(-2**31, 2**31),
        "Boolean": lambda: rnd.random() < 0.5,
        "Int8": lambda: rnd.randrange(-128, 128),
        "UInt64": lambda: rnd.randrange(0, 2**64)}
    return makers[datatype]()


def test_compact_decoding_matches_the_full_decoder() -> None:
    decoder = SparkplugDecoder()
    rnd = random.Random(7)
    for n in range(300):
        metrics: list[dict[str, Any]] = []
        for index, (name, datatype) in enumerate(NAMES):
            if rnd.random() < 0.3:
                continue
            spec: dict[str, Any] = {"alias": index + 1, "datatype": datatype,
                                    "value": None if rnd.random() < 0.1
                                    else _value(rnd, datatype)}
            if rnd.random() < 0.3:
                spec["name"] = name
            if rnd.random() < 0.2:
                spec["is_historical"] = True
                spec["timestamp"] = T0 + n
            metrics.append(spec)
        payload = encode_payload(metrics, timestamp=T0 + n, seq=n % 256)
        full, compact = decoder.decode(payload), decoder.decode_compact(payload)
        assert compact["metrics"] == [
            (m["name"] or None, m["alias"], m["timestamp"] or None, m["is_historical"],
             m["value"]) for m in full["metrics"]], metrics
        assert compact["plain"] == all(m["name"] is None and not m["is_historical"]
                                       for m in full["metrics"])
        assert (compact["seq"], compact["timestamp"]) == (full["seq"], full["timestamp"])


@pytest.mark.parametrize("spec, error", [
    ({"alias": 1, "datatype": "String", "value": "a\x00b"}, "NUL"),
    ({"alias": 1, "datatype": "Int32", "value": "7", "field": "string_value"},
     "declared Int32 but carries string_value"),
    ({"alias": 1, "datatype": "Double", "value": True, "field": "boolean_value"},
     "declared Double but carries boolean_value"),
])
def test_compact_decoding_refuses_what_the_full_decoder_refuses(spec: dict[str, Any],
                                                                  error: str) -> None:
    decoder = SparkplugDecoder()
    payload = encode_payload([spec], timestamp=T0, seq=1)
    for decode in (decoder.decode, decoder.decode_compact):
        with pytest.raises(DecodeError, match=error):
            decode(payload)


class _Collect:
    """What the host hands the pipeline, as comparable values."""

    def __init__(self) -> None:
        self.out: list[Any] = []

    def emit(self, change: Any, *, ack: Any = None, checkpoint: str | None = None) -> None:
        self.out.append(("change", dict(change.__dict__), checkpoint))

    def event(self, event: Any, *, ack: Any = None, checkpoint: str | None = None) -> None:
        self.out.append(("event", event.type, event.subject, event.position,
                         dict(event.fields), checkpoint))

    def checkpoint(self, checkpoint: str | None, *, ack: Any = None) -> None:
        self.out.append(("checkpoint", checkpoint))

    def quarantine(self, raw: bytes, error: str, **kwargs: Any) -> None:
        self.out.append(("quarantine", raw, error))


def _stream() -> list[tuple[str, bytes]]:
    """Two nodes with devices: births, plain DATA, a control metric by alias, an unknown alias,
    a skipped seq (a gap after the timeout), old readings, a time out of range, a named
    metric, NDATA, a death and a rebirth."""
    rnd = random.Random(11)
    out: list[tuple[str, bytes]] = []
    seqs = {"Gw1": 0, "Gw2": 0}

    def nxt(node: str) -> int:
        seqs[node] = (seqs[node] + 1) % 256
        return seqs[node]

    def data(node: str, device: str | None, metrics: list[dict[str, Any]], stamp: int,
             seq: int | None = None) -> None:
        topic = f"spBv1.0/g/{'DDATA' if device else 'NDATA'}/{node}" + (
            f"/{device}" if device else "")
        out.append((topic, encode_payload(metrics, timestamp=stamp,
                                          seq=nxt(node) if seq is None else seq)))

    for node in seqs:
        out.append((f"spBv1.0/g/NBIRTH/{node}", encode_payload(
            [{"name": "bdSeq", "datatype": "Int64", "value": 0},
             {"name": "Node Control/Rebirth", "alias": 50, "datatype": "Boolean",
              "value": False},
             {"name": "Uptime", "alias": 51, "datatype": "Int64", "value": 1}],
            timestamp=T0, seq=0)))
        for device in ("M1", "M2"):
            out.append((f"spBv1.0/g/DBIRTH/{node}/{device}", encode_payload(
                [{"name": name, "alias": i + 1, "datatype": t, "value": _value(rnd, t)}
                 for i, (name, t) in enumerate(NAMES)], timestamp=T0 + 1, seq=nxt(node))))
    stamp = T0 + 10_000
    for k in range(400):
        stamp += 1000
        node, device = rnd.choice(list(seqs)), rnd.choice(["M1", "M2"])
        plain = [{"alias": i + 1, "datatype": t, "value": _value(rnd, t)}
                 for i, (_, t) in enumerate(NAMES) if rnd.random() < 0.8]
        r = rnd.random()
        if k in (150, 250):
            nxt(node)  # a number never sent: a gap (no reordering: flagged at once)
        elif k == 390:
            plain.append({"alias": 99, "datatype": "Double", "value": 1.0})  # unknown alias
        elif r < 0.03:
            plain.append({"alias": 50, "datatype": "Boolean", "value": True})  # control
        elif r < 0.05:
            data(node, device, plain, stamp - 120_000)  # an old reading: late, history
            continue
        elif r < 0.06:
            data(node, device, plain, 99_999_999_999_999)  # a time out of range
            continue
        elif r < 0.08:
            plain[0:0] = [{"name": "Temp", "datatype": "Double", "value": 1.5}]  # named
        elif r < 0.10:
            data(node, None, [{"alias": 51, "datatype": "Int64", "value": k}], stamp)
            continue
        data(node, device, plain, stamp)
        if k == 300:  # Gw2 dies and is born again
            out.append(("spBv1.0/g/NDEATH/Gw2", encode_payload(
                [{"name": "bdSeq", "datatype": "Int64", "value": 0}], timestamp=stamp)))
            seqs["Gw2"] = 0
            out.append(("spBv1.0/g/NBIRTH/Gw2", encode_payload(
                [{"name": "bdSeq", "datatype": "Int64", "value": 1}], timestamp=stamp + 1,
                seq=0)))
    return out


def _run(fast: bool, monkeypatch: pytest.MonkeyPatch, plugin: bool = False,
         lazy: bool = False, interest: Interest | None = None,
         stream: list[tuple[str, bytes]] | None = None) -> tuple[list[Any], int]:
    """The host's output for :func:`_stream`, and how many messages took the fast path.
    ``plugin``: records as the adapter makes them from a plugin's decoder without
    ``decode_compact`` (no ``plain`` key); ``lazy``: as the adapter makes them from the
    builtin decoder (``decode_lazy``); ``interest``: what the source's consumers read."""
    taken = [0]
    with monkeypatch.context() as patch:
        if fast:
            plain = SparkplugHost._plain

            def counted(self: SparkplugHost, *fields: Any) -> bool:
                done = plain(self, *fields)
                taken[0] += done
                return done
            patch.setattr(SparkplugHost, "_plain", counted)
        else:
            patch.setattr(SparkplugHost, "_plain", lambda self, *fields: False)
        cfg = MqttConfig.model_validate({
            "name": "sp", "adapter": "mqtt", "decode": "sparkplug", "topics": ["spBv1.0/#"],
            "sparkplug": {"reorder_timeout": "0s", "late_after": "60s"}})
        host = SparkplugHost(cfg, structlog.get_logger(), {"site": "a"}, None, interest)
        collect = _Collect()
        host.start(collect, host.sessions.dump_text,  # type: ignore[arg-type]
                   lambda topic, payload: None)
        decoder = SparkplugDecoder()
        decode = _compact(decoder.decode) if plugin else (
            decoder.decode_lazy if lazy else decoder.decode_compact)
        observed = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
        for topic, payload in _stream() if stream is None else stream:
            _, levels, bridge = classify(topic.split("/"), None)
            try:
                record = decode(payload)
            except DecodeError as exc:
                collect.quarantine(payload, str(exc))
                continue
            host.message(levels, topic, payload, record, observed, None, bridge)
            host._tick()
        return collect.out, taken[0]


def test_the_hosts_fast_path_emits_what_the_general_path_emits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    (fast, taken), (general, _) = _run(True, monkeypatch), _run(False, monkeypatch)
    assert taken > 250  # most DATA took the fast path
    events = {item[1] for item in general if item[0] == "event"}
    assert {"metric.backfilled", "sparkplug.awaiting_birth", "machine.offline",
            "machine.online"} <= events  # the stream reaches the other stages
    assert any(item[0] == "quarantine" for item in general)
    assert sum(1 for item in general if item[0] == "change" and item[1]["attrs"].get(
        "uncertain")) >= 2  # the gaps were marked
    assert fast == general


def test_records_of_a_plugins_decoder_take_the_general_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    (fast, taken), (general, _) = (_run(True, monkeypatch, plugin=True),
                                   _run(False, monkeypatch, plugin=True))
    assert taken == 0 and fast == general
    assert sum(1 for item in general if item[0] == "change") > 250


@pytest.mark.parametrize("fields", [None, frozenset({"State", "Temp"}), frozenset({"Big"}),
                                    frozenset()])
def test_lazy_records_and_an_interest_take_the_fast_path_as_the_general_one(
        fields: frozenset[str] | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter's records (``decode_lazy``: metrics read by the session, of interest
    only) decide as the compact ones, fast path or not, with any interest: everything, two
    metrics, one metric that only some messages carry (the others are quiet: presence
    Changes), none (a source with only ``silence``)."""
    interest = Interest(fields)
    (fast, taken), (general, _) = (_run(True, monkeypatch, lazy=True, interest=interest),
                                   _run(False, monkeypatch, lazy=True, interest=interest))
    assert taken > 250 and fast == general
    compact, _ = _run(True, monkeypatch, interest=interest)
    assert compact == fast
    changes = [item[1] for item in fast if item[0] == "change"]
    if fields is None:
        assert fast == _run(True, monkeypatch)[0]  # as without an interest
    else:
        assert all(set(change["data"]) <= fields for change in changes)
        assert any(not change["data"] for change in changes)  # presence: nothing of interest
    assert {"metric.backfilled", "machine.offline", "machine.online"} <= {
        item[1] for item in fast if item[0] == "event"}
    assert any(item[0] == "quarantine" for item in fast)


def test_a_value_the_decoder_refuses_is_quarantined_when_it_is_read() -> None:
    """decode_lazy parses; a metric value that contradicts its datatype is refused where the
    session reads it (complete: the general path, births), as decode_compact refuses it."""
    decoder = SparkplugDecoder()
    payload = encode_payload([{"alias": 1, "datatype": "Int32", "value": "7",
                               "field": "string_value"}], timestamp=T0, seq=1)
    record = decoder.decode_lazy(payload)
    assert (record["seq"], record["timestamp"]) == (1, T0) and "metrics" not in record
    with pytest.raises(DecodeError, match="declared Int32 but carries string_value"):
        complete(record)
    with pytest.raises(DecodeError, match="not a Sparkplug B payload"):
        decoder.decode_lazy(b"\xff\xff\xff")


def _presence_stream() -> list[tuple[str, bytes]]:
    """One device: a birth, then six DDATA of which the middle four carry only ``Load``."""
    out = [("spBv1.0/g/NBIRTH/Gw1", encode_payload(
        [{"name": "bdSeq", "datatype": "Int64", "value": 0}], timestamp=T0, seq=0)),
           ("spBv1.0/g/DBIRTH/Gw1/M1", encode_payload(
               [{"name": "State", "alias": 1, "datatype": "String", "value": "RUNNING"},
                {"name": "Load", "alias": 2, "datatype": "Float", "value": 1.0}],
               timestamp=T0 + 1, seq=1))]
    for k in range(6):
        metrics: list[dict[str, Any]] = [{"alias": 2, "datatype": "Float", "value": float(k)}]
        if k in (0, 5):
            metrics.append({"alias": 1, "datatype": "String", "value": "STOPPED" if k
                            else "RUNNING"})
        out.append(("spBv1.0/g/DDATA/Gw1/M1", encode_payload(
            metrics, timestamp=T0 + 1000 * (k + 1), seq=k + 2)))
    return out


def test_a_subject_whose_values_nobody_reads_is_still_heard_of(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages with nothing of interest make no Change each, but the pipeline hears of the
    subject (silence, the watermark): the first one at once, the latest of the rest when the
    presence lag is over (here: at once, lag 0) — and on the general path alike."""
    interest = Interest(frozenset({"State"}), presence_lag=3600.0)
    out, _ = _run(True, monkeypatch, lazy=True, interest=interest, stream=_presence_stream())
    changes = [(item[1]["position"], item[1]["data"]) for item in out if item[0] == "change"]
    assert changes == [
        ("g/Gw1|0|0|1764057600000", {}),  # the node's birth
        ("g/Gw1|0|1|1764057600001", {"State": "RUNNING"}),  # the birth's values of interest
        ("g/Gw1|0|2|1764057601000", {"State": "RUNNING"}),
        ("g/Gw1|0|3|1764057602000", {}),  # the first quiet one: at once
        ("g/Gw1|0|7|1764057606000", {"State": "STOPPED"})]  # 4-6 untold: 7 tells of them
    quick = Interest(frozenset({"State"}), presence_lag=0.0)
    out, _ = _run(True, monkeypatch, lazy=True, interest=quick, stream=_presence_stream())
    general, _ = _run(False, monkeypatch, lazy=True, interest=quick,
                      stream=_presence_stream())
    assert out == general
    changes = [(item[1]["position"], item[1]["data"]) for item in out if item[0] == "change"]
    assert [data for _, data in changes] == [
        {}, {"State": "RUNNING"}, {"State": "RUNNING"}, {}, {}, {}, {}, {"State": "STOPPED"}]
    assert [position.split("|")[2] for position, _ in changes] == [
        "0", "1", "2", "3", "4", "5", "6", "7"]


def test_untold_presence_goes_out_with_the_tick() -> None:
    """The latest quiet message of a subject is told when the lag is over (the host's tick),
    and before a death of its node."""
    cfg = MqttConfig.model_validate({"name": "sp", "adapter": "mqtt", "decode": "sparkplug",
                                     "topics": ["spBv1.0/#"],
                                     "sparkplug": {"reorder_timeout": "0s"}})
    assert SparkplugHost(cfg, structlog.get_logger(), {}, None, Interest(
        frozenset({"State"}), presence_lag=0.05)).tick_interval <= 0.05  # ticks often enough
    host = SparkplugHost(cfg, structlog.get_logger(), {}, None,
                         Interest(frozenset({"State"}), presence_lag=30.0))
    collect = _Collect()
    host.start(collect, host.sessions.dump_text,  # type: ignore[arg-type]
               lambda topic, payload: None)
    decoder = SparkplugDecoder()
    observed = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    stream = _presence_stream()
    for topic, payload in stream[:6]:  # births, the first values, three quiet
        _, levels, bridge = classify(topic.split("/"), None)
        host.message(levels, topic, payload, decoder.decode_lazy(payload), observed, None,
                     bridge)
    positions = [item[1]["position"] for item in collect.out if item[0] == "change"]
    assert [p.split("|")[2] for p in positions] == ["0", "1", "2", "3"]  # 4 and 5 untold
    host.told_at -= 60.0
    host._tick()
    positions = [item[1]["position"] for item in collect.out if item[0] == "change"]
    assert [p.split("|")[2] for p in positions] == ["0", "1", "2", "3", "5"]  # the latest
    host._tick()
    assert len([item for item in collect.out if item[0] == "change"]) == 5  # nothing new
    topic, payload = stream[6]
    _, levels, bridge = classify(topic.split("/"), None)
    host.message(levels, topic, payload, decoder.decode_lazy(payload), observed, None, bridge)
    topic, payload = ("spBv1.0/g/NDEATH/Gw1", encode_payload(
        [{"name": "bdSeq", "datatype": "Int64", "value": 0}], timestamp=T0 + 9000))
    _, levels, bridge = classify(topic.split("/"), None)
    host.message(levels, topic, payload, decoder.decode_lazy(payload), observed, None, bridge)
    kinds = [item[1]["kind"] if item[0] == "change" else item[1] for item in collect.out
             if item[0] in ("change", "event")]
    assert kinds[-4:] == ["telemetry", "machine.offline",  # 6 told before the death
                          "presence.offline", "presence.offline"]  # (node, device: silence)
