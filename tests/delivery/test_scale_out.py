"""Two daemons' delivery services share one outbox on PostgreSQL and on MariaDB (both with
``FOR UPDATE SKIP LOCKED`` and a lane lock): no row is delivered twice, lanes keep their order,
and both daemons do part of the work."""

from __future__ import annotations

from collections import Counter

import pytest

from floorstream.delivery.lanes import supports_skip_locked
from floorstream.delivery.outbox import Outbox
from floorstream.delivery.service import DeliveryService
from floorstream.model import utcnow
from floorstream.store.store import Store
from support import http_receiver, wait_for

from .helpers import commit, config, make_post

CONFIG = """
store: {store}
teams: {{{teams}}}
sinks:
  - name: chat
    type: webhook
    url: {url}/hook
    workers: 3
    retry: {{initial: 10ms, max_delay: 20ms, jitter: 5ms}}
"""

TEAMS = [f"team{n}" for n in range(6)]
DATABASES = [pytest.param("pg_url", marks=pytest.mark.postgres),
             pytest.param("mysql_url", marks=pytest.mark.mysql)]


@pytest.mark.parametrize("database", DATABASES)
def test_two_daemons_never_deliver_a_row_twice(database: str,
                                               request: pytest.FixtureRequest) -> None:
    db_url: str = request.getfixturevalue(database)
    teams = ", ".join(f"{t}: {{sinks: [chat]}}" for t in TEAMS)
    with http_receiver() as rec:
        url = rec.url
        seed = Store.open(db_url)
        assert supports_skip_locked(seed.engine)  # MariaDB 10.6+ / PostgreSQL: shared claims
        posts = [make_post(n, team) for n in range(40) for team in TEAMS]
        for start in range(0, len(posts), 30):
            commit(seed, posts[start:start + 30], {t: ["chat"] for t in TEAMS})
        services = []
        stores = []
        for _ in range(2):  # two daemons: own engines, own workers, one database
            cfg, plugins = config(CONFIG.format(store=db_url, teams=teams, url=url))
            store = Store.open(db_url)
            stores.append(store)
            services.append(DeliveryService(cfg, plugins, store, poll=0.02, batch=7))
        for service in services:
            service.start()
        outbox = Outbox(seed.engine)
        try:
            wait_for(lambda: outbox.counts() == {"delivered": len(posts)}, timeout=30,
                     what="all delivered")
        finally:
            for service in services:
                service.stop()
            for store in [*stores, seed]:
                store.close()
    ids = [r.json["id"] for r in rec.requests]
    assert len(ids) == len(posts)
    assert max(Counter(ids).values()) == 1
    for team in TEAMS:  # and each team's posts still arrive in commit order
        got = [r.json["id"].rsplit(":", 1)[1] for r in rec.requests
               if r.json["floorstream:team"] == team]
        assert got == [p.id for p in posts if p.teams == (team,)]
    # both daemons did work: the claims were shared, not serialised onto one daemon
    done = [sum(w.delivered for w in service.workers) for service in services]
    assert sum(done) == len(posts) and min(done) > 0


@pytest.mark.parametrize("database", DATABASES)
def test_claims_of_other_lanes_never_make_a_lane_skip_ahead(
        database: str, request: pytest.FixtureRequest) -> None:
    """Posts committed while four workers claim four lanes concurrently: each lane's posts
    still arrive in commit order. (On MariaDB a claim's locking read once scanned an index
    that briefly locked other lanes' rows, and SKIP LOCKED then jumped ahead in a lane.)"""
    db_url: str = request.getfixturevalue(database)
    lanes = TEAMS[:4]
    teams = ", ".join(f"{t}: {{sinks: [chat]}}" for t in lanes)
    with http_receiver() as rec:
        url = rec.url
        cfg, plugins = config(CONFIG.format(store=db_url, teams=teams, url=url).replace(
            "workers: 3", "workers: 4"))
        store = Store.open(db_url)
        service = DeliveryService(cfg, plugins, store, poll=0.02)
        outbox = Outbox(store.engine)
        posts = [make_post(n, lanes[n % 4]) for n in range(600)]
        service.start()
        try:
            for start in range(0, len(posts), 8):
                batch = posts[start:start + 8]
                commit(store, batch, {t: ["chat"] for t in lanes})
                service.wake(batch)
            wait_for(lambda: outbox.counts() == {"delivered": len(posts)}, timeout=60,
                     what="all delivered")
        finally:
            service.stop()
            store.close()
    for team in lanes:
        got = [r.json["id"].rsplit(":", 1)[1] for r in rec.requests
               if r.json["floorstream:team"] == team]
        assert got == [p.id for p in posts if p.teams == (team,)], team


@pytest.mark.mysql
def test_mariadb_locking_read_scans_only_its_lane(mysql_url: str) -> None:
    """The deterministic half of the test above: the claim's locking read uses the lane index
    (no filesort over all due rows, which InnoDB would lock while reading)."""
    store = Store.open(mysql_url)
    commit(store, [make_post(n, TEAMS[n % 4]) for n in range(200)],
           {t: ["chat"] for t in TEAMS})
    outbox = Outbox(store.engine)
    for status in ("pending", "held"):
        query = outbox.lane_rows("chat", TEAMS[1], status, utcnow(), 100)
        sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
        assert sql.rstrip().endswith("FOR UPDATE SKIP LOCKED")
        with store.engine.connect() as conn:
            (plan,) = conn.exec_driver_sql("EXPLAIN " + sql.replace("%", "%%")).mappings()
        assert plan["key"] == "ix_fs_deliveries_lane", dict(plan)
        assert "filesort" not in (plan["Extra"] or ""), dict(plan)
    store.close()
