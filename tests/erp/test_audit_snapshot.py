"""Audit mode (installed triggers, Odoo, SAP logs) and snapshot mode on real databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from floorstream.cli import main
from support import sentinel
from support.erp import ErpRun, create_erp, now_sql, update

from .idioms_support import POLLED

AUDIT = """        mode: audit
        overlap: 30s
"""
SNAPSHOT = """        mode: snapshot
"""


def test_installed_triggers_give_every_transition_in_order(store_url: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    erp = create_erp(store_url, orders=2)
    run = ErpRun(tmp_path, store_url, AUDIT)
    config_file = tmp_path / "fs.yaml"
    config_file.write_text(_yaml(run))
    assert main(["erp", "install-triggers", "-c", str(config_file)]) == 0
    assert "trigger statements run" in capsys.readouterr().out
    run.start()
    try:
        for state in ("progress", "to_close", "done"):  # three transitions inside a second
            update(erp, 1, state=state)
        found = run.wait_summaries(lambda s: len(s) >= 3)
        assert found == ["WH/MO/00001: status Confirmed → In progress",
                         "WH/MO/00001: status In progress → to_close",
                         "WH/MO/00001: status to_close → Done"]
        with erp.begin() as conn:
            conn.execute(text("DELETE FROM production_order WHERE id = 2"))
        found = run.wait_summaries(lambda s: len(s) >= 4)
        assert found[3] == "WH/MO/00002 deleted"
    finally:
        run.stop()
    update(erp, 1, state="cancel")  # while stopped: posted once after the restart
    run.start()
    try:
        found = run.wait_summaries(lambda s: len(s) >= 5)
        assert found[4:] == ["WH/MO/00001: status Done → cancel"]
        assert run.sentinel(erp) == found  # posted once: nothing more behind the sentinel
    finally:
        run.stop()


def _yaml(run: ErpRun) -> str:
    """The run's config as a file, for the CLI."""
    source = run.config.sources[0]
    return (f"store: {run.store_url}\nsources:\n  - name: orders\n    adapter: erp.table\n"
            f"    url: {source.url}\n    table: production_order\n    mode: audit\n"
            "    track: [state]\n")


@pytest.mark.postgres
def test_late_committing_transaction_is_not_lost(pg_url: str, tmp_path: Path) -> None:
    erp = create_erp(pg_url, orders=2)
    run = ErpRun(tmp_path, pg_url, AUDIT)
    from floorstream.adapters.erp.triggers import install_triggers

    install_triggers(erp, run.config.sources[0].tables)  # type: ignore[attr-defined]
    run.start()
    try:
        slow = erp.connect()
        tx = slow.begin()  # takes log id N first …
        slow.execute(text("UPDATE production_order SET state = 'progress', write_date = "
                          "LOCALTIMESTAMP WHERE id = 1"))
        update(erp, 2, state="done")  # … this one takes N+1 and commits first
        assert run.wait_summaries(lambda s: len(s) >= 1) == [
            "WH/MO/00002: status Confirmed → Done"]
        tx.commit()
        slow.close()
        found = run.wait_summaries(lambda s: len(s) >= 2)
        assert found == ["WH/MO/00002: status Confirmed → Done",
                         "WH/MO/00001: status Confirmed → In progress"]
    finally:
        run.stop()


def test_odoo_tracking_values(store_url: str, tmp_path: Path) -> None:
    erp = create_erp(store_url, orders=1)
    run = ErpRun(tmp_path, store_url, AUDIT + "        audit: {style: odoo, object: "
                                              "mrp.production}\n")
    run.start()
    try:
        with erp.begin() as conn:
            for mid, (old, new) in enumerate([("Confirmed", "In Progress"),
                                              ("In Progress", "Done")], start=1):
                conn.execute(text("INSERT INTO mail_message VALUES (:m, 'mrp.production', 1, "
                                  f"'notification', 7, {now_sql(erp)})"), {"m": mid * 2})
                conn.execute(text("INSERT INTO mail_message VALUES (:m, 'res.partner', 9, "
                                  f"'comment', 7, {now_sql(erp)})"), {"m": mid * 2 + 1})
                conn.execute(text("INSERT INTO mail_tracking_value (id, mail_message_id, "
                                  "field_name, old_value_char, new_value_char) VALUES "
                                  "(:m, :m, 'state', :o, :n)"), {"m": mid * 2, "o": old, "n": new})
        found = run.wait_summaries(lambda s: len(s) >= 2)
        # the labels Odoo logged are read back as keys and shown with the config's values:
        assert found == ["WH/MO/00001: status Confirmed → In progress",
                         "WH/MO/00001: status In progress → Done"]
    finally:
        run.stop()


def test_sap_change_documents(sqlite_url: str, tmp_path: Path) -> None:
    erp = create_erp(sqlite_url, orders=1)
    extra = AUDIT.replace("        overlap: 30s\n", "") + (
        "        audit: {style: sap, object: PRODUCTION_ORDER}\n")
    # keyed by name: SAP OBJECTID is the document number
    run = ErpRun(tmp_path, sqlite_url, extra, key="name")
    run.start()
    try:
        with erp.begin() as conn:
            for nr, (old, new) in enumerate([("confirmed", "progress"), ("progress", "done")], 1):
                conn.execute(text("INSERT INTO change_header VALUES ('PRODUCTION_ORDER', "
                                  "'WH/MO/00001', :nr, 'AMILLER', '20261125', '101500', 'CO02', "
                                  "'U')"), {"nr": f"{nr:010d}"})
                conn.execute(text("INSERT INTO change_item (objectclas, objectid, changenr, "
                                  "tabname, tabkey, fname, chngind, value_old, value_new) VALUES "
                                  "('PRODUCTION_ORDER', 'WH/MO/00001', :nr, 'production_order', "
                                  "'0000000001', 'state', 'U', :o, :n)"),
                             {"nr": f"{nr:010d}", "o": old, "n": new})
        found = run.wait_summaries(lambda s: len(s) >= 2)
        assert found == ["WH/MO/00001: status Confirmed → In progress",
                         "WH/MO/00001: status In progress → Done"]
        assert run.posts()[0].tags == ("by:AMILLER", "table:production_order")
    finally:
        run.stop()


def test_snapshot_sees_insert_update_and_hard_delete(store_url: str, tmp_path: Path) -> None:
    erp = create_erp(store_url, orders=2)
    run = ErpRun(tmp_path, store_url, SNAPSHOT)
    run.start()
    try:
        update(erp, 1, state="progress")
        with erp.begin() as conn:
            conn.execute(text("DELETE FROM production_order WHERE id = 2"))
            conn.execute(text("INSERT INTO production_order (id, name, product_id, product_qty, "
                              f"state, create_date, write_date) VALUES (5, 'WH/MO/00005', 2, 1, "
                              f"'draft', {now_sql(erp)}, {now_sql(erp)})"))
        found = run.wait_summaries(lambda s: len(s) >= 3)
        assert sorted(found) == [f"WH/MO/00001: status Confirmed → In progress{POLLED}",
                                 "WH/MO/00002 deleted", "WH/MO/00005 created"]
    finally:
        run.stop()
    update(erp, 5, state="confirmed")
    run.start()
    try:
        found = run.wait_summaries(lambda s: len(s) >= 4)
        assert found[3:] == [f"WH/MO/00005: status Draft → Confirmed{POLLED}"]
        assert run.sentinel(erp) == found
    finally:
        run.stop()


def test_dropped_column_pauses_the_table_with_one_problem_post(sqlite_url: str,
                                                               tmp_path: Path) -> None:
    erp = create_erp(sqlite_url, orders=1)
    # a second table of the same source carries the sentinel: the paused one cannot
    run = ErpRun(tmp_path, sqlite_url, "        mode: cursor\n        cursor: write_date\n"
                                       "      - table: product\n        mode: snapshot\n")
    run.start()
    try:
        with erp.begin() as conn:
            conn.execute(text("ALTER TABLE production_order RENAME COLUMN state TO status"))
        found = run.wait_summaries(lambda s: len(s) >= 1)
        assert found == ["orders: table production_order has no column state any more "
                         "(renamed or dropped?); polling of production_order is paused until "
                         "the schema is fixed"]

        def add_product() -> None:
            with erp.begin() as conn:
                conn.execute(text("INSERT INTO product VALUES (3, 'Washer')"))

        # the source polls on (the other table's new row is posted) and said it once, with
        # no crash loop
        sentinel(add_product, lambda: "product:3 created" in run.summaries())
        assert run.summaries() == [*found, "product:3 created"]
        assert run.daemon is not None
        assert run.daemon.status["orders"].restarts == 0
    finally:
        run.stop()


def test_check_warns_about_a_cursor_without_index(sqlite_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    erp = create_erp(sqlite_url, orders=1)
    with erp.begin() as conn:
        conn.execute(text("DROP INDEX production_order_write_date"))
    run = ErpRun(tmp_path, sqlite_url, "        mode: cursor\n        cursor: write_date\n")
    config_file = tmp_path / "fs.yaml"
    config_file.write_text(_yaml(run).replace("mode: audit", "cursor: write_date"))
    assert main(["check", "-c", str(config_file)]) == 0
    err = capsys.readouterr().err
    assert "no index starts with the cursor column write_date" in err
