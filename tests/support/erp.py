"""ERP databases for the tests: the production-order schema of the ``erp.table`` tests, the
purchasing schema of the supply tests, and a daemon watching a production-order table.

The production-order DDL is the realistic subset from ``research/erp-subset-ddl.sql``
(production orders, SAP CDHDR/CDPOS, Odoo mail_message/mail_tracking_value), adapted per dialect
where it must be: MariaDB needs VARCHAR for indexed text and DATETIME(6) for sub-second
timestamps. Every function takes a SQLAlchemy URL of a database the test owns (the ``pg_url``,
``mysql_url`` and ``sqlite_url`` fixtures).

Sentinel rows: :meth:`ErpRun.sentinel` inserts a work order numbered from :data:`SENTINEL`
on behind the changes under test and waits for its "created" post, so "nothing else was
posted" is asserted after the adapter provably polled past those changes (see
:func:`support.waiting.sentinel`). :meth:`ErpRun.summaries` leaves sentinel posts out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from .daemon import DaemonRunner
from .waiting import sentinel, wait_for

__all__ = ["DDL", "PURCHASING_DDL", "SENTINEL", "ErpRun", "create_erp", "create_purchasing",
           "erp_config", "insert_order", "now_sql", "update"]

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

#: the purchasing subset of the supply tests (a copy of shared/research/erp-subset-ddl.sql)
PURCHASING_DDL = Path(__file__).parent.parent / "supply" / "erp-subset-ddl.sql"

#: sentinel work orders are numbered from here (WH/MO/09000 …)
SENTINEL = 9000


def now_sql(engine: Engine) -> str:
    """The database's own clock at sub-second resolution, as the ERP would write it."""
    return {"sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')", "postgresql": "LOCALTIMESTAMP",
            "mysql": "NOW(6)", "mariadb": "NOW(6)"}[engine.dialect.name]


def create_erp(url: str, orders: int = 3) -> Engine:
    """The production-order schema with two products and ``orders`` confirmed work orders
    (WH/MO/00001 …), written now; returns an engine on it (the caller disposes of it)."""
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


def insert_order(engine: Engine, row_id: int, state: str = "draft") -> str:
    """Insert work order ``row_id`` (written now); returns its name, WH/MO/<row_id>."""
    name = f"WH/MO/{row_id:05d}"
    now = now_sql(engine)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO production_order (id, name, product_id, product_qty, state, "
            f"create_date, write_date) VALUES (:i, :n, 2, 1, :s, {now}, {now})"),
            {"i": row_id, "n": name, "s": state})
    return name


def create_purchasing(url: str) -> None:
    """The supply tests' ERP subset schema (the research DDL, unchanged) with two purchase
    orders:

    4500012 from ACME (lines 10: 200 EA promised 2026-11-29, 20: 50 EA, 30 deleted) and
    99999817 from the 856 sample's supplier (lines 10/20 carrying its vendor parts).
    """
    ddl = PURCHASING_DDL.read_text()
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            raw.driver_connection.executescript(ddl)  # type: ignore[union-attr]
        finally:
            raw.close()
    else:
        body = ddl.split("CREATE TRIGGER")[0]
        body = re.sub(r"--[^\n]*", "", body)
        with engine.begin() as conn:
            for statement in body.split(";"):
                if statement.strip():
                    conn.execute(text(statement))
    now = datetime(2026, 11, 1)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO purchase_order (id, name, vendor_code, state, date_order, date_planned,"
            " create_date, write_date) VALUES (1, '4500012', 'V100', 'purchase', :now, :p1,"
            " :now, :now), (2, '99999817', 'V200', 'purchase', :now, :p2, :now, :now)"),
            {"now": now, "p1": datetime(2026, 11, 29), "p2": datetime(2011, 12, 5)})
        conn.execute(text(
            "INSERT INTO purchase_order_line (id, order_id, line_no, product_code,"
            " vendor_product_code, name, product_qty, uom, price_unit, date_planned,"
            " deletion_flag, create_date, write_date) VALUES"
            " (1, 1, 10, 'P-10', 'A-10', 'bracket', 200, 'EA', 1.5, :p1, '', :now, :now),"
            " (2, 1, 20, 'P-20', 'A-20', 'bolt', 50, 'EA', 0.1, :p1, '', :now, :now),"
            " (3, 1, 30, 'P-30', 'A-30', 'nut', 10, 'EA', 0.1, :p1, 'L', :now, :now),"
            " (4, 2, 10, 'W-1', '87787D', 'blue widget', 24, 'EA', 2, :p2, '', :now, :now),"
            " (5, 2, 20, 'W-2', '99887D', 'red widget', 10, 'EA', 2, :p2, '', :now, :now)"),
            {"now": now, "p1": datetime(2026, 11, 29), "p2": datetime(2011, 12, 5)})
    engine.dispose()


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
        key: {key}
        subject: "{{{{ row.name }}}}"
        track: [state, date_planned_start, product_id]
        labels: {{state: status}}
        values: {{state: {{draft: Draft, confirmed: Confirmed, progress: In progress,
                          done: Done}}}}
        lookups: {{product_id: {{table: product}}}}
{extra}
"""


def erp_config(store: Path, url: str, extra: str, header: str = "", key: str = "id") -> str:
    """A daemon config: a SQLite store at ``store``, source ``orders`` watching the
    production orders at ``url`` (keyed by ``key``); ``extra`` adds keys to the table entry
    (or, indented as a list item, more tables)."""
    return header + SOURCE.format(store=store, url=url, extra=extra, key=key)


class ErpRun(DaemonRunner):
    """A daemon on a SQLite store watching ``production_order``, started and stopped like a
    real one between the steps of a test; posts of the ``planning`` and ``admin`` teams."""

    def __init__(self, tmp: Path, url: str, extra: str, header: str = "",
                 key: str = "id") -> None:
        super().__init__(erp_config(tmp / "fs.db", url, extra, header, key))
        self.sentinels = 0

    def start(self, *, ready: bool = True) -> ErpRun:
        """Start; with ``ready``, return once the adapter's first poll is done (its second
        began): the baseline was taken, so changes made from now on are changes."""
        super().start()
        if ready:
            adapter = self.adapter("orders")
            wait_for(lambda: adapter.polls >= 2, what="the first poll of orders")
        return self

    def summaries(self, *teams: str) -> list[str]:
        """Post lines of ``planning`` and ``admin``, oldest first, sentinels left out."""
        sentinel_names = tuple(f"WH/MO/{SENTINEL + n:05d} " for n in range(self.sentinels))
        return [s for s in super().summaries(*(teams or ("planning", "admin")))
                if not s.startswith(sentinel_names)]

    def wait_summaries(self, predicate: Callable[[list[str]], bool], timeout: float = 20.0
                       ) -> list[str]:
        """Wait until ``predicate(summaries)`` holds; return the summaries."""
        summaries = wait_for(lambda: (found if predicate(found := self.summaries()) else None),
                             timeout, "the expected posts")
        assert summaries is not None  # (wait_for returns a truthy value)
        return summaries

    def sentinel(self, engine: Engine) -> list[str]:
        """Insert a sentinel work order behind the changes under test, wait for its post, and
        return the summaries then (sentinels left out)."""
        row_id = SENTINEL + self.sentinels
        self.sentinels += 1
        line = f"WH/MO/{row_id:05d} created"
        sentinel(lambda: insert_order(engine, row_id),
                 lambda: line in DaemonRunner.summaries(self, "planning", "admin"),
                 what=f"the sentinel post {line!r}")
        return self.summaries()
