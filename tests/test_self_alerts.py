"""Self-alerts: one post to the admin team when a sink keeps failing, a source quarantines too
much or stays down across a restart, and one recovery post when it is over — never a flood.

Thresholds are seconds here (minutes by default). "Exactly one alert" is asserted once the
recovery post is there: the monitor submits both through the pipeline, the recovery last, so
any further alert of the same stretch would already be in the store (the recovery post is the
sentinel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from floorstream.model import Post
from floorstream.processing import HEALTH_SOURCE
from health_http import ISO, get_json, scrape, value
from support import DaemonRunner, http_receiver, wait_for
from support.mqtt import PrivateBroker, Publisher, Subscriptions


def _alerts(run: DaemonRunner) -> list[Post]:
    return [p for p in run.posts("admin") if p.source == HEALTH_SOURCE]


def _story(run: DaemonRunner, timeout: float = 30.0) -> tuple[Post, Post]:
    """Wait for an alert and its recovery; return both, asserting nothing else was posted."""
    def resolved() -> list[Post] | None:
        found = _alerts(run)
        return found if any(p.relation == "resolution" for p in found) else None

    posts = wait_for(resolved, timeout, "the recovery post")
    assert [p.relation for p in posts] == ["new", "resolution"], [p.summary for p in posts]
    alert, recovery = posts
    assert recovery.refers_to == alert.id and recovery.thread == alert.thread
    assert alert.teams == recovery.teams == ("admin",)
    return alert, recovery


SINK = """
store: sqlite:///{tmp}/fs.db
health: {{port: 0}}
default_team: ops
admin_team: admin
teams: {{ops: {{sinks: [hook]}}, admin: {{}}}}
alerts: {{sink_failing: 2s, recover_after: 0.5s}}
sinks:
  - name: hook
    type: webhook
    url: {url}
    retry: {{initial: 0.2s, max_delay: 0.5s, jitter: 0.1s, max_attempts: 1000}}
"""


def test_a_failing_sink_gives_one_alert_and_one_recovery(tmp_path: Path) -> None:
    with http_receiver() as hook, DaemonRunner(
            SINK.format(tmp=tmp_path, url=f"{hook.url}/hook")) as run:
        hook.status = 503
        run.start()
        daemon = run.daemon
        assert daemon is not None
        base = f"http://127.0.0.1:{daemon.health_server.port}"
        daemon.stream().publish(source="orders", subject="WH/MO/00001", type="order.late",
                                summary="WH/MO/00001 is late")
        alert = wait_for(lambda: _alerts(run), 20, "the sink alert")[0]
        assert alert.type == "floorstream.sink_failing" and alert.subject == "sink hook"
        assert alert.summary.startswith("Sink hook: deliveries failing for ")
        assert "HTTP 503" in alert.summary and alert.severity.label == "critical"
        _, body = get_json(f"{base}/healthz")
        hook_report = body["sinks"]["hook"]
        assert hook_report["failing"] is True and ISO.match(hook_report["failing_since"])
        assert "HTTP 503" in hook_report["last_error"]
        assert body["alerts"][0]["kind"] == "sink_failing"
        assert (value(scrape(f"{base}/metrics"), "floorstream_sink_retries_total",
                      sink="hook") or 0) >= 1
        failing_for = (alert.created_at - daemon.started_at).total_seconds()
        assert failing_for >= 2.0 - 0.3

        hook.status = 200  # the service is back: the next retry goes through
        alert, recovery = _story(run)
        assert recovery.summary.startswith("Sink hook delivers again after ")
        assert len(hook.ok()) == 1  # the order's post, once
        _, body = get_json(f"{base}/healthz")
        assert body["sinks"]["hook"]["failing"] is False and body["alerts"] == []
        assert body["sinks"]["hook"]["delivered"] == 1


QUARANTINE = """
store: sqlite:///{tmp}/fs.db
health: {{port: 0}}
admin_team: admin
teams: {{admin: {{}}}}
alerts: {{quarantine_rate: 60, quarantine_window: 3s, recover_after: 0.5s}}
sources:
  - name: cells
    adapter: mqtt
    url: mqtt://{host}:{port}
    topics: ["{prefix}/+/state"]
    detect:
      - state_change: {{field: state}}
"""


@pytest.mark.mqtt
def test_a_quarantine_burst_gives_one_alert_and_one_recovery(
        tmp_path: Path, mqtt_broker: tuple[str, int], topic_prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    host, port = mqtt_broker
    subscriptions = Subscriptions().install(monkeypatch)
    config = QUARANTINE.format(tmp=tmp_path, host=host, port=port, prefix=topic_prefix)
    with DaemonRunner(config) as run:
        run.start()
        subscriptions.wait("cells")
        publisher = Publisher(host, port)
        # 10 bad payloads in a 3 s window: 200 a minute, over the limit of 60
        publisher.publish_all([(f"{topic_prefix}/m{i}/state", b"{broken") for i in range(10)])
        publisher.close()
        alert, recovery = _story(run)
        assert alert.type == "floorstream.quarantine_rate"
        assert alert.subject == "quarantine cells" and alert.severity.label == "warning"
        assert alert.summary == ("Source cells quarantines 200 a minute, mostly invalid "
                                 "(limit 60 a minute)")
        assert recovery.summary.startswith("Source cells: quarantine rate back to normal")


DOWN = """
store: sqlite:///{tmp}/fs.db
health: {{port: 0}}
admin_team: admin
teams: {{admin: {{}}}}
alerts: {{source_down: 1s, recover_after: 0.5s}}
sources:
  - name: line9
    adapter: mqtt
    url: mqtt://127.0.0.1:{port}
    topics: ["plant/+/state"]
    reconnect_min: 1s
    reconnect_max: 1s
"""


def test_an_open_alert_survives_a_restart_and_is_cleared_once(tmp_path: Path) -> None:
    broker = PrivateBroker(tmp_path / "broker")  # not started: the source is down from start
    port = broker.port
    with DaemonRunner(DOWN.format(tmp=tmp_path, port=port)) as run:
        run.start()
        first: Any = wait_for(lambda: _alerts(run), 20, "the source-down alert")[0]
        assert first.type == "floorstream.source_down" and first.subject == "source line9"
        assert f"cannot connect to 127.0.0.1:{port}" in first.summary

        run.restart()  # still down: the restarted daemon must know the alert is open
        daemon = run.daemon
        assert daemon is not None
        assert [a["post"] for a in daemon.monitor.open_alerts()] == [first.id]
        # the new run tried and failed twice, its monitor judging all along
        wait_for(lambda: daemon.status["line9"].health.failures >= 2, 20,
                 "two failed connects after the restart")

        broker.start()
        try:
            alert, recovery = _story(run)
        finally:
            broker.stop()
        assert alert.id == first.id  # the first run's alert, not a second one
        assert recovery.summary.startswith("Source line9 is back after ")
        assert recovery.fields["since"] == first.fields["since"]


def test_a_second_daemon_on_the_store_takes_over_the_open_alert(tmp_path: Path) -> None:
    """Two daemons on one store (a standby pair) see the same broker down: one alert, one
    recovery (the second daemon adopts the open alert; the recovery's id is the same from
    either daemon, so the store keeps one)."""
    broker = PrivateBroker(tmp_path / "broker")  # not started yet
    first_config = DOWN.format(tmp=tmp_path, port=broker.port).replace(
        "    reconnect_min", "    client_id: fs-first\n    reconnect_min")
    second_config = first_config.replace("fs-first", "fs-second")
    with DaemonRunner(first_config) as first, DaemonRunner(second_config,
                                                           name="second") as second:
        first.start()
        alert = wait_for(lambda: _alerts(first), 20, "the first daemon's alert")[0]
        second.start()
        daemon = second.daemon
        assert daemon is not None
        wait_for(lambda: [a["post"] for a in daemon.monitor.open_alerts()] == [alert.id], 20,
                 "the second daemon adopting the alert")
        broker.start()
        try:
            story = _story(first)
            wait_for(lambda: daemon.monitor.open_alerts() == [], 20,
                     "the second daemon's alert cleared too")
        finally:
            broker.stop()
        assert story[0].id == alert.id
        assert len(_alerts(first)) == 2
