"""Cursor mode on real SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from support.erp import ErpRun, create_erp, now_sql, update

from .idioms_support import POLLED

CURSOR = """        mode: cursor
        cursor: write_date
        overlap: 10s
        batch: 7
"""


def test_transitions_equal_timestamps_late_commit_and_restart(store_url: str,
                                                              tmp_path: Path) -> None:
    erp = create_erp(store_url, orders=3)
    run = ErpRun(tmp_path, store_url, CURSOR)
    run.start()
    try:
        # baseline: the three existing orders are recorded silently
        assert run.sentinel(erp) == []
        # three transitions inside one second between two polls: one correct before → after
        update(erp, 1, state="progress")
        found = run.wait_summaries(lambda s: len(s) >= 1)
        assert found == [f"WH/MO/00001: status Confirmed → In progress{POLLED}"]
        # 40 rows inserted with one equal timestamp, paged 7 at a time: none lost
        with erp.begin() as conn:
            stamp = conn.execute(text(f"SELECT {now_sql(erp)}")).scalar()
            for i in range(10, 50):
                conn.execute(text(
                    "INSERT INTO production_order (id, name, product_id, product_qty, state, "
                    "create_date, write_date) VALUES (:i, :n, 2, 1, 'draft', :t, :t)"),
                    {"i": i, "n": f"WH/MO/{i:05d}", "t": stamp})
        found = run.wait_summaries(lambda s: len(s) >= 41)
        assert sorted(found[1:]) == sorted(f"WH/MO/{i:05d} created" for i in range(10, 50))
    finally:
        run.stop()
    # while stopped: a change, then restart → exactly one post for it, nothing repeated
    update(erp, 2, state="done", product_id=2)
    run.start()
    try:
        found = run.wait_summaries(lambda s: len(s) >= 43)
        assert sorted(found[41:]) == [f"WH/MO/00002: product id M8 bolt → Hinge{POLLED}",
                                      f"WH/MO/00002: status Confirmed → Done{POLLED}"]
        assert run.sentinel(erp) == found
    finally:
        run.stop()


def test_late_commit_with_older_timestamp_is_found(store_url: str, tmp_path: Path) -> None:
    erp = create_erp(store_url, orders=2)
    run = ErpRun(tmp_path, store_url, CURSOR)
    run.start()
    try:
        update(erp, 2, state="progress")
        run.wait_summaries(lambda s: len(s) >= 1)
        # a transaction that started earlier commits now, with a write_date 3 s in the past
        with erp.begin() as conn:
            conn.execute(text(f"UPDATE production_order SET state = 'cancel', write_date = "
                              f"{_seconds_ago(erp.dialect.name, 3)} WHERE id = 1"))
        found = run.wait_summaries(lambda s: len(s) >= 2)
        assert found == [f"WH/MO/00002: status Confirmed → In progress{POLLED}",
                         # an unknown value is shown raw
                         f"WH/MO/00001: status Confirmed → cancel{POLLED}"]
        assert run.sentinel(erp) == found
    finally:
        run.stop()


def _seconds_ago(dialect: str, seconds: int) -> str:
    return {"sqlite": f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-{seconds} seconds')",
            "postgresql": f"LOCALTIMESTAMP - interval '{seconds} seconds'",
            "mysql": f"NOW(6) - INTERVAL {seconds} SECOND",
            "mariadb": f"NOW(6) - INTERVAL {seconds} SECOND"}[dialect]


def test_mass_update_is_one_summary_and_keeps_the_baseline(sqlite_url: str,
                                                           tmp_path: Path) -> None:
    erp = create_erp(sqlite_url, orders=1)
    with erp.begin() as conn:
        for i in range(2, 1301):
            conn.execute(text(
                "INSERT INTO production_order (id, name, product_id, product_qty, state, "
                f"create_date, write_date) VALUES (:i, :n, 1, 1, :s, {now_sql(erp)}, "
                f"{now_sql(erp)})"),
                {"i": i, "n": f"WH/MO/{i:05d}", "s": "confirmed" if i <= 1001 else "draft"})
    run = ErpRun(tmp_path, sqlite_url, CURSOR.replace("batch: 7", "batch: 500") +
                 "        mass_update: 1000\n")
    run.start()
    try:
        with erp.begin() as conn:  # one statement, 1,300 rows
            conn.execute(text(f"UPDATE production_order SET state = 'done', "
                              f"write_date = {now_sql(erp)}"))
        found = run.wait_summaries(lambda s: len(s) >= 1)
        # the old values come from the detector state (the baseline): only what changed is
        # listed, with before → after; the product, untouched, is not
        assert found == ["production_order: 1,300 rows changed at once (status Confirmed → "
                         "Done ×1,001; status Draft → Done ×299)"]
        fields = run.posts()[0].fields
        assert fields["count"] == 1300
        assert [(c["field"], c["before"], c["after"], c["count"]) for c in fields["changes"]] \
            == [("state", "Confirmed", "Done", 1001), ("state", "Draft", "Done", 299)]
        update(erp, 7, state="progress")  # the mass update's values are the new baseline
        found = run.wait_summaries(lambda s: len(s) >= 2)
        assert found[1] == f"WH/MO/00007: status Done → In progress{POLLED}"
        assert run.sentinel(erp) == found
    finally:
        run.stop()
