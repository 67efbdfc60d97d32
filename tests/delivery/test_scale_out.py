"""Two daemons' delivery services share one outbox on PostgreSQL and on MariaDB (both with
``FOR UPDATE SKIP LOCKED`` and a lane lock): no row is delivered twice, lanes keep their order,
and both daemons do part of the work."""

from __future__ import annotations

from collections import Counter

import pytest

from floorstream.delivery.lanes import supports_skip_locked
from floorstream.delivery.outbox import Outbox
from floorstream.delivery.service import DeliveryService
from floorstream.store.store import Store

from .helpers import commit, config, http_server, make_post, wait_for

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


@pytest.mark.parametrize("database", ["pg_url", "mysql_url"])
def test_two_daemons_never_deliver_a_row_twice(database: str,
                                               request: pytest.FixtureRequest) -> None:
    db_url: str = request.getfixturevalue(database)
    teams = ", ".join(f"{t}: {{sinks: [chat]}}" for t in TEAMS)
    with http_server() as (url, rec):
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
