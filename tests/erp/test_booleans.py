"""A BOOLEAN column reads yes/no on every database.

PostgreSQL hands a BOOLEAN over as true/false; MariaDB stores it as TINYINT(1) and SQLite as
an integer, and their posts said "delivery complete 0 → 1". The column's declared type
decides, so the same table gives the same post on all three. A configured ``deletion_flag``
is named as the column reads, not in capitals ("deletion flag L"); SAP's LOEKZ keeps them.
"""

from __future__ import annotations

from pathlib import Path

from support.erp import now_sql

from .idioms_support import IdiomRun, config, create, execute

DDL = """
CREATE TABLE purchase_order_line (
    id INTEGER PRIMARY KEY, name {vtext} NOT NULL, deletion_flag {vtext} NOT NULL,
    delivery_complete BOOLEAN NOT NULL, write_date {ts} NOT NULL)
"""

SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    table: purchase_order_line
    cursor: write_date
    subject: "{{{{ row.name }}}}"
    deletion_flag: deletion_flag
    track: [delivery_complete]
    labels: {{delivery_complete: delivery complete}}
"""


def test_a_boolean_column_reads_yes_and_no_on_every_database(store_url: str,
                                                             tmp_path: Path) -> None:
    engine = create(store_url, DDL)
    now = now_sql(engine)
    execute(engine, f"INSERT INTO purchase_order_line VALUES (:i, :n, '', :c, {now})",
            {"i": 1, "n": "4500012345/10", "c": False}, {"i": 2, "n": "4500012345/20",
                                                         "c": False})

    def write(line: int, sets: str) -> None:
        execute(engine, f"UPDATE purchase_order_line SET {sets}, write_date = "
                f"{now_sql(engine)} WHERE id = :i", {"i": line})
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url)),
                   markers=("/20",))
    with run:
        run.start()
        write(1, "delivery_complete = TRUE")
        posts = run.behind(lambda: write(2, "deletion_flag = 'L'"),
                           "4500012345/20 flagged for deletion (deletion flag L)")
        assert [p.summary for p in posts] == [
            "4500012345/10: delivery complete no → yes"]
