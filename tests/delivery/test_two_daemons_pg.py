"""Two real ``floorstream run`` processes on one PostgreSQL store share the outbox.

Daemon A runs a simulator source (its own pipeline commits posts and wakes its workers at
once); daemon B has no source at all. The test commits more posts from outside, as another
daemon would. Both deliver to one local webhook server and say who they are in a header.
Every outbox row must arrive exactly once, each team's posts in commit order, and both
processes must have done part of the work.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from floorstream.store import schema
from floorstream.store.store import Store
from support import DaemonRunner, http_receiver, sentinel, wait_for

from .helpers import commit, make_post

pytestmark = pytest.mark.postgres

TEAMS = [f"team{n}" for n in range(6)]

CONFIG = """\
store: {store}
flood: null
teams: {{line: {{sinks: [chat]}}, {teams}}}
{sources}
routes:
  - {{match: {{type: "machine.*"}}, teams: [line]}}
sinks:
  - name: chat
    type: webhook
    url: {url}/hook
    workers: 2
    headers: {{X-Daemon: {name}}}
"""

SOURCES = """\
sources:
  - name: shopfloor
    adapter: simulator
    interval: 1ms
    readings: 300
    detect:
      - state_change: {field: state, normal: [RUNNING]}
"""


def _rows(store: Store) -> list[tuple[int, str, str, str]]:
    d = schema.deliveries
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(d.c.id, d.c.team, d.c.post_id, d.c.status).where(d.c.sink == "chat")
            .order_by(d.c.id))]


def test_two_daemon_processes_never_deliver_a_row_twice(pg_url: str, tmp_path: Path) -> None:
    teams = ", ".join(f"{t}: {{sinks: [chat]}}" for t in TEAMS)
    store = Store.open(pg_url)  # the schema exists before either daemon starts
    with http_receiver() as rec, \
            DaemonRunner(CONFIG.format(store=pg_url, teams=teams, sources=SOURCES,
                                       url=rec.url, name="a"),
                         process=True, workdir=tmp_path, name="a") as a, \
            DaemonRunner(CONFIG.format(store=pg_url, teams=teams, sources="", url=rec.url,
                                       name="b"),
                         process=True, workdir=tmp_path, name="b") as b:
        a.start()
        b.start()
        # both delivery services running before the first row: under load a process can take
        # longer to start than the other takes to deliver everything (CI once saw B deliver
        # nothing, and "both took a share" failed for want of a second daemon, not of sharing)
        for runner in (a, b):
            wait_for(lambda runner=runner: "delivery_started" in runner.log(), 60,
                     f"daemon {runner.name}'s delivery service")
        posts = [make_post(n, team) for n in range(25) for team in TEAMS]
        for start in range(0, len(posts), 15):  # committed by "another daemon"
            commit(store, posts[start:start + 15], {t: ["chat"] for t in TEAMS})
            time.sleep(0.15)  # spread out, so both daemons' workers see commits arrive
        wait_for(lambda: a.checkpoint("shopfloor") == "300", 30, "daemon A's simulator story")
        # a marker post per lane behind everything else: once each has arrived, every earlier
        # row of its lane has been delivered (lanes keep commit order), a second time too if
        # it ever were; only then is "nothing twice" a fact and not a race
        markers = [make_post(99, team) for team in ["line", *TEAMS]]
        sentinel(lambda: commit(store, markers, {t: ["chat"] for t in ["line", *TEAMS]}),
                 lambda: {m.id for m in markers} <= {r.json["id"].rsplit(":", 1)[1]
                                                    for r in rec.ok()},
                 timeout=40, what="every lane's marker post")
        # the markers' rows are marked delivered just after their requests were answered
        def all_delivered() -> list[tuple[int, str, str, str]] | None:
            found = _rows(store)
            return found if all(r[3] == "delivered" for r in found) else None

        rows = wait_for(all_delivered, what="every row marked delivered")
        a.stop()
        b.stop()
    store.close()
    assert all(r[3] == "delivered" for r in rows)
    ok = rec.ok()
    assert len(ok) == len(rows) == len(rec.requests)  # nothing failed, nothing twice
    keys = Counter(r.headers["idempotency-key"] for r in ok)
    assert max(keys.values()) == 1
    post_ids = Counter(r.json["id"].rsplit(":", 1)[1] for r in ok)
    assert max(post_ids.values()) == 1 and set(post_ids) == {r[2] for r in rows}
    line_posts = [r for r in rows if r[1] == "line"]
    assert line_posts, "daemon A's simulator produced posts for the line team"
    for team in ["line", *TEAMS]:  # each team in commit (outbox) order
        got = [r.json["id"].rsplit(":", 1)[1] for r in ok if r.json["floorstream:team"] == team]
        assert got == [r[2] for r in rows if r[1] == team], team
    by_daemon = Counter(r.headers["x-daemon"] for r in ok)
    assert by_daemon["a"] > 0 and by_daemon["b"] > 0, by_daemon
