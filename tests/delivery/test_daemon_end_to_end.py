"""The whole path in one daemon: simulator → detect → route → outbox → webhook sinks.

Each team gets a different chat shape (Teams Workflows card, Mattermost, Slack, AS2.0) on a
real local HTTP server; every post routed to a team must arrive exactly once, in commit order,
in that team's shape.
"""

from __future__ import annotations

from pathlib import Path

from floorstream.daemon import Daemon
from floorstream.store.store import Store

from .helpers import config, http_server, wait_for

CONFIG = """
store: sqlite:///{db}
flood: null
teams:
  maintenance: {{sinks: [maint-teams]}}
  production: {{sinks: [prod-mm]}}
  planning: {{sinks: [plan-slack, plan-as2]}}
sources:
  - name: line
    adapter: simulator
    interval: 1ms
    readings: 150
    detect:
      - state_change: {{field: state, normal: [RUNNING], severity: {{FAULT: critical,
                                                                   STOPPED: warning}}}}
routes:
  - {{match: {{severity: ">=warning"}}, teams: [maintenance]}}
  - {{match: {{type: "machine.*"}}, teams: [production]}}
  - {{match: {{attrs: {{area: pressing}}}}, teams: [planning]}}
sinks:
  - {{name: maint-teams, type: webhook, format: teams, url: "{url}/teams",
     retry: {{initial: 10ms, max_delay: 50ms}}}}
  - {{name: prod-mm, type: webhook, format: mattermost, url: "{url}/mm",
     retry: {{initial: 10ms, max_delay: 50ms}}}}
  - {{name: plan-slack, type: webhook, format: slack, url: "{url}/slack",
     retry: {{initial: 10ms, max_delay: 50ms}}}}
  - {{name: plan-as2, type: webhook, url: "{url}/as2", retry: {{initial: 10ms, max_delay: 50ms}}}}
"""


def test_every_routed_post_reaches_its_teams_sinks_once_in_order(tmp_path: Path) -> None:
    db = tmp_path / "fs.db"
    with http_server() as (url, recorder):
        recorder.status = 500  # down at first: the outbox must hold the posts
        cfg, plugins = config(CONFIG.format(db=db, url=url))
        daemon = Daemon(cfg, plugins)
        daemon.start()
        try:
            wait_for(lambda: daemon.status["line"].state == "finished", 20, "simulator done")
            wait_for(lambda: recorder.refused >= 3, 10, "failed attempts while down")
            recorder.status = 200
            store = Store.open(f"sqlite:///{db}")
            feeds = {team: list(reversed(store.feed(team, limit=1000)))
                     for team in ("maintenance", "production", "planning")}
            expected = sum(len(feeds[t]) for t in feeds) + len(feeds["planning"])
            assert all(feeds.values()), {t: len(p) for t, p in feeds.items()}
            wait_for(lambda: len(recorder.ok()) == expected, 30, "all deliveries")
        finally:
            daemon.stop()

    by_path: dict[str, list[dict[str, object]]] = {}
    for request in recorder.ok():
        by_path.setdefault(request.path, []).append(request.json)
    teams_cards = by_path["/teams"]
    assert [c["attachments"][0]["content"]["body"][0]["text"]  # type: ignore[index]
            for c in teams_cards] == [p.summary for p in feeds["maintenance"]]
    assert all(c["type"] == "message" for c in teams_cards)
    mm = by_path["/mm"]
    assert [m["props"]["floorstream_post"] for m in mm] == [  # type: ignore[index]
        p.id for p in feeds["production"]]
    slack = by_path["/slack"]
    assert len(slack) == len(feeds["planning"]) and all("blocks" in s for s in slack)
    as2 = by_path["/as2"]
    assert [a["id"] for a in as2] == [f"urn:floorstream:post:{p.id}" for p in feeds["planning"]]
    # retries carried the same idempotency key: one key per delivered (post, sink)
    keys = [r.headers.get("idempotency-key") for r in recorder.ok()]
    assert len(set(keys)) == len(keys) == expected
