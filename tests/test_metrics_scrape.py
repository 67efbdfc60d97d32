"""``/metrics`` scraped over real HTTP and read with ``prometheus_client``'s own parser.

A daemon reads machine states from the local Mosquitto (bad payloads and an oversize one
among them, one machine flapping past flood control) and delivers to two sinks: a JSON-lines
file that takes everything and a webhook that refuses everything (HTTP 400). The numbers must
match what the store and the outbox say; names follow Prometheus' conventions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from floorstream.store import schema
from health_http import get_json, scrape, value
from support import DaemonRunner, http_receiver, wait_for
from support.mqtt import Publisher, Subscriptions

pytestmark = pytest.mark.mqtt

CONFIG = """
store: sqlite:///{tmp}/fs.db
health: {{port: 0}}
flood: {{max_posts: 2, window: 1h}}
default_team: ops
teams: {{ops: {{sinks: [jsonl, hook]}}}}
alerts: {{enabled: false}}
sinks:
  - {{name: jsonl, type: file, path: "{tmp}/posts.jsonl"}}
  - name: hook
    type: webhook
    url: {hook}
    retry: {{max_attempts: 1}}
sources:
  - name: cells
    adapter: mqtt
    url: mqtt://{host}:{port}
    topics: ["{prefix}/+/state"]
    subject: "{{topic[-2]}}"
    max_payload: 200
    detect:
      - state_change: {{field: state}}
"""


def test_metrics_match_the_store_and_follow_prometheus_naming(
        tmp_path: Path, mqtt_broker: tuple[str, int], topic_prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    host, port = mqtt_broker
    subscriptions = Subscriptions().install(monkeypatch)
    with http_receiver() as hook:
        hook.status = 400
        config = CONFIG.format(tmp=tmp_path, hook=f"{hook.url}/hook", host=host, port=port,
                               prefix=topic_prefix)
        with DaemonRunner(config) as run:
            run.start()
            daemon = run.daemon
            assert daemon is not None
            subscriptions.wait("cells")
            base = f"http://127.0.0.1:{daemon.health_server.port}"
            publisher = Publisher(host, port)
            flapping = [("m1", s) for s in ["A", "B", "A", "B", "A", "B"]]  # 5 changes
            messages: list[tuple[str, bytes | str | dict[str, str]]] = [
                (f"{topic_prefix}/{m}/state", {"state": s})
                for m, s in [*flapping, ("m2", "A"), ("m2", "B")]]
            messages += [(f"{topic_prefix}/m3/state", b"{not json") for _ in range(3)]
            messages.append((f"{topic_prefix}/m4/state", json.dumps({"state": "X" * 300})))
            # the sentinel: its post proves everything above was committed
            messages += [(f"{topic_prefix}/m9/state", {"state": "A"}),
                         (f"{topic_prefix}/m9/state", {"state": "B"})]
            publisher.publish_all(messages)
            publisher.close()
            wait_for(lambda: any(p.subject == "m9" for p in run.posts()), what="the sentinel")
            posts = run.posts()
            assert sorted(p.subject for p in posts) == ["m1", "m1", "m2", "m9"]
            # deliveries: the file takes all four, the webhook refuses all four for good
            wait_for(lambda: len(hook.requests) >= 4, what="the webhook's four refusals")
            wait_for(lambda: get_json(f"{base}/healthz")[1]["sinks"]["hook"]["failed"] == 4,
                     what="the outbox counted")

            families = scrape(f"{base}/metrics")

    # every family is floorstream's, named by Prometheus' rules
    assert families and all(name.startswith("floorstream_") for name in families)
    for family in families.values():
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds")
        assert re.fullmatch(r"[a-z_]+", family.name)

    def v(name: str, **labels: str) -> float | None:
        return value(families, name, **labels)

    assert v("floorstream_source_changes_total", source="cells") == len(messages)
    assert v("floorstream_source_posts_total", source="cells") == 4
    assert v("floorstream_source_quarantined_total", source="cells", reason="invalid") == 3
    assert v("floorstream_source_quarantined_total", source="cells", reason="too_large") == 1
    assert v("floorstream_source_quarantined_total", source="cells", reason="detector") == 0
    assert v("floorstream_flood_suppressed_total", source="cells") == 3  # m1's changes 3-5
    assert v("floorstream_source_connected", source="cells") == 1
    lag = v("floorstream_source_lag_seconds", source="cells")
    assert lag is not None and 0 <= lag < 30
    assert v("floorstream_source_restarts_total", source="cells") == 0

    commits = v("floorstream_pipeline_commits_total")
    assert commits is not None and commits >= 1
    assert v("floorstream_pipeline_commit_seconds_count") == commits
    assert v("floorstream_pipeline_commit_seconds_bucket", le="+Inf") == commits
    assert v("floorstream_pipeline_queue_depth") == 0
    assert v("floorstream_pipeline_queue_capacity") == 10_000
    assert v("floorstream_pipeline_up") == 1 and v("floorstream_store_up") == 1

    assert v("floorstream_sink_delivered_total", sink="jsonl") == 4
    assert v("floorstream_sink_delivery_seconds_count", sink="jsonl") == 4
    assert v("floorstream_sink_delivery_seconds_bucket", sink="jsonl", le="+Inf") == 4
    total = v("floorstream_sink_delivery_seconds_sum", sink="jsonl")
    assert total is not None and 0 < total < 60
    assert v("floorstream_sink_failed_total", sink="jsonl") == 0
    assert v("floorstream_sink_failing", sink="jsonl") == 0
    assert v("floorstream_sink_delivered_total", sink="hook") == 0
    assert v("floorstream_sink_failed_total", sink="hook") == 4
    assert v("floorstream_sink_failing", sink="hook") == 1
    assert v("floorstream_outbox_rows", sink="hook", status="failed") == 4
    assert v("floorstream_sink_pending", sink="hook") == 0
    assert v("floorstream_sink_oldest_pending_seconds", sink="jsonl") == 0
    assert v("floorstream_alerts_open", kind="source_down") == 0

    # the same numbers in the store
    with run.store.engine.connect() as conn:
        failed = conn.execute(schema.deliveries.select().where(
            schema.deliveries.c.sink == "hook",
            schema.deliveries.c.status == "failed")).all()
    assert len(failed) == 4


def test_two_daemons_in_one_process_keep_their_own_numbers(tmp_path: Path) -> None:
    """A registry per daemon: a second daemon's /metrics starts from zero."""
    config = """
store: sqlite:///{db}
health: {{port: 0}}
alerts: {{enabled: false}}
sources:
  - name: sim
    adapter: simulator
    interval: 1ms
    readings: 30
"""
    with DaemonRunner(config.format(db=tmp_path / "a.db")) as first, \
            DaemonRunner(config.format(db=tmp_path / "b.db")) as second:
        first.start()
        first.wait_status("sim", "finished")
        second.start()
        assert first.daemon is not None and second.daemon is not None
        one = scrape(f"http://127.0.0.1:{first.daemon.health_server.port}/metrics")
        readings = value(one, "floorstream_source_changes_total", source="sim")
        assert readings == first.daemon.pipeline.counter("sim").received > 0
        second.wait_status("sim", "finished")
        two = scrape(f"http://127.0.0.1:{second.daemon.health_server.port}/metrics")
        assert value(two, "floorstream_source_changes_total", source="sim") == readings
        one = scrape(f"http://127.0.0.1:{first.daemon.health_server.port}/metrics")
        assert value(one, "floorstream_source_changes_total", source="sim") == readings
