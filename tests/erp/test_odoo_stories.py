"""Odoo records that continue another one's story, and models Odoo does not track.

A backorder (``stock.picking.backorder_id``) and a split manufacturing order (the shared
DDL's ``backorder_of_id``; in Odoo itself the ``…-001``/``…-002`` names) join their parent's
thread, their first post naming the parent. A model whose tracked columns never reach
``mail_tracking_value`` falls back to cursor capture by itself (``erp_version`` says which
fields a release tracks; the database's ``ir_model_fields.tracking`` wins when it is there).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from support.erp import now_sql

from .idioms_support import POLLED, IdiomRun, config, create, execute, post_lines, sql

DDL = """
CREATE TABLE stock_picking (
    id INTEGER PRIMARY KEY, name {vtext} NOT NULL UNIQUE, picking_type {vtext} NOT NULL,
    state {vtext} NOT NULL DEFAULT 'draft', backorder_id INTEGER, origin {vtext},
    create_date {ts} NOT NULL, write_date {ts} NOT NULL);
CREATE INDEX stock_picking_write_date ON stock_picking (write_date, id);
CREATE TABLE production_order (
    id INTEGER PRIMARY KEY, name {vtext} NOT NULL UNIQUE, product_code {vtext} NOT NULL,
    product_qty {num} NOT NULL, state {vtext} NOT NULL DEFAULT 'draft',
    backorder_of_id INTEGER, create_date {ts} NOT NULL, write_date {ts} NOT NULL);
CREATE INDEX production_order_write_date ON production_order (write_date, id);
CREATE TABLE work_order (
    id INTEGER PRIMARY KEY, name {vtext} NOT NULL, production_id INTEGER NOT NULL,
    workcenter {vtext} NOT NULL, state {vtext} NOT NULL DEFAULT 'ready',
    create_date {ts} NOT NULL, write_date {ts} NOT NULL);
CREATE INDEX work_order_write_date ON work_order (write_date, id);
CREATE TABLE mail_message (
    id INTEGER PRIMARY KEY, model {vtext} NOT NULL, res_id INTEGER NOT NULL,
    message_type {vtext} NOT NULL, author_id INTEGER, date {ts} NOT NULL);
CREATE TABLE mail_tracking_value (
    id INTEGER PRIMARY KEY, mail_message_id INTEGER NOT NULL, field_name {vtext} NOT NULL,
    old_value_char {vtext}, new_value_char {vtext}, old_value_integer INTEGER,
    new_value_integer INTEGER, old_value_float {num}, new_value_float {num},
    old_value_datetime {ts}, new_value_datetime {ts}, old_value_text TEXT,
    new_value_text TEXT)
"""

SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: odoo {version}
    tables:
{tables}
"""

PICKINGS = """      - table: stock_picking
        subject: "{{ row.name }}"
        track: [state]
"""
ORDERS = """      - table: production_order
        model: mrp.production
        mode: cursor
        cursor: write_date
        subject: "{{ row.name }}"
        track: [state]
"""
WORK_ORDERS = """      - table: work_order
        model: mrp.workorder
        mode: audit
        audit: {style: odoo}
        subject: "{{ row.name }}"
        track: [state]
"""


class Warehouse:
    def __init__(self, url: str) -> None:
        self.engine = create(url, DDL)
        self.messages = 0

    def picking(self, pid: int, state: str = "assigned", backorder: int | None = None) -> None:
        now = now_sql(self.engine)
        execute(self.engine, "INSERT INTO stock_picking (id, name, picking_type, state, "
                f"backorder_id, create_date, write_date) VALUES (:i, :n, 'incoming', :s, :b, "
                f"{now}, {now})", {"i": pid, "n": f"WH/IN/{pid:05d}", "s": state,
                                   "b": backorder})

    def order(self, oid: int, name: str, parent: int | None = None) -> None:
        now = now_sql(self.engine)
        execute(self.engine, "INSERT INTO production_order (id, name, product_code, "
                f"product_qty, state, backorder_of_id, create_date, write_date) VALUES (:i, "
                f":n, 'FG-1', 10, 'confirmed', :p, {now}, {now})",
                {"i": oid, "n": name, "p": parent})

    def set(self, table: str, rid: int, **values: object) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        execute(self.engine, f"UPDATE {table} SET {sets}, write_date = "
                f"{now_sql(self.engine)} WHERE id = :rid", {**values, "rid": rid})

    def track(self, model: str, res_id: int, old: str, new: str) -> None:
        self.messages += 1
        m = self.messages
        with self.engine.begin() as conn:
            conn.execute(text(sql(self.engine, "INSERT INTO mail_message VALUES (:m, :model, "
                                  f":r, 'notification', 7, {now_sql(self.engine)})")),
                         {"m": m, "model": model, "r": res_id})
            conn.execute(text("INSERT INTO mail_tracking_value (id, mail_message_id, "
                              "field_name, old_value_char, new_value_char) VALUES (:m, :m, "
                              "'state', :o, :n)"), {"m": m, "o": old, "n": new})


def test_backorders_and_splits_join_the_parents_thread(store_url: str, tmp_path: Path
                                                       ) -> None:
    wh = Warehouse(store_url)
    wh.picking(12)
    wh.order(42, "WH/MO/00042")
    wh.order(50, "WH/MO/00050")
    tables = PICKINGS + "        mode: cursor\n        cursor: write_date\n" + ORDERS
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, version="17",
                                                            tables=tables)), tables=2)
    with run:
        run.start()
        wh.set("stock_picking", 12, state="done")
        run.wait_news(1)
        wh.picking(13, backorder=12)  # what was not received goes to a backorder …
        run.wait_news(2)
        wh.picking(14, backorder=13)  # … and its own backorder still joins WH/IN/00012
        run.wait_news(3)
        wh.set("stock_picking", 13, state="done")
        run.wait_news(4)
        wh.order(43, "WH/MO/00042-002", parent=42)  # the shared DDL's split
        run.wait_news(5)
        # Odoo's own split: the original renamed …-001, the new part …-002
        wh.set("production_order", 50, name="WH/MO/00050-001")
        run.wait_news(6)
        wh.order(51, "WH/MO/00050-002")
        # the marker goes through the table of the last change (tables poll on their own)
        posts = run.behind(lambda: wh.order(9000, "WH/MO/09000"), "WH/MO/09000 created")
        assert post_lines(posts) == [
            (f"WH/IN/00012: status Ready → Done{POLLED}", "record.field_changed", "WH/IN/00012",
             "new"),
            ("WH/IN/00013 created as backorder of WH/IN/00012", "record.backorder",
             "WH/IN/00012", "update"),
            ("WH/IN/00014 created as backorder of WH/IN/00013", "record.backorder",
             "WH/IN/00012", "update"),
            (f"WH/IN/00013: status Ready → Done{POLLED}", "record.field_changed", "WH/IN/00012",
             "new"),
            ("WH/MO/00042-002 split from WH/MO/00042", "record.split", "WH/MO/00042",
             "update"),
            ("WH/MO/00050-001 split from WH/MO/00050", "record.split", "WH/MO/00050",
             "update"),
            ("WH/MO/00050-002 split from WH/MO/00050", "record.split", "WH/MO/00050",
             "update"),
        ]


def test_a_backorder_read_from_the_tracking_log(store_url: str, tmp_path: Path) -> None:
    """Audit mode: Odoo logs no tracking for a creation, so the backorder's first tracked
    change announces it; the next one is only itself."""
    wh = Warehouse(store_url)
    wh.picking(12)
    tables = PICKINGS + "        mode: audit\n        audit: {style: odoo}\n"
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, version="17",
                                                            tables=tables)))
    with run:
        run.start()
        wh.picking(13, state="draft", backorder=12)
        wh.set("stock_picking", 13, state="assigned")
        wh.track("stock.picking", 13, "Draft", "Ready")
        wh.set("stock_picking", 13, state="done")
        wh.track("stock.picking", 13, "Ready", "Done")
        def marker() -> None:
            wh.picking(9000)
            wh.track("stock.picking", 9000, "Draft", "Ready")
        posts = run.behind(marker, "WH/IN/09000: status Draft → Ready")
        assert post_lines(posts) == [
            ("WH/IN/00013 created as backorder of WH/IN/00012", "record.backorder",
             "WH/IN/00012", "update"),
            ("WH/IN/00013: status Draft → Ready", "record.field_changed", "WH/IN/00012",
             "new"),
            ("WH/IN/00013: status Ready → Done", "record.field_changed", "WH/IN/00012",
             "new"),
        ]


def test_an_untracked_model_falls_back_to_its_rows(store_url: str, tmp_path: Path) -> None:
    """Up to Odoo 17 mrp.workorder.state is not tracked: the audit config reads the rows."""
    wh = Warehouse(store_url)
    wh.order(42, "WH/MO/00042")
    now = now_sql(wh.engine)
    execute(wh.engine, "INSERT INTO work_order VALUES (7, 'Assembly', 42, 'WC-1', 'ready', "
            f"{now}, {now})")
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, version="17",
                                                            tables=WORK_ORDERS)))
    with run:
        run.start()
        wh.set("work_order", 7, state="progress")
        run.wait_news(1)
        wh.set("work_order", 7, state="done")

        def marker() -> None:
            execute(wh.engine, "INSERT INTO work_order VALUES (9000, 'SENTINEL', 42, 'WC-1', "
                    f"'ready', {now_sql(wh.engine)}, {now_sql(wh.engine)})")
        posts = run.behind(marker, "SENTINEL created")
        # the release's own labels: "Finished" was Odoo 17's word for done
        assert post_lines(posts) == [
            (f"Assembly: status Ready → In Progress{POLLED}", "record.field_changed", "Assembly",
             "new"),
            (f"Assembly: status In Progress → Finished{POLLED}", "record.field_changed", "Assembly",
             "new")]


def test_a_tracked_model_of_a_later_release_stays_on_the_log(store_url: str,
                                                             tmp_path: Path) -> None:
    """Odoo 18 tracks mrp.workorder.state: a row change alone posts nothing, its tracking
    value does, with Odoo 18's labels."""
    wh = Warehouse(store_url)
    wh.order(42, "WH/MO/00042")
    now = now_sql(wh.engine)
    execute(wh.engine, "INSERT INTO work_order VALUES (7, 'Assembly', 42, 'WC-1', 'ready', "
            f"{now}, {now})")
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, version="18",
                                                            tables=WORK_ORDERS)))
    with run:
        run.start()
        wh.set("work_order", 7, state="progress")  # no tracking value: not a log entry
        wh.track("mrp.workorder", 7, "To Do", "In Progress")
        posts = run.behind(lambda: wh.track("mrp.workorder", 9000, "To Do", "Blocked"),
                           "work_order:9000: status To Do → Blocked")
        assert post_lines(posts) == [
            ("Assembly: status To Do → In Progress", "record.field_changed", "Assembly",
             "new")]


def test_the_databases_own_tracking_flags_win(sqlite_url: str, tmp_path: Path) -> None:
    """A site that switched tracking off for ``state`` (ir_model_fields.tracking NULL)
    although the release tracks it: the rows are read instead of the silent log."""
    wh = Warehouse(sqlite_url)
    wh.order(42, "WH/MO/00042")
    execute(wh.engine, "CREATE TABLE ir_model_fields (id INTEGER PRIMARY KEY, model TEXT, "
            "name TEXT, ttype TEXT, tracking INTEGER)")
    execute(wh.engine, "INSERT INTO ir_model_fields VALUES (1, 'mrp.production', 'state', "
            "'selection', NULL)")
    tables = ORDERS.replace("        mode: cursor\n        cursor: write_date\n",
                            "        mode: audit\n        audit: {style: odoo}\n")
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=sqlite_url, version="17",
                                                            tables=tables)))
    with run:
        run.start()
        wh.set("production_order", 42, state="progress")
        posts = run.behind(lambda: wh.order(9000, "WH/MO/09000"), "WH/MO/09000 created")
        assert post_lines(posts) == [
            (f"WH/MO/00042: status Confirmed → In Progress{POLLED}", "record.field_changed",
             "WH/MO/00042", "new")]
