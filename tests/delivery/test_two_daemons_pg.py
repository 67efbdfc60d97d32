"""Two real ``floorstream run`` processes on one PostgreSQL store share the outbox.

Daemon A runs a simulator source (its own pipeline commits posts and wakes its workers at
once); daemon B has no source at all. The test commits more posts from outside, as another
daemon would. Both deliver to one local webhook server and say who they are in a header.
Every outbox row must arrive exactly once, each team's posts in commit order, and both
processes must have done part of the work.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from floorstream.store import schema
from floorstream.store.store import Store

from .helpers import commit, http_server, make_post, wait_for

FLOORSTREAM = str(Path(sys.executable).parent / "floorstream")
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
    procs: list[subprocess.Popen[bytes]] = []
    with http_server() as (url, rec):
        try:
            for name, sources in (("a", SOURCES), ("b", "")):
                path = tmp_path / f"{name}.yaml"
                path.write_text(CONFIG.format(store=pg_url, teams=teams, sources=sources,
                                              url=url, name=name), encoding="utf-8")
                log = (tmp_path / f"{name}.log").open("wb")
                procs.append(subprocess.Popen(
                    [FLOORSTREAM, "run", "-c", str(path), "--log-format", "json"],
                    stdout=log, stderr=subprocess.STDOUT))
            posts = [make_post(n, team) for n in range(25) for team in TEAMS]
            for start in range(0, len(posts), 15):  # committed by "another daemon"
                commit(store, posts[start:start + 15], {t: ["chat"] for t in TEAMS})
                time.sleep(0.15)

            def settled() -> bool:
                rows = _rows(store)
                return (len(rows) > len(posts) and all(r[3] == "delivered" for r in rows)
                        and len(rec.ok()) >= len(rows))

            wait_for(settled, timeout=40, what="every row delivered")
            time.sleep(1.0)  # a double delivery would show up now
            rows = _rows(store)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
            store.close()
    for proc, name in zip(procs, "ab", strict=True):
        assert proc.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
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
