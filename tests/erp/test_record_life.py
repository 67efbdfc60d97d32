"""Records archived, flagged for deletion, blocked and restored, as their ERP flags them.

ERPs rarely delete a business record: Odoo archives it (``active`` false), SAP sets a
deletion indicator (EKPO ``LOEKZ`` ``L``; ``S`` blocks the item). Read as field changes
these posts misled: "active yes → no", "loekz (empty) → L" (or nothing, the column not
tracked). They are posted as what happened to the record, on SQLite, PostgreSQL and MariaDB,
from a polled table and from SAP change documents.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from support.erp import now_sql

from .idioms_support import (
    POLLED,
    SAP_AUDIT_ORDERS,
    SAP_CHANGE_LOG,
    IdiomRun,
    config,
    create,
    execute,
    post_lines,
    sql,
)

ODOO_DDL = """
CREATE TABLE production_order (
    id INTEGER PRIMARY KEY, name {vtext} NOT NULL, state {vtext} NOT NULL,
    active BOOLEAN NOT NULL, write_date {ts} NOT NULL)
"""

ODOO = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: odoo 17
    table: production_order
    model: mrp.production
    mode: cursor
    cursor: write_date
    subject: "{{{{ row.name }}}}"
    track: [state, active]
"""


def test_odoo_archiving_is_posted_as_archived_and_restored(store_url: str,
                                                           tmp_path: Path) -> None:
    engine = create(store_url, ODOO_DDL)
    now = now_sql(engine)
    insert = f"INSERT INTO production_order VALUES (:i, :n, 'confirmed', :a, {now})"
    execute(engine, insert, {"i": 42, "n": "WH/MO/00042", "a": True},
            {"i": 43, "n": "WH/MO/00043", "a": False}, {"i": 9000, "n": "WH/MO/09000", "a": True})

    def write(order: int, **values: object) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        execute(engine, f"UPDATE production_order SET {sets}, write_date = {now_sql(engine)} "
                "WHERE id = :i", {**values, "i": order})
    run = IdiomRun(config(tmp_path / "fs.db", ODOO.format(url=store_url)))
    with run:
        run.start()
        write(42, active=False)
        run.wait_news(1)
        write(42, active=True, state="progress")  # restored and started in one write
        run.wait_news(3)
        write(43, state="cancel")  # archived before the first start: a field change only
        run.wait_news(4)
        posts = run.behind(lambda: write(9000, active=False), "WH/MO/09000 archived")
        assert post_lines(posts) == [
            ("WH/MO/00042 archived", "record.archived", "WH/MO/00042", "new"),
            ("WH/MO/00042 restored from the archive", "record.restored", "WH/MO/00042", "new"),
            (f"WH/MO/00042: status Confirmed → In Progress{POLLED}", "record.field_changed",
             "WH/MO/00042", "new"),
            (f"WH/MO/00043: status Confirmed → Cancelled{POLLED}", "record.field_changed",
             "WH/MO/00043", "new")]
        assert (posts[0].fields["field"], posts[0].fields["was"]) == ("active", "active")


EKPO_DDL = """
CREATE TABLE ekpo (
    mandt {vtext} NOT NULL, ebeln {vtext} NOT NULL, ebelp {vtext} NOT NULL,
    item {vtext} NOT NULL, txz01 {vtext}, menge {num}, loekz {vtext} NOT NULL,
    PRIMARY KEY (mandt, item))
"""

EKPO = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: sap ecc
    client: '100'
    table: ekpo
    key: item
    mode: snapshot
    columns: [item, ebeln, ebelp, menge]
    subject: "{{{{ row.ebeln | alpha }}}}/{{{{ row.ebelp | alpha }}}}"
    track: [menge]
    labels: {{menge: quantity}}
"""


def test_sap_deletion_indicators_are_posted_as_deleted_blocked_and_restored(
        store_url: str, tmp_path: Path) -> None:
    """EKPO LOEKZ, read even though ``columns:`` leaves it out: L flags the item for
    deletion, S blocks it, blank restores it; a quantity changed with it is its own post."""
    engine = create(store_url, EKPO_DDL)
    insert = "INSERT INTO ekpo VALUES ('100', :po, :line, :item, :t, :q, :l)"
    execute(engine, insert,
            {"po": "4500012345", "line": "00010", "item": "4500012345/00010", "t": "Bracket",
             "q": 200, "l": ""},
            {"po": "4500012345", "line": "00020", "item": "4500012345/00020", "t": "Bolt",
             "q": 50, "l": ""},
            {"po": "4500019000", "line": "00010", "item": "4500019000/00010", "t": "marker",
             "q": 1, "l": ""})

    def flag(item: str, loekz: str, menge: int | None = None) -> None:
        sets = "loekz = :l" + (", menge = :q" if menge is not None else "")
        execute(engine, f"UPDATE ekpo SET {sets} WHERE item = :i",
                {"l": loekz, "q": menge, "i": item})
    run = IdiomRun(config(tmp_path / "fs.db", EKPO.format(url=store_url)), markers=("19000",))
    with run:
        run.start()
        flag("4500012345/00010", "L")
        run.wait_news(1)
        flag("4500012345/00020", "S", menge=40)
        run.wait_news(3)
        flag("4500012345/00010", "")
        run.wait_news(4)
        flag("4500012345/00020", "")
        posts = run.behind(lambda: flag("4500019000/00010", "L"),
                           "4500019000/10 flagged for deletion (LOEKZ L)")
        assert post_lines(posts) == [
            ("4500012345/10 flagged for deletion (LOEKZ L)", "record.deleted",
             "4500012345/10", "new"),
            ("4500012345/20 blocked (LOEKZ S)", "record.blocked", "4500012345/20", "new"),
            ("4500012345/20: quantity 50 → 40", "record.field_changed",
             "4500012345/20", "new"),
            ("4500012345/10 restored (deletion flag removed)", "record.restored",
             "4500012345/10", "new"),
            ("4500012345/20 unblocked", "record.restored", "4500012345/20", "new")]
        assert posts[0].fields["flagged"] is True and posts[0].severity.label == "notice"


CDHDR_DDL = """
CREATE TABLE aufk (
    mandt {vtext} NOT NULL, aufnr {vtext} NOT NULL, ktext {vtext}, loekz {vtext},
    PRIMARY KEY (mandt, aufnr));
""" + SAP_CHANGE_LOG

AUDIT = SAP_AUDIT_ORDERS


def test_a_deletion_flag_from_sap_change_documents(store_url: str, tmp_path: Path) -> None:
    """CDPOS logs LOEKZ in capitals with its before image: the order flagged for deletion
    and the flag taken back are two posts, each from its change document."""
    engine = create(store_url, CDHDR_DDL)
    execute(engine, "INSERT INTO aufk VALUES ('100', :n, :t, '')",
            {"n": "000001000123", "t": "Pump housing"}, {"n": "000000009000", "t": "seen"})
    number = [0]

    def document(order: str, fname: str, old: str, new: str) -> None:
        number[0] += 1
        values = {"o": order, "nr": f"{number[0]:010d}", "f": fname, "old": old, "new": new}
        with engine.begin() as conn:
            conn.execute(text(sql(engine, "INSERT INTO change_header VALUES ('100', 'ORDER', "
                                  ":o, :nr, 'AMILLER', '20261125', '101500', 'CO02', 'U')")),
                         values)
            conn.execute(text(sql(engine, "INSERT INTO change_item VALUES ('100', 'ORDER', :o, "
                                  ":nr, 'AUFK', :o, :f, 'U', :old, :new)")), values)
    run = IdiomRun(config(tmp_path / "fs.db", AUDIT.format(url=store_url)))
    with run:
        run.start()
        document("000001000123", "LOEKZ", "", "X")
        document("000001000123", "LOEKZ", "X", "")
        posts = run.behind(lambda: document("000000009000", "KTEXT", "marker", "seen"),
                           "9000: description marker → seen")
        assert post_lines(posts) == [
            ("1000123 flagged for deletion (LOEKZ X)", "record.deleted", "1000123", "new"),
            ("1000123 restored (deletion flag removed)", "record.restored", "1000123", "new")]


def test_a_mass_archive_is_summed_up_as_records_archived(sqlite_url: str,
                                                         tmp_path: Path) -> None:
    """Odoo's "archive" on 1,200 selected orders is one statement: one summary that says
    what happened to the records, not "active yes → no ×1,200"."""
    engine = create(sqlite_url, ODOO_DDL)
    now = now_sql(engine)
    execute(engine, f"INSERT INTO production_order VALUES (:i, :n, 'done', :a, {now})",
            *({"i": i, "n": f"WH/MO/{i:05d}", "a": True} for i in range(1, 1201)),
            {"i": 9000, "n": "WH/MO/09000", "a": True})
    run = IdiomRun(config(tmp_path / "fs.db", ODOO.format(url=sqlite_url) +
                          "    mass_update: 1000\n"))
    with run:
        run.start()
        execute(engine, f"UPDATE production_order SET active = FALSE, write_date = {now} "
                "WHERE id < 9000")
        posts = run.behind(lambda: execute(
            engine, f"UPDATE production_order SET active = FALSE, write_date = {now_sql(engine)}"
            " WHERE id = 9000"), "WH/MO/09000 archived")
        assert [p.summary for p in posts] == [
            "production_order: 1,200 rows changed at once (record active → archived ×1,200)"]
