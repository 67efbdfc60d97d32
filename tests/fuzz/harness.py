"""Runs a fuzz corpus through a real daemon and says what became of every input.

The daemon runs in this process with four sources: ``fz-json`` (MQTT, JSON, ``position_field``
and ``time_field`` set, ``types`` checked), ``fz-value`` (MQTT, bare values), ``fz-spb`` (MQTT,
Sparkplug B) and ``fz-folder`` (``supply.folder``). MQTT inputs are published with QoS 1 on the
given broker, paced so the broker never queues more than a few hundred for the daemon; files
are renamed into the inbox. A marker input goes last on every source: once its post is in the
store, everything before it on that source was handled (one reading thread per source, commits
in order). A source whose marker is not posted in time is *stalled*.

Then every input is looked up: quarantine rows (by topic, subject or file name), posts (by
subject, or for files by the token in the subject or fields) and, for files, where the file
went (``done/``, ``failed/``, still in the inbox). A *crash* is anything that is not the input's
own fault: an error-level log line, a quarantine reason from the safety nets
(``internal error``, ``cannot be read``), a source restart, a dead pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from floorstream.adapters.mqtt.sparkplug_b import encode_payload
from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins
from floorstream.store import schema
from floorstream.store.store import Store

from .corpus import FILE_TEMPLATES, T0_MS, FuzzInput, Limits

__all__ = ["FuzzReport", "run_corpus"]

SOURCES = {"json": "fz-json", "value": "fz-value", "sparkplug": "fz-spb",
           "folder": "fz-folder"}
SAFETY_NETS = ("internal error", "cannot be read (")


@dataclass
class FuzzReport:
    inputs: int = 0
    quarantined: int = 0
    posted: int = 0
    accepted: int = 0  # handled, neither quarantined nor posted (an "either" input)
    crashes: list[str] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)
    #: expectation failures: an invalid input not quarantined, a valid one not posted…
    misses: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    rss_before: int = 0
    rss_after: int = 0
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    warnings: int = 0  # warning log lines (each quarantine logs one with its reason)
    #: warning and error log lines by event name
    log_events: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        mib = 1024 * 1024
        return (f"inputs={self.inputs} quarantined={self.quarantined} posted={self.posted} "
                f"accepted={self.accepted} crashes={len(self.crashes)} "
                f"stalls={len(self.stalls)} misses={len(self.misses)} "
                f"elapsed={self.elapsed:.1f}s rss_before={self.rss_before / mib:.0f}MiB "
                f"rss_after={self.rss_after / mib:.0f}MiB")


def config_text(store_url: str, host: str, port: int, prefix: str, group: str, inbox: Path,
                limits: Limits) -> str:
    client = prefix.replace("/", "-")
    mqtt_common = f"""    url: mqtt://{host}:{port}
    max_payload: {limits.mqtt_payload}
    qos: 1
"""
    return f"""
store: {store_url}
flood: null
default_team: everyone
pipeline: {{batch_wait_ms: 5}}
sources:
  - name: {SOURCES["json"]}
    adapter: mqtt
{mqtt_common}    client_id: {client}-json
    topics: ["{prefix}/json/+"]
    subject: "{{topic[-1]}}"
    position_field: seq
    time_field: ts
    types: {{temp: number}}
    detect:
      - state_change: {{field: state}}
      - threshold: {{field: temp, above: 50}}
  - name: {SOURCES["value"]}
    adapter: mqtt
{mqtt_common}    client_id: {client}-value
    decode: value
    topics: ["{prefix}/value/+"]
    subject: "{{topic[-1]}}"
    detect:
      - threshold: {{field: value, above: 50}}
  - name: {SOURCES["sparkplug"]}
    adapter: mqtt
{mqtt_common}    client_id: {client}-spb
    decode: sparkplug
    topics: ["spBv1.0/{group}/#"]
    # the corpus numbers messages across nodes (seq is no session order here) and never
    # births its nodes: used as they come, an unknown alias quarantined at once
    sparkplug: {{reorder_timeout: 0, birth_buffer: 0}}
    detect:
      - state_change: {{field: State}}
      - threshold: {{field: temp, above: 50}}
  - name: {SOURCES["folder"]}
    adapter: supply.folder
    path: {inbox}
    settle: 0
    poll: 0.05
    max_bytes: {limits.folder_bytes}
    csv: {{po: PO Number, line: Line, vendor_part: Item, qty: Qty, uom: UoM,
          ship_date: Ship Date, tracking: Tracking}}
"""


class _Publisher:
    """QoS 1 publisher that can wait until the broker acknowledged everything sent."""

    def __init__(self, host: str, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes) -> None:
        self.infos.append(self.client.publish(topic, payload, qos=1))

    def flush(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for info in self.infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        self.infos.clear()

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


def _wait(probe: Callable[[], Any], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@contextmanager
def _logs() -> Iterator[list[dict[str, Any]]]:
    """structlog's capture, thread-safe enough for appends (list.append is atomic)."""
    with structlog.testing.capture_logs() as captured:
        yield captured


def markers(prefix: str, group: str) -> dict[str, FuzzInput]:
    """One valid input per source, sent after everything else."""
    reading = json.dumps({"seq": 999_999, "ts": T0_MS, "state": "RUNNING", "temp": 99.0})
    spb = encode_payload([{"name": "temp", "datatype": "Double", "value": 99.0}],
                         timestamp=T0_MS, seq=0)
    return {
        "json": FuzzInput("jsMARK", "json", "marker", "valid", reading.encode(), "jsMARK",
                          "jsMARK"),
        "value": FuzzInput("vaMARK", "value", "marker", "valid", b"99", "vaMARK", "vaMARK"),
        "sparkplug": FuzzInput("spMARK", "sparkplug", "marker", "valid", spb,
                               "DDATA/marker/spMARK", "spMARK"),
        "folder": FuzzInput("fiMARK", "folder", "marker", "valid",
                            FILE_TEMPLATES["dcsa"]("FZMARK", 0), "fiMARK", "FZMARK"),
    }


def _topic(item: FuzzInput, prefix: str, group: str) -> str:
    if item.channel == "sparkplug":
        return f"spBv1.0/{group}/{item.topic}"
    return f"{prefix}/{item.channel}/{item.topic}"


def run_corpus(inputs: list[FuzzInput], *, workdir: Path, store_url: str, host: str,
               port: int, prefix: str, limits: Limits | None = None, timeout: float = 120.0,
               progress: Callable[[str], None] | None = None) -> FuzzReport:
    """Feed ``inputs`` (and the markers) to a fresh daemon; what became of each."""
    say = progress or (lambda _text: None)
    limits = limits or Limits()
    group = prefix.replace("/", "-")
    inbox, staging = workdir / "inbox", workdir / "staging"
    inbox.mkdir(parents=True)
    staging.mkdir()
    marks = markers(prefix, group)
    report = FuzzReport(inputs=len(inputs))
    process = psutil.Process()
    with _logs() as logs:
        plugins = build_plugins(load_entry_points=False)
        daemon = Daemon(parse_config(config_text(store_url, host, port, prefix, group, inbox,
                                                 limits), plugins), plugins)
        daemon.start()
        publisher: _Publisher | None = None
        started = time.monotonic()
        try:
            for channel in ("json", "value", "sparkplug"):
                if not _wait(lambda c=channel: _connected(daemon, SOURCES[c]), 15):
                    report.stalls.append(f"{SOURCES[channel]}: never connected")
            report.rss_before = process.memory_info().rss
            publisher = _Publisher(host, port)
            files = threading.Thread(target=_drop_files, args=(
                [i for i in inputs if i.channel == "folder"] + [marks["folder"]], inbox,
                staging), name="fuzz-files", daemon=True)
            files.start()
            sent = _publish(publisher, daemon, inputs, marks, prefix, group, say)
            files.join()
            say("all inputs sent; waiting for the markers")
            store = daemon.store
            for channel, marker in marks.items():
                source = SOURCES[channel]
                if not _wait(lambda s=source, m=marker: _posted(store, s, m), timeout, 0.2):
                    report.stalls.append(f"{source}: marker not posted within {timeout:.0f}s")
            _wait(lambda: not any(p.is_file() for p in inbox.iterdir()), 30)
            for channel, (count, base) in sent.items():
                received = daemon._adapters[SOURCES[channel]].received - base  # type: ignore[attr-defined]
                if received < count:  # the broker dropped some, or the adapter never saw them
                    report.stalls.append(f"{SOURCES[channel]}: received {received} of the "
                                         f"{count} messages published")
            report.elapsed = time.monotonic() - started
            report.rss_after = process.memory_info().rss
            for name, status in daemon.status.items():
                if status.restarts:
                    report.crashes.append(f"{name}: restarted {status.restarts} times "
                                          f"({status.last_error})")
            if not daemon.pipeline.alive or daemon.pipeline.error is not None:
                report.crashes.append(f"pipeline died: {daemon.pipeline.error!r}")
            _account(report, inputs, store, inbox, prefix, group)
        finally:
            if publisher is not None:
                publisher.close()
            daemon.stop(timeout=30)
    for entry in logs:
        if entry.get("log_level") in ("warning", "error", "critical"):
            report.log_events[str(entry.get("event"))] += 1
        if entry.get("log_level") in ("error", "critical"):
            detail = {k: str(v)[:200] for k, v in entry.items() if k not in ("log_level",)}
            report.crashes.append(f"error log: {detail}")
        elif entry.get("log_level") == "warning":
            report.warnings += 1
    return report


def _drop_files(files: list[FuzzInput], inbox: Path, staging: Path) -> None:
    """Write beside the inbox and rename in; the marker gets the latest mtime of all."""
    latest = 0
    for item in files:
        temp = staging / item.id
        temp.write_bytes(item.payload)
        stamp = os.stat(temp).st_mtime_ns
        if item.kind == "marker":
            stamp = max(stamp, latest) + 1_000_000_000
            os.utime(temp, ns=(stamp, stamp))
        latest = max(latest, stamp)
        os.replace(temp, inbox / item.id)


def _publish(publisher: _Publisher, daemon: Daemon, inputs: list[FuzzInput],
             marks: dict[str, FuzzInput], prefix: str, group: str,
             say: Callable[[str], None]) -> dict[str, tuple[int, int]]:
    """Publish every MQTT input in order, then the markers; pace on what the daemon has
    received, so the broker's per-client queue (1000 by default) never overflows."""
    sent: Counter[str] = Counter()
    base = {c: daemon._adapters[SOURCES[c]].received  # type: ignore[attr-defined]
            for c in ("json", "value", "sparkplug")}
    items = [i for i in inputs if i.channel != "folder"] + [marks[c] for c in
                                                             ("json", "value", "sparkplug")]
    for index, item in enumerate(items, start=1):
        publisher.publish(_topic(item, prefix, group), item.payload)
        sent[item.channel] += 1
        if index % 200 == 0:
            publisher.flush()
            for channel in ("json", "value", "sparkplug"):
                adapter = daemon._adapters[SOURCES[channel]]
                _wait(lambda a=adapter, c=channel: a.received - base[c] >= sent[c] - 300,
                      60, 0.02)
            if index % 2000 == 0:
                say(f"published {index} of {len(items)} MQTT inputs")
    publisher.flush()
    return {c: (sent[c], base[c]) for c in base}


def _posted(store: Store, source: str, marker: FuzzInput) -> bool:
    p = schema.posts
    with store.engine.connect() as conn:
        if marker.channel == "folder":
            subject = f"shipment {marker.token}"
        else:
            subject = marker.token or marker.id
        return conn.execute(select(p.c.seq).where(p.c.source == source,
                                                  p.c.subject == subject)
                            .limit(1)).first() is not None


def _connected(daemon: Daemon, source: str) -> bool:
    adapter = daemon._adapters.get(source)
    return adapter is not None and adapter.connected.is_set()  # type: ignore[attr-defined]


def _account(report: FuzzReport, inputs: list[FuzzInput], store: Store, inbox: Path,
             prefix: str, group: str) -> None:
    p, q = schema.posts, schema.quarantine
    with store.engine.connect() as conn:
        posts = conn.execute(select(p.c.source, p.c.subject, p.c.fields)).all()
        rows = conn.execute(select(q.c.source, q.c.position, q.c.error, q.c.context)).all()
    posted_subjects: dict[str, set[str]] = {}
    folder_text: list[str] = []
    for source, subject, fields in posts:
        posted_subjects.setdefault(source, set()).add(subject)
        if source == SOURCES["folder"]:
            folder_text.append(subject + " " + json.dumps(fields, default=str))
    folder_blob = "\n".join(folder_text)
    quarantined: dict[str, list[str]] = {}
    by_topic = {f"{i.channel}|{i.topic}": i.id for i in inputs}
    # the same bytes twice are one quarantine row (its key is the content's): both files count
    by_digest: dict[str, list[str]] = {}
    for item in inputs:
        if item.channel == "folder":
            by_digest.setdefault(hashlib.sha256(item.payload).hexdigest(), []).append(item.id)
    for source, position, error, context in rows:
        for net in SAFETY_NETS:
            if error.startswith(net) or f": {net}" in error:
                report.crashes.append(f"{source}: safety net hit: {error[:200]}")
        if source == SOURCES["folder"]:
            idents = by_digest.get((position or "").removeprefix("file:"), [])
        else:
            ident = _quarantined_id(source, context or {}, by_topic, prefix, group)
            idents = [ident] if ident is not None else []
        for ident in idents:
            quarantined.setdefault(ident, []).append(error)
    failed = {p.name for p in (inbox / "failed").iterdir()} if (
        inbox / "failed").exists() else set()
    left = {p.name for p in inbox.iterdir() if p.is_file()}
    for item in inputs:
        source = SOURCES[item.channel]
        is_quarantined = item.id in quarantined
        if item.channel == "folder":
            is_posted = item.token is not None and item.token in folder_blob
            if item.id in left:
                report.stalls.append(f"{item.id} ({item.kind}) still in the inbox")
            if (item.id in failed) != is_quarantined:
                report.misses.append(f"{item.id} ({item.kind}): in failed/ "
                                     f"{item.id in failed}, quarantined {is_quarantined}")
        else:
            is_posted = item.id in posted_subjects.get(source, set())
        outcome = ("quarantined" if is_quarantined else "posted" if is_posted
                   else "accepted")
        setattr(report, outcome, getattr(report, outcome) + 1)
        report.by_kind.setdefault(item.kind, Counter())[outcome] += 1
        if item.expect == "invalid" and not is_quarantined:
            report.misses.append(f"{item.id} ({item.kind}) invalid but {outcome}: "
                                 f"{item.payload[:80]!r}")
        elif item.expect == "valid" and (not is_posted or is_quarantined):
            why = "; ".join(quarantined.get(item.id, []))[:200]
            report.misses.append(f"{item.id} ({item.kind}) valid but {outcome} {why}: "
                                 f"{item.payload[:80]!r}")


def _quarantined_id(source: str, context: dict[str, Any], by_topic: dict[str, str],
                    prefix: str, group: str) -> str | None:
    """The input an MQTT quarantine row belongs to: by topic, or by subject for what a
    detector refused (json and value subjects and Sparkplug devices are the input ids)."""
    channel = next(c for c, s in SOURCES.items() if s == source)
    topic = str(context.get("topic") or "")
    if topic:
        head = f"spBv1.0/{group}/" if channel == "sparkplug" else f"{prefix}/{channel}/"
        return by_topic.get(f"{channel}|{topic.removeprefix(head)}")
    subject = context.get("subject")
    return str(subject) if subject else None
