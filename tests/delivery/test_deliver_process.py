"""``floorstream run --no-delivery`` next to ``floorstream deliver``: the pipeline and delivery in
two processes on one SQLite store. Every routed post arrives once, in order, and only the
``deliver`` process sends (the config says who sent in a header)."""

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

from .helpers import http_server, wait_for

FLOORSTREAM = str(Path(sys.executable).parent / "floorstream")

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
    procs: list[subprocess.Popen[bytes]] = []
    with http_server() as (url, rec):
        try:
            for name, command in (("run", ["run", "--no-delivery"]),
                                  ("deliver", ["deliver", "--poll", "0.05"])):
                path = tmp_path / f"{name}.yaml"
                path.write_text(CONFIG.format(db=db, url=url, name=name), encoding="utf-8")
                log = (tmp_path / f"{name}.log").open("wb")
                procs.append(subprocess.Popen(
                    [FLOORSTREAM, *command, "-c", str(path), "--log-format", "json"],
                    stdout=log, stderr=subprocess.STDOUT))
            store = Store.open(f"sqlite:///{db}")
            d = schema.deliveries

            def statuses() -> list[str]:
                with store.engine.connect() as conn:
                    return list(conn.execute(select(d.c.status).order_by(d.c.id)).scalars())

            wait_for(lambda: len(statuses()) > 5 and set(statuses()) == {"delivered"}
                     and len(rec.ok()) == len(statuses()), timeout=30, what="all delivered")
            time.sleep(0.5)  # the simulator is done; nothing more may arrive
            with store.engine.connect() as conn:
                expected = list(conn.execute(select(d.c.post_id).order_by(d.c.id)).scalars())
            store.close()
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
    for proc, name in zip(procs, ("run", "deliver"), strict=True):
        assert proc.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    got = [r.json["id"].rsplit(":", 1)[1] for r in rec.requests]
    assert got == expected  # once each, in commit order
    assert Counter(r.headers["x-process"] for r in rec.requests) == {"deliver": len(expected)}
