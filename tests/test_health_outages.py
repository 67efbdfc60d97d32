"""Real outages under a running daemon: a private Mosquitto and a private PostgreSQL (the ERP
database of an ``erp.table`` source) are stopped and started again.

What must hold, as plant IT would check it: within two reconnect attempts ``/readyz`` answers
503 and names both sources, each with ``connected: false``, its error and the time of it;
``/metrics`` says ``floorstream_source_connected 0``; after ``alerts.source_down`` one post per
source reaches the admin team; once the services are back, ``/readyz`` is 200 again and each
alert gets one recovery post (a resolution of it). The detection and alert times are printed
(``pytest -s``) for the record in docs/daemon.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erp.private_pg import PrivatePostgres, private_pg
from floorstream.processing import HEALTH_SOURCE
from health_http import ISO, get_json, scrape, value
from support import DaemonRunner, wait_for
from support.erp import create_erp, update
from support.mqtt import PrivateBroker, Publisher

__all__ = ["private_pg"]

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt]

SOURCE_DOWN = 4.0  # alerts.source_down of the test

CONFIG = """
store: sqlite:///{store}
health: {{port: 0}}
default_team: planning
admin_team: admin
teams: {{planning: {{}}, admin: {{}}}}
alerts: {{source_down: {down}s, recover_after: 1s}}
sources:
  - name: line1
    adapter: mqtt
    url: mqtt://127.0.0.1:{mqtt_port}
    client_id: fs-health-outage
    topics: ["plant/+/state"]
    reconnect_min: 1s
    reconnect_max: 2s
    detect:
      - state_change: {{field: state}}
  - name: orders
    adapter: erp.table
    url: {pg_url}
    interval: 200ms
    tables:
      - table: production_order
        cursor: write_date
        subject: "{{{{ row.name }}}}"
        track: [state]
"""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    server = PrivateBroker(tmp_path / "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _admin(run: DaemonRunner) -> list[Any]:
    return [p for p in run.posts("admin") if p.source == HEALTH_SOURCE]


def test_broker_and_database_down_then_back(broker: PrivateBroker,
                                            private_pg: PrivatePostgres,
                                            tmp_path: Path) -> None:
    erp = create_erp(private_pg.url, orders=2)
    config = CONFIG.format(store=tmp_path / "fs.db", down=SOURCE_DOWN, mqtt_port=broker.port,
                           pg_url=private_pg.url)
    with DaemonRunner(config) as run:
        run.start()
        daemon = run.daemon
        assert daemon is not None
        base = f"http://127.0.0.1:{daemon.health_server.port}"
        status, body = wait_for(lambda: (r := get_json(f"{base}/readyz"))[0] == 200 and r,
                                what="ready with both services up")
        assert body["sources"]["line1"]["connected"] and body["sources"]["orders"]["connected"]

        # data flows: one machine message, one ERP row change, both posted
        publisher = Publisher("127.0.0.1", broker.port)
        publisher.publish_all([("plant/press-1/state", {"state": "RUNNING"}),
                               ("plant/press-1/state", {"state": "STOPPED"})])
        publisher.close()
        update(erp, 1, state="progress")
        wait_for(lambda: {p.source for p in run.posts("planning")} >= {"line1", "orders"},
                 what="posts of both sources")
        erp.dispose()
        # connecting at start is a (short) bad stretch too: let it end (recover_after), so the
        # times below are those of the outage alone
        watches = daemon.monitor.watches
        wait_for(lambda: all(watches[("source_down", n)].bad_since is None
                             for n in ("line1", "orders")), what="the start-up stretch over")

        # -- both services go away --------------------------------------------------------
        down_at = time.monotonic()
        broker.stop()
        private_pg.stop("immediate")
        seen: dict[str, float] = {}

        def both_down() -> dict[str, Any] | None:
            status, body = get_json(f"{base}/readyz")
            for name in ("line1", "orders"):
                if name not in seen and not body["sources"][name]["connected"]:
                    seen[name] = time.monotonic() - down_at
            return body if status == 503 and len(seen) == 2 else None

        body = wait_for(both_down, timeout=30, what="/readyz 503 for both sources")
        # within two reconnect attempts (mqtt: reconnect_min 1 s; erp: 0.5 s backoff + jitter)
        assert max(seen.values()) < 5.0, seen
        assert body["status"] == "not ready"
        for name, error in (("line1", f"127.0.0.1:{broker.port}"),
                            ("orders", "database unreachable")):
            source = body["sources"][name]
            assert source["connected"] is False, source
            assert source["state"] == "running"  # the adapter is alive and retrying
            assert error in source["last_error"], source
            assert ISO.match(source["last_error_at"]) and ISO.match(source["connection_since"])
            assert ISO.match(source["last_received_at"])
            assert ISO.match(source["last_committed_at"])
            assert any(r.startswith(f"source {name} is running, not connected since")
                       for r in body["reasons"]), body["reasons"]
        assert body["store"]["reachable"] is True  # the store is another database
        status, health = get_json(f"{base}/healthz")
        assert status == 200 and health["status"] == "ok"  # alive, only not ready

        metrics = scrape(f"{base}/metrics")
        assert value(metrics, "floorstream_source_connected", source="line1") == 0
        assert value(metrics, "floorstream_source_connected", source="orders") == 0
        assert value(metrics, "floorstream_source_posts_total", source="line1") == 1
        assert value(metrics, "floorstream_source_posts_total", source="orders") == 1

        alerts = wait_for(lambda: (found if len(found := _admin(run)) >= 2 else None),
                          timeout=SOURCE_DOWN + 20, what="the two source-down alerts")
        alerted = time.monotonic() - down_at
        assert sorted(p.subject for p in alerts) == ["source line1", "source orders"]
        for post in alerts:
            assert post.type == "floorstream.source_down" and post.relation == "new"
            assert post.teams == ("admin",) and post.severity.label == "critical"
            assert post.summary.startswith(f"Source {post.fields['name']} down for ")
        assert alerted >= SOURCE_DOWN - 0.3  # not before the threshold
        assert value(scrape(f"{base}/metrics"), "floorstream_alerts_open",
                     kind="source_down") == 2
        print(f"\ndetected down: mqtt {seen['line1']:.2f} s, erp {seen['orders']:.2f} s; "
              f"alerts posted {alerted:.2f} s after the outage (source_down {SOURCE_DOWN} s)")

        # -- both come back ---------------------------------------------------------------
        back_at = time.monotonic()
        broker.start()
        private_pg.start()
        wait_for(lambda: get_json(f"{base}/readyz")[0] == 200, timeout=30, what="ready again")
        ready = time.monotonic() - back_at
        recoveries = wait_for(
            lambda: (found if len(found := [p for p in _admin(run)
                                            if p.relation == "resolution"]) >= 2 else None),
            timeout=30, what="the two recovery posts")
        recovered = time.monotonic() - back_at
        by_id = {p.id: p for p in alerts}
        assert sorted(by_id[p.refers_to].subject for p in recoveries if p.refers_to) == [
            "source line1", "source orders"]
        for post in recoveries:
            assert post.summary.startswith(f"Source {post.fields['name']} is back after ")
            assert post.thread == by_id[post.refers_to or ""].thread
        # the recoveries came through the same pipeline behind any further alert of these
        # outages: so exactly one alert each, never a flood
        assert len(_admin(run)) == 4
        metrics = scrape(f"{base}/metrics")
        assert value(metrics, "floorstream_alerts_open", kind="source_down") == 0
        assert value(metrics, "floorstream_alerts_total", kind="source_down") == 2
        assert value(metrics, "floorstream_source_connected", source="line1") == 1
        assert value(metrics, "floorstream_source_connected", source="orders") == 1
        print(f"ready again {ready:.2f} s after the restarts; recovery posts after "
              f"{recovered:.2f} s")
