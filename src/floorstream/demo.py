"""``floorstream demo``: the real pipeline on SQLite, with nothing else installed.

It writes a config and a small ERP database of work orders into a folder, runs the daemon for a
few seconds while a simulator plays four machines' telemetry and a thread plays an ERP user
moving work orders along, then prints every team's feed. The config it leaves behind is the
starting point for a real one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import TextIO

from floorstream.config import load_config
from floorstream.daemon import Daemon
from floorstream.logs import configure_logging
from floorstream.plugins import build_plugins
from floorstream.store.store import Store

__all__ = ["run_demo"]

CONFIG = """\
# floorstream demo config: copy it, point the sources at your plant, run `floorstream check`.
store: sqlite:///{dir}/floorstream.db
default_team: production
teams:
  maintenance: {{description: "fixes machines"}}
  production: {{description: "runs the lines"}}
  planning: {{description: "work orders and dates"}}
sources:
  - name: shopfloor
    adapter: simulator          # plays 4 machines; use `adapter: mqtt` for real ones
    interval: 2ms
    readings: 1500
    detect:
      - state_change: {{field: state, normal: [RUNNING],
                       labels: {{RUNNING: running, STOPPED: stopped, FAULT: in fault}},
                       severity: {{FAULT: critical, STOPPED: warning}}}}
      - threshold: {{field: spindle_temp, above: 85, clear_below: 80, for: 20s, unit: "°C",
                    label: spindle temperature}}
{erp}routes:
  - name: machine trouble
    match: {{source: shopfloor, severity: ">=warning"}}
    teams: [maintenance]
  - name: machine activity
    match: {{type: "machine.*"}}
    teams: [production]
  - name: work orders
    match: {{source: work-orders}}
    teams: [planning]
flood: {{max_posts: 6, window: 10m}}
"""

DEMO_WEB = """\
web:                            # the live feed (docs/web.md), served while the demo runs
  port: {port}
  public_teams: [maintenance, production, planning]   # readable from this machine, no login
  people:
    demo: {{name: Demo, password_hash: "{password_hash}"}}   # log in as demo / demo to comment
"""

ERP_SOURCE = """\
  - name: work-orders
    adapter: erp.table
    url: sqlite:///{dir}/erp.db
    table: mrp_production
    key: id
    mode: cursor
    cursor: write_date
    track: [state, date_planned_start]
    labels: {{state: status, date_planned_start: planned start}}
    values: {{state: {{draft: Draft, confirmed: Confirmed, progress: In progress, done: Done}}}}
    interval: 200ms
    subject: "{{{{ row.name }}}}"
"""

WORK_ORDERS = [
    (1, "WH/MO/00041", "confirmed", "2026-11-02 06:00:00"),
    (2, "WH/MO/00042", "confirmed", "2026-11-02 08:00:00"),
    (3, "WH/MO/00043", "draft", "2026-11-03 06:00:00"),
]
MOVES = [
    (1, "state", "progress"), (2, "date_planned_start", "2026-11-02 14:00:00"),
    (3, "state", "confirmed"), (1, "state", "done"), (2, "state", "progress"),
]


def _erp_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS mrp_production")
        db.execute("CREATE TABLE mrp_production (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                   "state TEXT NOT NULL, date_planned_start TEXT, "
                   "write_date TEXT NOT NULL)")
        db.execute("CREATE INDEX mrp_production_write_date ON mrp_production (write_date, id)")
        db.executemany("INSERT INTO mrp_production VALUES (?, ?, ?, ?, "
                       "strftime('%Y-%m-%d %H:%M:%f', 'now'))", WORK_ORDERS)


def _play_erp_user(path: Path, stop: threading.Event) -> None:
    """An ERP user at work: one work-order edit every few hundred milliseconds."""
    for row_id, column, value in MOVES:
        if stop.wait(0.5):
            return
        with sqlite3.connect(path) as db:
            db.execute(f"UPDATE mrp_production SET {column} = ?, "
                       "write_date = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = ?",
                       (value, row_id))


def _web_section(port: int) -> str:
    """The config's web: section when the web extra is installed (else none: the demo runs
    on the core alone)."""
    try:
        from floorstream.web.auth import hash_password
    except ImportError:
        return ""
    return DEMO_WEB.format(port=port, password_hash=hash_password("demo"))


def run_demo(directory: Path, seconds: float, out: TextIO, *, serve: bool = False,
             port: int = 0) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()
    for name in ("floorstream.db", "floorstream.db-wal", "floorstream.db-shm"):
        (directory / name).unlink(missing_ok=True)
    plugins = build_plugins()
    has_erp = "erp.table" in plugins.adapters
    config_path = directory / "floorstream.yaml"
    erp = ERP_SOURCE.format(dir=directory) if has_erp else ""
    web = _web_section(port)
    config_path.write_text(CONFIG.format(dir=directory, erp=erp) + web, encoding="utf-8")
    _erp_database(directory / "erp.db")

    configure_logging("warning", "console")
    config = load_config(config_path, plugins)
    print(f"floorstream demo: running the pipeline for {seconds:g} s "
          f"(config: {config_path})\n", file=out)
    daemon = Daemon(config, plugins)
    stop = threading.Event()
    erp_user = threading.Thread(target=_play_erp_user, args=(directory / "erp.db", stop))
    daemon.start()
    feed_url = f"{daemon.web.url}/" if daemon.web is not None else None
    if feed_url:
        print(f"floorstream demo: the live feed is at {feed_url}\n", file=out, flush=True)
    erp_user.start()
    time.sleep(seconds)
    stop.set()
    erp_user.join()
    serving = serve and feed_url is not None
    if not serving:
        daemon.stop()

    store = Store.open(config.settings.store)
    for team in config.settings.teams:
        posts = list(reversed(store.feed(team, limit=12)))
        print(f"── {team} ({len(posts)} latest posts) " + "─" * 30, file=out)
        for post in posts:
            print(f"  {post.occurred_at:%H:%M:%S}  {post.severity.label:<8}  {post.summary}",
                  file=out)
        if not posts:
            print("  (nothing yet)", file=out)
        print(file=out)
    store.close()
    print("Next steps:\n"
          f"  • read {config_path} — sources, detectors, routes and teams in one file\n"
          f"  • floorstream feed -c {config_path} --team maintenance --explain\n"
          "  • write your own floorstream.yaml (floorstream schema gives editors completion),\n"
          "    validate it with `floorstream check -c floorstream.yaml`, then\n"
          "    `floorstream run -c floorstream.yaml`. See docs/ for every adapter.", file=out)
    if serving:
        print(f"\nThe demo's feed: {feed_url} — served until Ctrl-C (log in as demo / demo "
              "to comment)", file=out, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            daemon.stop_event.wait()
        daemon.stop()
    elif feed_url:
        print(f"\nThe demo's feed was at {feed_url} while it ran: `floorstream demo --serve` "
              f"keeps it up, `floorstream web -c {config_path}` serves it alone", file=out)
    else:
        print("\nThe web feed needs the web extra: pip install 'floorstream[web]'", file=out)
    return 0
