"""Retention of ``fs_erp_changes`` on SQLite, PostgreSQL and MariaDB: only rows the source has
consumed (at or before its committed checkpoint) and older than ``retention.erp_changes`` go;
rows not read yet and rows of other tables stay; ``prune --dry-run`` counts, ``prune``
deletes, the daemon's thread does it by itself; ``erp uninstall-triggers`` removes every
trigger (and the PostgreSQL functions), keeps the log unless ``--drop-log``."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, column, func, inspect, select, table, text

from floorstream.adapters.erp.adapter import ErpTableAdapter
from floorstream.adapters.erp.prune import consumed
from floorstream.adapters.erp.triggers import install_triggers, installed_triggers
from floorstream.model import utcnow
from floorstream.plugin import PruneContext
from support.daemon import FLOORSTREAM
from support.erp import ErpRun, create_erp, update
from support.waiting import wait_for

AUDIT = """        mode: audit
        overlap: 2s
"""
HEADER = """retention:
  erp_changes: 7d
  interval: {interval}
  batch: 2
  pause: 0s
"""


def _log_rows(erp: Engine, name: str | None = None) -> int:
    log = table("fs_erp_changes", column("table_name"))
    query = select(func.count()).select_from(log)
    if name is not None:
        query = query.where(log.c.table_name == name)
    with erp.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _age(erp: Engine, days: int = 10) -> None:
    """Make every log row ``days`` older (as if the ERP had written it then)."""
    shift = {"postgresql": f"changed_at - INTERVAL '{days} days'",
             "sqlite": f"datetime(changed_at, '-{days} days')"}.get(
        erp.dialect.name, f"changed_at - INTERVAL {days} DAY")
    with erp.begin() as conn:
        conn.execute(text(f"UPDATE fs_erp_changes SET changed_at = {shift}"))


def _foreign_rows(erp: Engine, count: int) -> None:
    """Log rows of a table no source reads (another tool's, a table dropped from the config)."""
    with erp.begin() as conn:
        for n in range(count):
            conn.execute(text(
                "INSERT INTO fs_erp_changes (table_name, row_key, op, changed_at, tx) "
                "VALUES ('stock_move', :k, 'U', :t, 'x')"),
                {"k": str(n), "t": (utcnow() - timedelta(days=30)).replace(tzinfo=None)})


def _prune(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([FLOORSTREAM, "prune", "-c", str(config), "--kind", "erp_changes",
                           *extra], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_consumed_rows_go_the_rest_stays(store_url: str, tmp_path: Path) -> None:
    erp = create_erp(store_url, orders=2)
    run = ErpRun(tmp_path, store_url, AUDIT, header=HEADER.format(interval="1h"))
    source = run.config.sources[0]
    install_triggers(erp, source.tables)  # type: ignore[attr-defined]
    config = tmp_path / "fs.yaml"
    assert run.text is not None
    config.write_text(run.text)
    _foreign_rows(erp, 3)
    run.start()
    try:
        for state in ("progress", "to_close", "done"):
            update(erp, 1, state=state)
        update(erp, 2, state="progress")
        run.wait_summaries(lambda s: len(s) >= 4)
        run.sentinel(erp)  # a fifth consumed row: the sentinel order's insert
    finally:
        run.stop()
    # two changes while stopped: in the log, not consumed
    update(erp, 1, state="cancel")
    update(erp, 2, state="done")
    _age(erp)
    assert _log_rows(erp, "production_order") == 7
    checkpoint = run.checkpoint("orders")
    found = consumed(source, checkpoint)  # type: ignore[arg-type]
    assert list(found) == ["fs_erp_changes"]

    dry = _prune(config, "--dry-run")
    assert "fs_erp_changes rows: would delete 5" in dry.stdout
    assert _log_rows(erp) == 10
    done = _prune(config)
    assert "fs_erp_changes rows: deleted 5" in done.stdout
    assert _log_rows(erp, "production_order") == 2  # the two not read yet
    assert _log_rows(erp, "stock_move") == 3  # not this source's
    again = _prune(config)
    assert "fs_erp_changes rows: deleted 0" in again.stdout

    # the two rows left are still read after the restart: nothing was lost
    run.start()
    try:
        found_posts = run.wait_summaries(lambda s: len(s) >= 6)
        assert found_posts[-2:] == ["WH/MO/00001: status Done → cancel",
                                    "WH/MO/00002: status In progress → Done"]
    finally:
        run.stop()
    # consumed now, but written just now by the ERP's clock? no: aged above; yet a fresh
    # row (not aged) that is consumed stays until it is old enough
    run.start()
    try:
        update(erp, 1, state="draft")
        run.wait_summaries(lambda s: len(s) >= 7)
    finally:
        run.stop()
    context = PruneContext(source="orders", checkpoint=run.checkpoint("orders"),
                           older_than=utcnow() - timedelta(days=7), batch=2)
    assert ErpTableAdapter.prune(source, context) == 2  # the two aged ones
    assert _log_rows(erp, "production_order") == 1  # the fresh one
    erp.dispose()


def test_the_daemon_prunes_the_log_by_itself(sqlite_url: str, tmp_path: Path) -> None:
    erp = create_erp(sqlite_url, orders=2)
    run = ErpRun(tmp_path, sqlite_url, AUDIT, header=HEADER.format(interval="1s"))
    install_triggers(erp, run.config.sources[0].tables)  # type: ignore[attr-defined]
    for state in ("progress", "done"):
        update(erp, 1, state=state)
    _age(erp)  # written 10 days ago, while no daemon ran
    run.start()
    try:
        # initial: baseline starts at the log's end: those two are consumed at once; the
        # newest row of the log always stays (SQLite would number the next one 1 again)
        wait_for(lambda: _log_rows(erp) == 1, 30, "the daemon to prune the consumed rows")
        update(erp, 2, state="done")  # fresh: posted, and kept (younger than 7 days)
        assert run.wait_summaries(lambda s: len(s) >= 1) == [
            "WH/MO/00002: status Confirmed → Done"]
        update(erp, 1, state="cancel")
        found = run.wait_summaries(lambda s: len(s) >= 2)
        assert found[1] == "WH/MO/00001: status Done → cancel"
        daemon = run.daemon
        assert daemon is not None
        runs = daemon.retention.runs
        wait_for(lambda: daemon.retention.runs >= runs + 2, 30, "two more retention passes")
        assert _log_rows(erp) == 2  # the two fresh ones; the old newest went once not newest
    finally:
        run.stop()
    erp.dispose()


def _uninstall(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([FLOORSTREAM, "erp", "uninstall-triggers", "-c", str(config),
                           *extra], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_uninstall_triggers(store_url: str, tmp_path: Path) -> None:
    erp = create_erp(store_url, orders=2)
    run = ErpRun(tmp_path, store_url, AUDIT)
    install_triggers(erp, run.config.sources[0].tables)  # type: ignore[attr-defined]
    config = tmp_path / "fs.yaml"
    assert run.text is not None
    config.write_text(run.text)
    update(erp, 1, state="progress")
    assert _log_rows(erp) == 1
    installed = installed_triggers(erp)
    expected = 1 if erp.dialect.name == "postgresql" else 3  # one row trigger, or I/U/D
    assert len(installed) == expected and {t for _, t in installed} == {"production_order"}

    printed = _uninstall(config, "--print")
    assert "DROP TRIGGER IF EXISTS" in printed.stdout
    assert len(installed_triggers(erp)) == expected  # --print ran nothing

    done = _uninstall(config)
    assert f"{expected} triggers removed" in done.stdout
    assert "fs_erp_changes kept (1 rows); --drop-log removes it" in done.stdout
    assert installed_triggers(erp) == []
    if erp.dialect.name == "postgresql":
        with erp.connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname IN "
                                     "('fs_erp_capture', 'fs_erp_notify')")).scalar_one()
        assert left == 0
    update(erp, 1, state="done")  # no trigger: nothing logged
    assert _log_rows(erp) == 1
    # the ERP table itself still works and is untouched
    with erp.connect() as conn:
        assert conn.execute(text("SELECT state FROM production_order WHERE id = 1")
                            ).scalar_one() == "done"

    again = _uninstall(config, "--drop-log")  # again: harmless, and the log goes
    assert "0 triggers removed" in again.stdout
    assert "fs_erp_changes dropped (1 rows)" in again.stdout
    assert not inspect(erp).has_table("fs_erp_changes")
    erp.dispose()


@pytest.mark.postgres
def test_uninstall_finds_triggers_of_tables_gone_from_the_config(pg_url: str,
                                                                 tmp_path: Path) -> None:
    """A cursor-mode table's notify trigger and a table since removed from the config."""
    erp = create_erp(pg_url, orders=1)
    cursor = "        mode: cursor\n        cursor: write_date\n"
    run = ErpRun(tmp_path, pg_url, cursor)
    tables = run.config.sources[0].tables  # type: ignore[attr-defined]
    product = tables[0].model_copy(update={"table": "product", "mode": "audit",
                                           "cursor": None, "track": []})
    install_triggers(erp, [*tables, product])
    assert {t for _, t in installed_triggers(erp)} == {"production_order", "product"}
    config = tmp_path / "fs.yaml"
    assert run.text is not None
    config.write_text(run.text)  # names production_order only
    done = _uninstall(config)
    assert "2 triggers removed" in done.stdout
    assert installed_triggers(erp) == []
    erp.dispose()
