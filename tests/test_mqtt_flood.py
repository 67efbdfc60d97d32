"""Severity-aware flood control end to end on the shared local Mosquitto: a busy machine's
routine posts spend only the routine budget, so its fault (and the fault's clear) still go
out while the chatter is folded into a digest that counts it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from floorstream.plugins import build_plugins
from support import DaemonRunner, sentinel, wait_for
from support.mqtt import Publisher, Subscriptions

pytestmark = pytest.mark.mqtt


def _config(store: str, host: str, port: int, prefix: str) -> str:
    return f"""
store: {store}
flood: {{max_posts: 10, window: 5m}}
pipeline: {{batch_wait_ms: 1, tick_s: 1}}
sources:
  - name: cnc
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: fs-{prefix.replace('/', '-')}
    topics: ["{prefix}/+/data"]
    subject: "{{topic[-2]}}"
    position_field: n
    time_field: ts
    detect:
      - state_change: {{field: part, default_severity: info}}
      - threshold: {{field: temp, above: 85, clear_below: 80, severity: critical}}
"""


def _msg(n: int, ts_ms: int, **data: object) -> bytes:
    return json.dumps({"n": n, "ts": ts_ms, **data}).encode()


def test_fifty_routine_posts_then_a_fault_the_fault_posts(
        monkeypatch: pytest.MonkeyPatch, mqtt_broker: tuple[str, int], tmp_path: Path,
        topic_prefix: str) -> None:
    host, port = mqtt_broker
    prefix = topic_prefix
    subscriptions = Subscriptions().install(monkeypatch)
    runner = DaemonRunner(_config(f"sqlite:///{tmp_path}/fs.db", host, port, prefix),
                          plugins=build_plugins(load_entry_points=False)).start()
    publisher = Publisher(host, port)
    try:
        subscriptions.wait("cnc")
        base = int(time.time() * 1000) - 600_000  # the window lies in the recent past
        topic = f"{prefix}/cnc-1/data"
        messages = [(topic, _msg(n, base + n * 1000, part=n, temp=70)) for n in range(51)]
        messages += [
            (topic, _msg(51, base + 51_000, part=50, temp=95)),   # the fault
            (topic, _msg(52, base + 52_000, part=50, temp=70)),   # its clear
            (topic, _msg(53, base + 400_000, part=50, temp=70)),  # event time past the window
        ]
        publisher.publish_all(messages)
        wait_for(lambda: [p for p in runner.posts() if p.type == "flood.digest"], 20,
                 "the window's digest")
        sentinel(lambda: publisher.publish_all([(f"{prefix}/sentinel/data",
                                                 _msg(1, base + 401_000, temp=99))]),
                 lambda: any(p.subject == "sentinel" for p in runner.posts()))
        posts = [p for p in runner.posts() if p.subject == "cnc-1"]
        by_type: dict[str, list[str]] = {}
        for post in posts:
            by_type.setdefault(post.type, []).append(post.severity.label)
        assert by_type == {"machine.state_changed": ["info"] * 10,
                           "metric.limit_exceeded": ["critical"],
                           "metric.limit_cleared": ["info"],
                           "flood.digest": ["info"]}, by_type
        (fault,) = [p for p in posts if p.type == "metric.limit_exceeded"]
        (clear,) = [p for p in posts if p.type == "metric.limit_cleared"]
        assert clear.relation == "resolution" and clear.refers_to == fault.id
        (digest,) = [p for p in posts if p.type == "flood.digest"]
        # every routine post is shown or counted: 50 part changes, 10 shown, 40 folded
        assert digest.fields["suppressed"] == 40
        assert digest.fields["by_severity"] == {"info": 40}
        assert len({p.id for p in runner.posts()}) == len(runner.posts())
    finally:
        publisher.close()
        runner.close()
