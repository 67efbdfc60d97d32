"""ERP fixtures for the erp.table tests: the research schema per dialect, and a daemon runner.

The DDL is the realistic subset from ``research/erp-subset-ddl.sql`` (production orders, SAP
CDHDR/CDPOS, Odoo mail_message/mail_tracking_value), adapted per dialect where it must be:
MariaDB needs VARCHAR for indexed text and DATETIME(6) for sub-second timestamps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.model import Post
from floorstream.plugins import build_plugins
from floorstream.store.store import Store

DDL = """
CREATE TABLE product (id INTEGER PRIMARY KEY, name {vtext} NOT NULL);
CREATE TABLE production_order (
    id INTEGER PRIMARY KEY,
    name {vtext} NOT NULL UNIQUE,
    product_id INTEGER REFERENCES product(id),
    product_qty NUMERIC(16,4) NOT NULL,
    uom {vtext} NOT NULL DEFAULT 'Units',
    state {vtext} NOT NULL DEFAULT 'draft',
    date_planned_start {ts},
    create_date {ts} NOT NULL,
    write_date {ts} NOT NULL,
    write_uid INTEGER
);
CREATE INDEX production_order_write_date ON production_order (write_date, id);
CREATE TABLE change_header (
    objectclas {vtext} NOT NULL, objectid {vtext} NOT NULL, changenr {vtext} NOT NULL,
    username {vtext} NOT NULL, udate {vtext} NOT NULL, utime {vtext} NOT NULL, tcode {vtext},
    change_ind {vtext} NOT NULL, PRIMARY KEY (objectclas, objectid, changenr));
CREATE TABLE change_item (
    objectclas {vtext} NOT NULL, objectid {vtext} NOT NULL, changenr {vtext} NOT NULL,
    tabname {vtext} NOT NULL, tabkey {vtext} NOT NULL, fname {vtext} NOT NULL,
    chngind {vtext} NOT NULL, unit_old TEXT, unit_new TEXT, cuky_old TEXT, cuky_new TEXT,
    value_new TEXT, value_old TEXT,
    PRIMARY KEY (objectclas, objectid, changenr, tabname, tabkey, fname, chngind));
CREATE TABLE mail_message (
    id INTEGER PRIMARY KEY, model {vtext} NOT NULL, res_id INTEGER NOT NULL,
    message_type {vtext} NOT NULL, author_id INTEGER, date {ts} NOT NULL);
CREATE TABLE mail_tracking_value (
    id INTEGER PRIMARY KEY, mail_message_id INTEGER NOT NULL REFERENCES mail_message(id),
    field_name {vtext} NOT NULL, old_value_char TEXT, new_value_char TEXT,
    old_value_integer INTEGER, new_value_integer INTEGER,
    old_value_float NUMERIC(16,4), new_value_float NUMERIC(16,4),
    old_value_datetime {ts}, new_value_datetime {ts}, old_value_text TEXT, new_value_text TEXT);
"""


def now_sql(engine: Engine) -> str:
    """The database's own clock at sub-second resolution, as the ERP would write it."""
    return {"sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')", "postgresql": "LOCALTIMESTAMP",
            "mysql": "NOW(6)", "mariadb": "NOW(6)"}[engine.dialect.name]


def create_erp(url: str, orders: int = 3) -> Engine:
    engine = create_engine(url)
    mysql = engine.dialect.name in ("mysql", "mariadb")
    ddl = DDL.format(vtext="VARCHAR(100)" if mysql else "TEXT",
                     ts="DATETIME(6)" if mysql else "TIMESTAMP")
    now = now_sql(engine)
    with engine.begin() as conn:
        for statement in ddl.split(";"):
            if statement.strip():
                conn.execute(text(statement))
        conn.execute(text("INSERT INTO product VALUES (1, 'M8 bolt'), (2, 'Hinge')"))
        for i in range(1, orders + 1):
            conn.execute(text(
                "INSERT INTO production_order (id, name, product_id, product_qty, state, "
                f"date_planned_start, create_date, write_date) VALUES (:id, :name, 1, 10.5, "
                f"'confirmed', '2026-11-02 06:00:00', {now}, {now})"),
                {"id": i, "name": f"WH/MO/{i:05d}"})
    return engine


def update(engine: Engine, row_id: int, **values: Any) -> None:
    """One ERP write: set columns and bump write_date, in its own transaction."""
    sets = ", ".join(f"{k} = :{k}" for k in values)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE production_order SET {sets}, write_date = {now_sql(engine)} "
                          "WHERE id = :row_id"), {**values, "row_id": row_id})


SOURCE = """
store: sqlite:///{store}
default_team: planning
sources:
  - name: orders
    adapter: erp.table
    url: {url}
    interval: 100ms
    tables:
      - table: production_order
        key: id
        subject: "{{{{ row.name }}}}"
        track: [state, date_planned_start, product_id]
        labels: {{state: status}}
        values: {{state: {{draft: Draft, confirmed: Confirmed, progress: In progress,
                          done: Done}}}}
        lookups: {{product_id: {{table: product}}}}
{extra}
"""


class Run:
    """A daemon on a SQLite store, started and stopped like a real one between steps."""

    def __init__(self, tmp: Path, url: str, extra: str, header: str = "") -> None:
        text_ = SOURCE.format(store=tmp / "fs.db", url=url, extra=extra)
        self.plugins = build_plugins()
        self.config = parse_config(header + text_, self.plugins)
        self.store_url = self.config.settings.store
        self.daemon: Daemon | None = None

    def start(self) -> Daemon:
        self.daemon = Daemon(self.config, self.plugins)
        self.daemon.start()
        return self.daemon

    def stop(self) -> None:
        assert self.daemon is not None
        self.daemon.stop()
        self.daemon = None

    def posts(self) -> list[Post]:
        store = Store.open(self.store_url)
        try:
            return sorted(store.feed("planning", limit=10_000) + store.feed("admin", limit=50),
                          key=lambda p: p.created_at)
        finally:
            store.close()

    def summaries(self) -> list[str]:
        return [p.summary for p in self.posts()]

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 10.0
                 ) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.summaries()
            if predicate(found) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def settle(self, seconds: float = 0.6) -> list[str]:
        """Posts after the adapter had time for a few more polls (to see nothing extra)."""
        time.sleep(seconds)
        return self.summaries()
