"""The store goes down under a running daemon and comes back: nothing lost, nothing twice.

docs/daemon.md promises for store outages: a failed commit is retried with exponential backoff
(``Pipeline._commit_retrying``: a plain first attempt, then tenacity's loop, never giving up
while the error is transient) and nothing is acked meanwhile, so a QoS 1 broker keeps every
message the daemon has not committed. Health tells: the store is unreachable (``/healthz``
``store``, ``/readyz`` 503 with the reason, ``floorstream_store_up 0``) while the daemon stays
alive (``/healthz`` 200).

The test runs the real thing: the store is a private PostgreSQL cluster
(:mod:`erp.private_pg`, its own port, stopped with ``pg_ctl -m immediate`` on its own data
directory, i.e. its own postmaster PID: connections just break, as in a crash), the source
an MQTT QoS 1 subscription on the shared Mosquitto under a topic prefix of its own, the
detector ``state_change`` on a field that flips every :data:`FLIP_EVERY` readings. The store
is killed while a paced stream is being committed, the stream goes on for a few seconds into
the outage, then the store comes back and the rest of the stream follows with a sentinel. The
same daemon (never restarted) must then hold every expected post exactly once, and each
machine's committed detector state and replay-guard position must be its last reading's.

Twice: ``fleet: false`` is the pipeline's retry alone (the same adapter and MQTT connection
throughout; tenacity's loop went past its third failed attempt). ``fleet`` (the default on a
PostgreSQL store) adds what docs/fleet.md "Losing the store" says: the lock session fails, the
source is stopped with its input unacked and taken again once the store is back (one loss,
two acquisitions, a new adapter), and the broker's redelivery posts nothing twice.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any

import pytest

from erp.private_pg import PrivatePostgres, private_pg
from floorstream.plugins import build_plugins
from health_http import get_json, scrape, value
from support import DaemonRunner, sentinel, wait_for
from support.mqtt import Publisher

__all__ = ["private_pg"]

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt]

T0 = 1_764_057_600_000
MACHINES = 4
READINGS = 240
FLIP_EVERY = 8  # the state flips at reading 8, 16, … 232: 29 posts per machine, 116 in all
RATE = 160.0  # messages per second of the paced part: the first 2/3 take 4 s
STOP_AFTER_POSTS = 12  # the store is killed once this many posts are committed

CONFIG = """
store: {store}
flood: null
logging: {{level: warning}}
health: {{port: 0}}
fleet: {{enabled: {fleet}}}
pipeline: {{batch_wait_ms: 1}}
sources:
  - name: presses
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: fs-store-outage-{tag}
    session_expiry: 10s
    qos: 1
    topics: ["{prefix}/+/telemetry"]
    position_field: ts
    time_field: ts
    detect:
      - state_change: {{field: state}}
"""


def _state(i: int) -> str:
    return "STOPPED" if (i // FLIP_EVERY) % 2 else "RUNNING"


def _stream(prefix: str) -> list[tuple[str, bytes]]:
    """Reading by reading, every machine in turn (positions unique per machine)."""
    return [(f"{prefix}/m{m}/telemetry",
             json.dumps({"ts": T0 + i * 1000 + m, "state": _state(i)}).encode())
            for i in range(READINGS) for m in range(MACHINES)]


def _expected() -> set[tuple[str, int]]:
    """(subject, occurred_at ms) of every post the stream must make: one per flip."""
    return {(f"m{m}", T0 + i * 1000 + m)
            for m in range(MACHINES) for i in range(FLIP_EVERY, READINGS, FLIP_EVERY)}


def _posted(run: DaemonRunner) -> list[Any]:
    return [p for p in run.posts() if p.subject != "sentinel"]


@pytest.mark.parametrize("fleet", [False, True], ids=["pipeline-retry", "fleet"])
def test_store_down_mid_stream_then_back_posts_every_event_exactly_once(
        private_pg: PrivatePostgres, mqtt_broker: tuple[str, int], topic_prefix: str,
        fleet: bool, caplog: pytest.LogCaptureFixture) -> None:
    host, port = mqtt_broker
    config = CONFIG.format(store=private_pg.url, host=host, port=port, prefix=topic_prefix,
                           tag=uuid.uuid4().hex[:10], fleet=str(fleet).lower())
    messages = _stream(topic_prefix)
    paced, rest = messages[:len(messages) * 2 // 3], messages[len(messages) * 2 // 3:]
    started = time.monotonic()
    with DaemonRunner(config, plugins=build_plugins(load_entry_points=False)) as run:
        run.start()
        daemon = run.daemon
        assert daemon is not None
        pipeline = daemon.pipeline
        base = f"http://127.0.0.1:{daemon.health_server.port}"
        adapter = run.adapter("presses")
        wait_for(lambda: get_json(f"{base}/readyz")[0] == 200, timeout=20,
                 what="ready: subscribed and the store reachable")
        publisher = Publisher(host, port)
        # the subscription is in place once a first message comes back through the daemon:
        # a baseline reading of a machine outside the stream (QoS 1 published before the
        # SUBSCRIBE would be queued for nobody)
        probe = f"{topic_prefix}/probe/telemetry"
        sentinel(lambda: publisher.publish_all([(probe, {"ts": T0, "state": "RUNNING"}),
                                                (probe, {"ts": T0 + 1, "state": "STOPPED"})]),
                 lambda: any(p.subject == "probe" for p in run.posts()), timeout=20,
                 what="the subscription's first post")

        # -- the store dies mid-stream ----------------------------------------------------
        feeder = threading.Thread(target=publisher.publish_paced, args=(paced, RATE))
        feeder.start()
        wait_for(lambda: len(_posted(run)) >= STOP_AFTER_POSTS, timeout=20, interval=0.01,
                 what=f"{STOP_AFTER_POSTS} posts before the outage")
        run.store.engine.dispose()  # the test's own connections would only break
        private_pg.stop("immediate")
        down_at = time.monotonic()
        assert feeder.is_alive(), "the store must die while the stream is still coming"

        # while it is down: alive, not ready, the store named as the reason, nothing committed
        def store_down() -> dict[str, Any] | None:
            status, body = get_json(f"{base}/healthz")
            return body if status == 200 and not body["store"]["reachable"] else None

        health = wait_for(store_down, timeout=10, what="/healthz: store unreachable")
        detected = time.monotonic() - down_at
        assert health["status"] == "ok" and health["pipeline"]["alive"], health
        assert health["pipeline"]["error"] is None, health
        assert health["store"]["error"] and health["store"]["error_at"], health["store"]
        status, ready = get_json(f"{base}/readyz")
        assert status == 503, ready
        assert any(r.startswith("the store is unreachable") for r in ready["reasons"]), ready
        # a commit has failed by now and is being retried (it sets store_error): wait for it,
        # the stream is still coming
        wait_for(lambda: pipeline.store_error is not None, timeout=10,
                 what="a commit failing and retried")
        committed = pipeline.committed_posts
        feeder.join(30)
        assert not feeder.is_alive()
        metrics = scrape(f"{base}/metrics")
        assert value(metrics, "floorstream_store_up") == 0
        assert value(metrics, "floorstream_pipeline_up") == 1
        assert pipeline.committed_posts == committed, "nothing can commit while it is down"
        assert pipeline.alive and pipeline.error is None
        assert not get_json(f"{base}/healthz")[1]["store"]["reachable"]
        if fleet:  # the lock session failed too: its sources stopped (docs/fleet.md)
            wait_for(lambda: any(r.startswith("the fleet's store session is down")
                                 for r in get_json(f"{base}/readyz")[1]["reasons"]),
                     timeout=10, what="/readyz: the fleet's store session is down")
        outage = time.monotonic() - down_at

        # -- the store comes back: the same daemon goes on --------------------------------
        back_at = time.monotonic()
        private_pg.start()  # pg_ctl -w: returns once the server accepts connections
        wait_for(lambda: pipeline.store_error is None, timeout=30,
                 what="the retried commit going through")
        recovered = time.monotonic() - back_at
        # the retry loop did not give up: tenacity logs a failed attempt only when it will
        # make another one, and no commit failure was fatal (``commit_failed``)
        retried = [int(found.group(1)) for record in caplog.records
                   if (found := re.search(r"commit_failed_retrying.*attempt=(\d+)",
                                          record.getMessage()))]
        assert retried and max(retried) >= 3, retried
        assert not [r for r in caplog.records if "'commit_failed'" in r.getMessage()]
        publisher.publish_all(rest)
        marker = f"{topic_prefix}/sentinel/telemetry"
        sentinel(lambda: publisher.publish_all([(marker, {"ts": T0, "state": "RUNNING"}),
                                                (marker, {"ts": T0 + 1, "state": "STOPPED"})]),
                 lambda: any(p.subject == "sentinel" for p in run.posts()), timeout=30)
        publisher.close()

        posts = _posted(run)
        got = [(p.subject, round(p.occurred_at.timestamp() * 1000)) for p in posts
               if p.subject != "probe"]
        duplicates = {key for key in got if got.count(key) > 1}
        assert not duplicates, f"posted twice: {sorted(duplicates)}"
        assert len({p.id for p in posts}) == len(posts)
        missing = _expected() - set(got)
        assert not missing, f"{len(missing)} posts lost: {sorted(missing)[:10]}"
        assert set(got) == _expected()
        assert len(got) == len(_expected()) == 116

        # the committed progress went past the outage: each machine's state_change state is
        # its last flip, and the replay guard (the source's committed positions) holds its
        # last reading
        states = run.store.detector_states("presses")
        last_flip = (READINGS - 1) // FLIP_EVERY * FLIP_EVERY
        guard = states[("", "replay-guard")]["positions"]
        for m in range(MACHINES):
            state = states[(f"m{m}", "state_change:state")]
            assert state["state"] == _state(READINGS - 1), (m, state)
            assert state["at"] * 1000 == pytest.approx(T0 + last_flip * 1000 + m), (m, state)
            last = f"{topic_prefix}/m{m}/telemetry|{T0 + (READINGS - 1) * 1000 + m}"
            assert any(position.endswith(last) for position in guard), (m, guard[-8:])

        # recovered in place: the same daemon, pipeline thread and health server throughout
        assert run.daemon is daemon and daemon.pipeline is pipeline
        assert pipeline.alive and pipeline.error is None
        # the monitor probes the store once a second: ready again within about that
        status, health = wait_for(lambda: (r := get_json(f"{base}/readyz"))[0] == 200 and r,
                                  timeout=10, what="/readyz 200 again")
        assert health["status"] == "ready" and health["live"], health
        assert health["store"]["reachable"], health["store"]  # ("error" keeps the last one)
        assert health["sources"]["presses"]["restarts"] == 0  # no adapter crash
        metrics = scrape(f"{base}/metrics")
        assert value(metrics, "floorstream_store_up") == 1
        assert value(metrics, "floorstream_source_restarts_total", source="presses") == 0
        posted_here = value(metrics, "floorstream_source_posts_total", source="presses")
        if fleet:
            # docs/fleet.md "Losing the store": the lock session failed, so the source was
            # stopped (its uncommitted input unacked) and taken again once the store was back:
            # a new adapter, one loss, two acquisitions; the broker redelivered the rest
            report = health["fleet"]
            assert report["connected"] and report["error"] is None, report
            assert report["losses"] == 1 and report["acquisitions"] == 2, report
            assert set(report["held"]) == {"presses"}, report
            assert run.adapter("presses") is not adapter
            # posts committed before the outage are counted once; a replayed message whose
            # post already exists adds nothing
            assert posted_here == len(_expected()) + 2  # the probe's and the sentinel's
        else:
            # the pipeline alone: one commit retried until the store answered, the source
            # untouched (the same adapter, still connected)
            assert run.adapter("presses") is adapter
            assert health["sources"]["presses"]["connected"] is True
            assert posted_here == len(_expected()) + 2  # the probe's and the sentinel's
        run.stop()
    print(f"\nstore down detected {detected:.2f} s after the kill; outage {outage:.1f} s; "
          f"retried commit through {recovered:.2f} s after pg_ctl start "
          f"({max(retried)} failed attempts); "
          f"{len(_expected())} posts exactly once; test {time.monotonic() - started:.1f} s")
