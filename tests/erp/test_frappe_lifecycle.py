"""ERPNext/Frappe as its users know it, on SQLite, PostgreSQL and MariaDB.

One post per user action: a submit (docstatus 0 → 1 with the status it got) is ONE post, a
cancel (→ 2) retracts it, an amendment (``…-1`` with ``amended_from``) joins the original's
thread naming the new document; child-table rows are named by their parent and row; the
formatted values of ``tabVersion`` ("1,000.000", "25-11-2026 08:00:00") are read as numbers
and dates. Through the Version log (audit mode) and through the table itself (cursor mode).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from support.erp import now_sql

from .idioms_support import POLLED, IdiomRun, config, create, execute, post_lines

DDL = """
CREATE TABLE "tabWork Order" (
    name {vtext} PRIMARY KEY, production_item {vtext} NOT NULL, qty {num} NOT NULL,
    status {vtext} NOT NULL DEFAULT 'Draft', docstatus INTEGER NOT NULL DEFAULT 0,
    amended_from {vtext}, planned_start_date {ts}, creation {ts} NOT NULL,
    modified {ts} NOT NULL, owner {vtext} NOT NULL DEFAULT 'Administrator');
CREATE INDEX wo_modified ON "tabWork Order" (modified, name);
CREATE TABLE "tabWork Order Operation" (
    name {vtext} PRIMARY KEY, parent {vtext} NOT NULL, parentfield {vtext} NOT NULL,
    parenttype {vtext} NOT NULL, idx INTEGER NOT NULL, operation {vtext} NOT NULL,
    status {vtext} NOT NULL DEFAULT 'Pending', completed_qty {num} NOT NULL DEFAULT 0);
CREATE TABLE "tabVersion" (
    name {vtext} PRIMARY KEY, creation {ts} NOT NULL, owner {vtext} NOT NULL,
    ref_doctype {vtext} NOT NULL, docname {vtext} NOT NULL, data TEXT NOT NULL);
CREATE INDEX version_ref ON "tabVersion" (ref_doctype, docname)
"""

WO = "MFG-WO-2026-00001"

SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: erpnext 15
    tables:
      - table: tabWork Order
        key: name
        subject: "{{{{ row.name }}}}"
        track: [status, qty, planned_start_date]
        labels: {{qty: quantity, planned_start_date: planned start}}
{mode}
"""

AUDIT = """        mode: audit
        audit: {style: frappe, object: Work Order}
        children:
          operations: {label: operation, name: operation, table: tabWork Order Operation}
"""
CURSOR = """        mode: cursor
        cursor: modified
"""


class Site:
    """An ERPNext database the way Frappe writes it: the document row and, for doctypes
    that track changes, a Version row with the formatted diff of each save."""

    def __init__(self, url: str) -> None:
        self.engine = create(url, DDL)
        self.at = datetime(2026, 11, 25, 10, 0, 0, 1000)
        self.versions = 0
        self.insert(WO)

    def insert(self, name: str, amended_from: str | None = None) -> None:
        now = now_sql(self.engine)
        execute(self.engine,
                'INSERT INTO "tabWork Order" (name, production_item, qty, amended_from, '
                f"planned_start_date, creation, modified) VALUES (:n, 'SKU-7', 1000, :a, "
                f"'2026-11-25 08:00:00', {now}, {now})", {"n": name, "a": amended_from})

    def save(self, name: str, values: dict[str, Any], diff: dict[str, Any] | None = None
             ) -> None:
        """One save of a document: its row updated and (audit) its Version written."""
        sets = ", ".join(f"{k} = :{k}" for k in values)
        now = now_sql(self.engine)
        execute(self.engine, f'UPDATE "tabWork Order" SET {sets}{", " if sets else ""}'
                f"modified = {now} WHERE name = :name", {**values, "name": name})
        if diff is not None:
            self.version(name, diff)

    def version(self, name: str, diff: dict[str, Any]) -> None:
        self.versions += 1
        self.at += timedelta(seconds=1)
        doc = {"changed": [], "added": [], "removed": [], "row_changed": [], **diff}
        execute(self.engine, 'INSERT INTO "tabVersion" VALUES (:v, :c, :o, :d, :n, :j)',
                {"v": f"v{self.versions:04d}x", "c": self.at, "o": "jane@plant.example",
                 "d": "Work Order", "n": name, "j": json.dumps(doc)})


def test_lifecycle_through_the_version_log(store_url: str, tmp_path: Path) -> None:
    site = Site(store_url)
    site.version(WO, {"changed": [["qty", "900.000", "1,000.000"]]})  # before the start
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, mode=AUDIT)))
    with run:
        run.start()
        # submit: docstatus 0 → 1 and status Draft → Not Started in one save = ONE post
        site.save(WO, {"docstatus": 1, "status": "Not Started"},
                  {"changed": [["docstatus", 0, 1], ["status", "Draft", "Not Started"]]})
        # formatted values come back as numbers and datetimes
        site.save(WO, {"qty": 1200, "planned_start_date": datetime(2026, 11, 26, 6, 30)},
                  {"changed": [["qty", "1,000.000", "1,200.000"],
                               ["planned_start_date", "25-11-2026 08:00:00",
                                "26-11-2026 06:30:00"]]})
        # child-table rows, named by their parent and their row
        execute(site.engine, 'INSERT INTO "tabWork Order Operation" VALUES (:n, :p, '
                "'operations', 'Work Order', :i, :o, 'Work in Progress', 500)",
                {"n": "op-assembly", "p": WO, "i": 2, "o": "Assembly"})
        site.version(WO, {
            "row_changed": [["operations", 1, "op-assembly",
                             [["completed_qty", "0.000", "500.000"],
                              ["status", "Pending", "Work in Progress"]]]],
            "added": [["operations", {"name": "op-paint", "idx": 3, "operation": "Painting",
                                      "status": "Pending", "completed_qty": 0}]]})
        # cancel: docstatus 1 → 2 retracts the submit; the status says nothing more
        site.save(WO, {"docstatus": 2, "status": "Cancelled"},
                  {"changed": [["docstatus", 1, 2], ["status", "Not Started", "Cancelled"]]})
        # amend: Frappe makes MFG-…-1 (no Version for the insert), the user submits it
        site.insert(f"{WO}-1", amended_from=WO)
        site.save(f"{WO}-1", {"docstatus": 1, "status": "Not Started"},
                  {"changed": [["docstatus", 0, 1], ["status", "Draft", "Not Started"]]})

        posts = run.behind(lambda: site.version("SENTINEL-1", {"changed": [
            ["status", "Draft", "Not Started"]]}), "SENTINEL-1: status Draft → Not Started")
        assert post_lines(posts) == [
            (f"{WO} submitted, status Not Started", "record.submitted", WO, "update"),
            (f"{WO}: quantity 1000 → 1200", "record.field_changed", WO, "new"),
            (f"{WO}: planned start 25 Nov 2026 08:00 UTC → 26 Nov 2026 06:30 UTC",
             "record.field_changed", WO, "new"),
            (f"{WO}: operation row 2 (Assembly): completed qty 0 → 500; status Pending → "
             "Work in Progress", "record.row_changed", WO, "new"),
            (f"{WO}: operation row 3 (Painting) added", "record.row_added", WO, "new"),
            (f"{WO} cancelled", "record.cancelled", WO, "retraction"),
            (f"{WO} amended as {WO}-1", "record.amended", WO, "update"),
            (f"{WO}-1 submitted, status Not Started", "record.submitted", WO, "update"),
        ]
        submitted, cancelled = posts[0], posts[5]
        assert cancelled.refers_to == submitted.id
        assert posts[1].fields["after"] == "1200"  # typed, then shown as people read it
        assert posts[0].tags == ("by:jane@plant.example", "table:tabWork Order")


def test_an_old_amendment_is_not_announced_again(store_url: str, tmp_path: Path) -> None:
    """An amendment made before floorstream started, edited again: just the edit."""
    site = Site(store_url)
    site.insert(f"{WO}-1", amended_from=WO)
    site.version(f"{WO}-1", {"changed": [["qty", "1,000.000", "1,100.000"]]})
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, mode=AUDIT)))
    with run:
        run.start()
        site.save(f"{WO}-1", {"qty": 1150}, {"changed": [["qty", "1,100.000", "1,150.000"]]})
        posts = run.behind(lambda: site.version("SENTINEL-1", {"changed": [
            ["status", "Draft", "Not Started"]]}), "SENTINEL-1: status Draft → Not Started")
        assert post_lines(posts) == [
            (f"{WO}-1: quantity 1100 → 1150", "record.field_changed", WO, "new")]


def test_lifecycle_through_the_table(store_url: str, tmp_path: Path) -> None:
    """No Version log (a doctype without track_changes): the same posts from the rows."""
    site = Site(store_url)
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, mode=CURSOR)))
    with run:
        run.start()
        site.save(WO, {"docstatus": 1, "status": "Not Started"})
        run.wait_news(1)
        site.save(WO, {"docstatus": 2, "status": "Cancelled"})
        run.wait_news(2)
        site.insert(f"{WO}-1", amended_from=WO)
        run.wait_news(3)
        site.save(f"{WO}-1", {"docstatus": 1, "status": "Not Started", "qty": 1100})
        posts = run.behind(lambda: site.insert("SENTINEL-1"), "SENTINEL-1 created")
        assert post_lines(posts) == [
            (f"{WO} submitted, status Not Started", "record.submitted", WO, "update"),
            (f"{WO} cancelled", "record.cancelled", WO, "retraction"),
            (f"{WO} amended as {WO}-1", "record.amended", WO, "update"),
            (f"{WO}-1 submitted, status Not Started (quantity 1000 → 1100)",
             "record.submitted", WO, "update"),
        ]
        assert posts[1].refers_to == posts[0].id


CHILD_SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: erpnext 15
    table: tabJob Card
    key: name
    cursor: modified
    subject: "{{{{ row.parent }}}} operation {{{{ row.idx }}}}"
    thread: "{{{{ row.parent }}}}"
    track: [status]
"""


def test_child_rows_watched_as_a_table_join_the_parents_thread(store_url: str,
                                                                tmp_path: Path) -> None:
    engine = create(store_url, 'CREATE TABLE "tabJob Card" (name {vtext} PRIMARY KEY, '
                    "parent {vtext} NOT NULL, idx INTEGER NOT NULL, status {vtext} NOT NULL, "
                    "modified {ts} NOT NULL)")

    def card(name: str, parent: str, idx: int) -> None:
        execute(engine, 'INSERT INTO "tabJob Card" VALUES (:n, :p, :i, \'Open\', '
                f"{now_sql(engine)})", {"n": name, "p": parent, "i": idx})
    card("JC-1", WO, 1)
    run = IdiomRun(config(tmp_path / "fs.db", CHILD_SOURCE.format(url=store_url)))
    with run:
        run.start()
        execute(engine, f'UPDATE "tabJob Card" SET status = \'Work In Progress\', modified = '
                f"{now_sql(engine)} WHERE name = 'JC-1'")
        posts = run.behind(lambda: card("JC-9", "SENTINEL-1", 1), "SENTINEL-1 operation 1 created")
        assert post_lines(posts) == [
            (f"{WO} operation 1: status Open → Work In Progress{POLLED}",
             "record.field_changed", WO, "new")]
