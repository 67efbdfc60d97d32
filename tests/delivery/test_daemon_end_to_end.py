"""The whole path in one daemon: simulator → detect → route → outbox → webhook sinks.

Each team gets a different chat shape (Teams Workflows card, Mattermost, Slack, AS2.0) on a
real local HTTP server; every post routed to a team must arrive exactly once, in commit order,
in that team's shape.
"""

from __future__ import annotations

from pathlib import Path

from support import DaemonRunner, http_receiver, sentinel, wait_for

from .helpers import commit, config, make_post

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
    with http_receiver() as recorder:
        url = recorder.url
        recorder.status = 500  # down at first: the outbox must hold the posts
        cfg, plugins = config(CONFIG.format(db=db, url=url))
        with DaemonRunner(cfg, plugins=plugins) as daemon:
            daemon.start()
            # the simulator's 150 readings are committed (its last checkpoint)
            wait_for(lambda: daemon.checkpoint("line") == "150", 20, "simulator done")
            wait_for(lambda: recorder.refused >= 3, 10, "failed attempts while down")
            recorder.status = 200
            feeds = {team: daemon.posts(team)
                     for team in ("maintenance", "production", "planning")}
            expected = sum(len(feeds[t]) for t in feeds) + len(feeds["planning"])
            assert all(feeds.values()), {t: len(p) for t, p in feeds.items()}
            # a marker post per team behind the story: once every sink got its marker, every
            # earlier post went out (each lane keeps commit order), so nothing is still to come
            sinks = {"maintenance": ["maint-teams"], "production": ["prod-mm"],
                     "planning": ["plan-slack", "plan-as2"]}
            markers = [make_post(900, team) for team in sinks]
            sentinel(lambda: commit(daemon.store, markers, sinks),
                     lambda: {r.path for r in recorder.ok() if b" post 900" in r.body}
                     == {"/teams", "/mm", "/slack", "/as2"}, 30, "every sink's marker")
            daemon.stop()
    delivered = [r for r in recorder.ok() if b" post 900" not in r.body]
    assert len(delivered) == expected

    by_path: dict[str, list[dict[str, object]]] = {}
    for request in delivered:
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
    keys = [r.headers.get("idempotency-key") for r in delivered]
    assert len(set(keys)) == len(keys) == expected
