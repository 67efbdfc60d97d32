"""Sinks against real local services: Mosquitto, files, Slack-API threading, digests."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import update

from floorstream.delivery.outbox import Outbox
from floorstream.delivery.policy import TeamPolicy
from floorstream.delivery.service import DeliveryService
from floorstream.model import Severity
from floorstream.store import schema
from floorstream.store.store import Store
from support import http_receiver, wait_for

from .helpers import commit, config, make_post


def _run(store_url: str, yaml: str, env: dict[str, str] | None = None) -> tuple[
        DeliveryService, Store, Outbox]:
    cfg, plugins = config(yaml, env)
    store = Store.open(store_url)
    service = DeliveryService(cfg, plugins, store, poll=0.02)
    return service, store, Outbox(store.engine)


@pytest.mark.mqtt
def test_mqtt_sink_republishes_with_qos1(sqlite_url: str, mqtt_broker: tuple[str, int],
                                         topic_prefix: str) -> None:
    host, port = mqtt_broker
    got: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = lambda _c, _u, m: got.append(m)
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect(host, port)
    sub.loop_start()
    sub.subscribe(f"{topic_prefix}/#", qos=1)
    assert subscribed.wait(5)
    service, store, _outbox = _run(sqlite_url, f"""
store: {sqlite_url}
teams: {{maintenance: {{sinks: [andon]}}}}
sinks:
  - {{name: andon, type: mqtt, host: {host}, port: {port},
     topic: "{topic_prefix}/{{team}}/{{subject}}"}}
""")
    commit(store, [make_post(1, "maintenance", subject="press/07")], {"maintenance": ["andon"]})
    service.start()
    try:
        wait_for(lambda: len(got) == 1, what="the MQTT message")
    finally:
        service.stop()
        store.close()
        sub.loop_stop()
        sub.disconnect()
    assert got[0].topic == f"{topic_prefix}/maintenance/press_07"
    assert got[0].qos == 1
    body = json.loads(got[0].payload)
    assert body["summary"] == "maintenance post 1" and body["floorstream:team"] == "maintenance"
    assert len(body["floorstream:idempotencyKey"]) == 32


def test_file_sink_writes_json_lines_and_rotates(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "out" / "posts.jsonl"
    service, store, outbox = _run(sqlite_url, f"""
store: {sqlite_url}
teams: {{maintenance: {{sinks: [archive]}}}}
sinks:
  - {{name: archive, type: file, path: "{path}", max_bytes: 3000, backups: 2}}
""")
    posts = [make_post(n, "maintenance") for n in range(12)]
    commit(store, posts, {"maintenance": ["archive"]})
    service.start()
    try:
        wait_for(lambda: outbox.counts() == {"delivered": 12}, what="all written")
    finally:
        service.stop()
        store.close()
    files = [path, path.with_name("posts.jsonl.1"), path.with_name("posts.jsonl.2")]
    assert all(f.exists() for f in files) and not path.with_name("posts.jsonl.3").exists()
    assert all(f.stat().st_size <= 3000 for f in files)
    lines = [json.loads(line) for f in reversed(files) for line in f.read_text().splitlines()]
    summaries = [line["summary"] for line in lines]
    assert summaries == [f"maintenance post {n}" for n in range(12)][-len(summaries):]


def test_slack_api_threads_the_clearing_post(sqlite_url: str) -> None:
    with http_receiver() as rec:
        url = rec.url
        counter = iter(range(1, 100))
        rec.reply = lambda r: (200, {}, json.dumps(
            {"ok": True, "ts": f"1700000000.{next(counter):06d}"}).encode())
        service, store, outbox = _run(sqlite_url, f"""
store: {sqlite_url}
teams: {{maintenance: {{sinks: [slack]}}}}
sinks:
  - {{name: slack, type: webhook, format: slack, url: "{url}/api/chat.postMessage",
     token: "${{SLACK_TOKEN}}", channel: C042}}
""", {"SLACK_TOKEN": "xoxb-test-token"})
        alarm = make_post(1, "maintenance", severity=Severity.CRITICAL)
        clear = make_post(2, "maintenance", clears=alarm.id)
        commit(store, [alarm], {"maintenance": ["slack"]})
        commit(store, [clear], {"maintenance": ["slack"]})
        service.start()
        try:
            wait_for(lambda: outbox.counts() == {"delivered": 2}, what="both sent")
        finally:
            service.stop()
            store.close()
    first, second = (r.json for r in rec.requests)
    assert first["channel"] == "C042" and "thread_ts" not in first
    assert second["thread_ts"] == "1700000000.000001"
    assert rec.requests[0].headers["authorization"] == "Bearer xoxb-test-token"


def test_info_posts_wait_for_the_digest_while_warnings_go_at_once(sqlite_url: str) -> None:
    with http_receiver() as rec:
        url = rec.url
        service, store, outbox = _run(sqlite_url, f"""
store: {sqlite_url}
teams: {{maintenance: {{sinks: [chat], immediate: warning, digest: 1h}}}}
sinks:
  - {{name: chat, type: webhook, url: "{url}/hook"}}
""")
        infos = [make_post(n, "maintenance", severity=Severity.INFO) for n in range(5)]
        warning = make_post(9, "maintenance", severity=Severity.WARNING)
        commit(store, [*infos, warning], {"maintenance": ["chat"]})
        service.start()
        try:
            wait_for(lambda: outbox.counts() == {"held": 5, "delivered": 1}, what="triage")
            assert [r.json["summary"] for r in rec.requests] == ["maintenance post 9"]
            with store.engine.begin() as conn:  # the hour has passed
                conn.execute(update(schema.deliveries).where(
                    schema.deliveries.c.status == "held").values(
                    next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
            service.wake()
            wait_for(lambda: outbox.counts() == {"delivered": 6}, what="the digest")
        finally:
            service.stop()
            store.close()
    assert len(rec.requests) == 2
    digest = rec.requests[1].json
    assert digest["summary"].startswith("Digest for maintenance: 5 posts (5 info)")
    assert [i["summary"] for i in digest["object"]["items"]] == [p.summary for p in infos]


def test_policy_release_times() -> None:
    berlin = TeamPolicy.parse("warning", "06:00,14:00,22:00", "22:00-06:00", "Europe/Berlin")
    at = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)  # 13:30 in Berlin
    assert berlin.release_at(Severity.CRITICAL, at) is None
    assert berlin.release_at(Severity.INFO, at) == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    night = datetime(2026, 11, 25, 20, 30, tzinfo=UTC)  # 21:30 → 22:00 shift is quiet → 06:00
    assert berlin.release_at(Severity.INFO, night) == datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
    hourly = TeamPolicy.parse("critical", "1h")
    assert hourly.release_at(Severity.WARNING, at) == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    quiet_only = TeamPolicy.parse("warning", None, "22:00-06:00")
    assert quiet_only.release_at(Severity.INFO, at) is None
    assert quiet_only.release_at(Severity.INFO, night.replace(hour=23)) == datetime(
        2026, 11, 26, 6, 0, tzinfo=UTC)
