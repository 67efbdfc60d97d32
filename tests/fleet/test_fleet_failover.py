"""Three daemons on one store, kill -9 of holders with restarts, on PostgreSQL and MariaDB.

Six sources (four MQTT at QoS 1 splitting one namespace by topic filter, one ERP table, one
supply folder), a publisher, an ERP writer and a file dropper running throughout. Every few
seconds the daemon holding the most sources is killed with SIGKILL and started again. The
lease rows and the store's locks are sampled all along. Asserted: every expected post exactly
once (a sentinel per kind of source behind the feeds proves nothing more is coming), no
sample with two holders of a source, and every killed holder's sources taken over within
``fleet.takeover`` (the times are printed; bench/fleet.py measures them at length).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from pathlib import Path

import pytest

from floorstream.model import Post
from floorstream.store.store import Store
from supply.make_214 import x12_214
from support import DaemonRunner, all_posts, wait_for
from support.erp import create_erp
from support.mqtt import PrivateBroker

from .support import (
    LeaseSampler,
    MqttFeed,
    config_text,
    daemon_ids,
    erp_insert,
    run_for,
)

LINES = 4
KILLS = int(os.environ.get("FLEET_KILLS", "10"))  # 13-15 s per engine on a quiet machine
TAKEOVER = 5.0  # fleet.takeover of the test config
SOURCES = [f"line{k}" for k in range(LINES)] + ["orders", "carrier"]


@pytest.fixture
def broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


def _drop_file(inbox: Path, n: int) -> None:
    tmp = inbox.parent / f"f{n}.tmp"
    tmp.write_bytes(x12_214(n, [("AF", "NS", "20261120", "0800"),
                                ("X1", "NS", "20261121", "0900")], pro=f"PRO{n:04d}"))
    tmp.replace(inbox / f"214_{n:04d}.edi")


def _run(store_url: str, broker: PrivateBroker, tmp_path: Path, prefix: str) -> None:
    erp = create_erp(store_url, orders=0)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    text = config_text(store_url, broker.port, prefix, store_url, inbox, LINES, TAKEOVER)
    Store.open(store_url).close()  # the schema, so the sampler can read from the start
    sampler = LeaseSampler(store_url, SOURCES)
    sampler.start()
    daemons = [DaemonRunner(text, process=True, workdir=tmp_path, name=f"d{i}")
               for i in range(3)]
    stop = threading.Event()
    feeds: list[threading.Thread] = []
    feed = MqttFeed(broker.port, prefix, LINES)
    try:
        for daemon in daemons:
            daemon.start()
        # every MQTT session exists (QoS 1 queues only for a session) and the ERP source
        # has taken its baseline before anything is written: then nothing may be lost
        wait_for(lambda: all(sampler.latest.get(s) for s in SOURCES), timeout=40,
                 what="every source held")
        store = Store.open(store_url)
        wait_for(lambda: _connected(daemons) >= {f"line{k}" for k in range(LINES)},
                 timeout=30, what="the four MQTT sessions connected")
        broker.wait_subscriptions(LINES)  # their SUBSCRIBEs, which follow the CONNACK
        wait_for(lambda: "orders" in store.checkpoints(), timeout=30,
                 what="the ERP baseline taken")
        rows, files = [0], [0]

        def write_row() -> None:
            rows[0] += 1
            erp_insert(erp, rows[0])

        def write_file() -> None:
            files[0] += 1
            _drop_file(inbox, files[0])

        feeds = [run_for(600, feed.step, 0.1, stop), run_for(600, write_row, 0.25, stop),
                 run_for(600, write_file, 0.3, stop)]
        time.sleep(1.0)  # the feeds run a while before the first kill
        for _kill in range(KILLS):
            victim = max(daemons, key=lambda d: sum(
                1 for h in sampler.latest.values() if h in daemon_ids(d)))
            ids = daemon_ids(victim)
            held = [s for s, h in sampler.latest.items() if ids and h == ids[-1]]
            at = time.time()
            victim.kill()
            takeover = sampler.kill_recorded(ids[-1] if ids else "?", at)
            victim.start()
            if held:
                wait_for(lambda t=takeover: len(t.taken) == len(t.sources),
                         timeout=TAKEOVER * 3, what=f"the takeover of {held}")
            # the restarted daemon joins and takes its share back from the others (more
            # handovers under load) before the next kill, so two daemons always survive one
            before = len(ids)
            wait_for(lambda v=victim, n=before: len(daemon_ids(v)) > n, timeout=90,
                     what="the restarted daemon joined")
        stop.set()
        for thread in feeds:
            thread.join(10)
        feed.publisher.client.loop_stop()  # flushes nothing more; wait for the acks below
        expected_mqtt = feed.expected()
        wait_for(lambda: _mqtt_posts(store) >= expected_mqtt, timeout=60,
                 what="every MQTT flip posted")
        wait_for(lambda: len(_posts(store, "orders")) >= rows[0], timeout=60,
                 what="every ERP row posted")
        wait_for(lambda: len(_posts(store, "carrier")) >= 2 * files[0], timeout=60,
                 what="every file posted")
        # sentinels behind each feed: once they are through, nothing else is on its way
        feed.publisher.client.loop_start()
        for _ in range(feed.flip):
            feed.step()
        erp_insert(erp, 99_999)
        _drop_file(inbox, 9_999)
        wait_for(lambda: _mqtt_posts(store) >= feed.expected()
                 and any(p.subject == "WH/MO/99999" for p in _posts(store, "orders"))
                 and len(_posts(store, "carrier")) >= 2 * files[0] + 2,
                 timeout=60, what="the sentinels")
        mqtt = [(p.subject, round(p.occurred_at.timestamp() * 1000))
                for p in _posts(store, *(f"line{k}" for k in range(LINES)))]
        assert len(mqtt) == len(set(mqtt)), "an MQTT flip was posted twice"
        assert set(mqtt) == feed.expected()
        orders = [p.subject for p in _posts(store, "orders")]
        assert sorted(orders) == sorted({*(f"WH/MO/{n:05d}" for n in range(1, rows[0] + 1)),
                                         "WH/MO/99999"})
        carrier = [p.subject for p in _posts(store, "carrier")]
        assert len(carrier) == 2 * (files[0] + 1)
        assert all(carrier.count(s) == 2 for s in carrier)
        assert sampler.samples > 100
        assert not sampler.violations, sampler.violations[:5]
        times = [t for k in sampler.takeovers for t in k.seconds()]
        assert times and max(times) < TAKEOVER, times
        print(f"\nfleet on {store.dialect}: {KILLS} kills, {len(times)} takeovers, p50 "
              f"{statistics.median(times):.2f}s max {max(times):.2f}s; {len(mqtt)} MQTT, "
              f"{len(orders)} ERP, {len(carrier)} file posts; {sampler.samples} samples")
        store.close()
    finally:
        stop.set()
        for thread in feeds:
            thread.join(10)
        feed.publisher.close()
        for daemon in daemons:
            daemon.close()
        sampler.stop()
        erp.dispose()


def _connected(daemons: list[DaemonRunner]) -> set[str]:
    """The MQTT sources some daemon logged connected (a persistent session exists then)."""
    found = set()
    for daemon in daemons:
        for line in daemon.log().splitlines():
            if '"mqtt_connected"' in line:
                found.add(json.loads(line).get("source"))
    return found


def _posts(store: Store, *sources: str) -> list[Post]:
    return [p for p in all_posts(store) if p.source in sources]


def _mqtt_posts(store: Store) -> set[tuple[str, int]]:
    return {(p.subject, round(p.occurred_at.timestamp() * 1000))
            for p in all_posts(store) if p.source.startswith("line")}


@pytest.mark.postgres
@pytest.mark.mqtt
def test_fleet_failover_postgres(pg_url: str, broker: PrivateBroker, tmp_path: Path,
                                 topic_prefix: str) -> None:
    _run(pg_url, broker, tmp_path, topic_prefix)


@pytest.mark.mysql
@pytest.mark.mqtt
def test_fleet_failover_mariadb(mysql_url: str, broker: PrivateBroker, tmp_path: Path,
                                topic_prefix: str) -> None:
    _run(mysql_url, broker, tmp_path, topic_prefix)

