"""``floorstream run --no-delivery`` next to ``floorstream deliver``: the pipeline and delivery in
two processes on one SQLite store. Every routed post arrives once, in order, and only the
``deliver`` process sends (the config says who sent in a header)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import select

from floorstream.store import schema
from floorstream.store.store import Store
from support import DaemonRunner, http_receiver, sentinel, wait_for

from .helpers import commit, make_post

CONFIG = """\
store: sqlite:///{db}
flood: null
teams: {{line: {{sinks: [chat]}}}}
sources:
  - name: shopfloor
    adapter: simulator
    interval: 1ms
    readings: 300
    detect:
      - state_change: {{field: state, normal: [RUNNING]}}
routes:
  - {{match: {{type: "machine.*"}}, teams: [line]}}
sinks:
  - {{name: chat, type: webhook, url: "{url}/hook", workers: 2, headers: {{X-Process: {name}}}}}
"""


def test_pipeline_and_delivery_in_separate_processes(tmp_path: Path) -> None:
    db = tmp_path / "fs.db"
    Store.open(f"sqlite:///{db}").close()  # the schema exists before both start
    with http_receiver() as rec, \
            DaemonRunner(CONFIG.format(db=db, url=rec.url, name="run"), process=True,
                         command=["run", "--no-delivery"], workdir=tmp_path, name="run") as run, \
            DaemonRunner(CONFIG.format(db=db, url=rec.url, name="deliver"), process=True,
                         command=["deliver", "--poll", "0.05"], workdir=tmp_path,
                         name="deliver") as deliver:
        run.start()
        deliver.start()
        store = run.store
        d = schema.deliveries

        def post_ids() -> list[str]:
            with store.engine.connect() as conn:
                return list(conn.execute(select(d.c.post_id).order_by(d.c.id)).scalars())

        # the simulator's 300 readings are all committed (its last checkpoint) …
        wait_for(lambda: run.checkpoint("shopfloor") == "300", 30, "the simulator's story")
        expected = post_ids()
        assert len(expected) > 5
        # … and a marker post committed behind them on the same lane is delivered: every
        # earlier row of the lane went out before it, so nothing may come after this
        marker = make_post(1, "line")
        sentinel(lambda: commit(store, [marker], {"line": ["chat"]}),
                 lambda: any(r.json["id"].endswith(marker.id) for r in rec.ok()),
                 what="the marker post")
        run.stop()
        deliver.stop()
    got = [r.json["id"].rsplit(":", 1)[1] for r in rec.requests]
    assert got == [*expected, marker.id]  # once each, in commit order
    assert Counter(r.headers["x-process"] for r in rec.requests) == {
        "deliver": len(expected) + 1}
