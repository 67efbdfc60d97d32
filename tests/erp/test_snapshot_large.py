"""Snapshot checkpoints beyond 64 KiB: schema v3 (LONGTEXT on MySQL/MariaDB) and its upgrade.

A snapshot-mode table keeps its row hashes in the source's checkpoint; 5,000 rows with their
subjects are about 200 KB, which MariaDB's TEXT (64 KiB) refused. The store and the ERP tables
are both on MariaDB here, the case that broke.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, Text, create_engine, select, text

from floorstream.store import schema
from floorstream.store.store import CommitBatch, Store
from support import DaemonRunner, sentinel, wait_for
from support.erp import SENTINEL, create_erp, insert_order, now_sql

POLLED = " (intermediate states may be missing: polled every 300 ms)"

ROWS = 5000

CONFIG = """
store: {url}
default_team: planning
sources:
  - name: orders
    adapter: erp.table
    url: {url}
    interval: 300ms
    table: production_order
    mode: snapshot
    batch: 2500
    subject: "{{{{ row.name }}}}"
    track: [state]
    labels: {{state: status}}
"""


def _v2_metadata() -> MetaData:
    """The store as schema v2 made it: fs_checkpoints.position a plain TEXT."""
    v2 = MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name != "fs_checkpoints":
            table.to_metadata(v2)
    Table("fs_checkpoints", v2,
          Column("source", String(128), primary_key=True),
          Column("position", Text, nullable=False),
          Column("updated_at", schema.UTCDateTime, nullable=False), **schema.MYSQL)
    return v2


def test_v2_store_is_upgraded_to_long_checkpoints(store_url: str) -> None:
    engine = create_engine(store_url)
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    with engine.begin() as conn:
        v2 = _v2_metadata()
        v2.create_all(conn)
        conn.execute(v2.tables["fs_schema_version"].insert().values(version=2, upgraded_at=now))
        conn.execute(v2.tables["fs_checkpoints"].insert().values(
            source="orders", position='{"v":1}', updated_at=now))
    engine.dispose()
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(select(schema.schema_version.c.version)).scalar_one() == (
                schema.SCHEMA_VERSION)
        assert store.checkpoints() == {"orders": '{"v":1}'}
        big = '{"v":1,"h":"' + "0123456789abcdef" * 20_000 + '"}'  # 320 KB
        store.commit(CommitBatch(checkpoints={"orders": big}))
        assert store.checkpoints()["orders"] == big
    finally:
        store.close()


@pytest.mark.mysql
def test_snapshot_of_5000_rows_on_mariadb(mysql_url: str, tmp_path: Path) -> None:
    erp = create_erp(mysql_url, orders=0)
    with erp.begin() as conn:
        conn.execute(text(
            "INSERT INTO production_order (id, name, product_id, product_qty, state, "
            f"create_date, write_date) VALUES (:i, :n, 1, 1, 'confirmed', {now_sql(erp)}, "
            f"{now_sql(erp)})"), [{"i": i, "n": f"WH/MO/{i:05d}"} for i in range(1, ROWS + 1)])
    with DaemonRunner(CONFIG.format(url=mysql_url)) as daemon:

        def posts() -> list[str]:
            return sorted(daemon.summaries("planning", "admin"))

        daemon.start()
        daemon.wait_checkpoint("orders")  # the baseline of 5,000 rows is committed
        with erp.begin() as conn:
            conn.execute(text("UPDATE production_order SET state = 'done' WHERE id IN (7, 4999)"))
            conn.execute(text("DELETE FROM production_order WHERE id = 2500"))
        expected = [f"WH/MO/00007: status confirmed → done{POLLED}", "WH/MO/02500 deleted",
                    f"WH/MO/04999: status confirmed → done{POLLED}"]
        assert wait_for(lambda: (found if len(found := posts()) >= 3 else None)) == expected
        daemon.stop()
        checkpoint = daemon.checkpoint("orders")
        assert checkpoint is not None and len(checkpoint) > 65_535  # what TEXT could not hold
        with erp.begin() as conn:  # while stopped
            conn.execute(text("UPDATE production_order SET state = 'progress' WHERE id = 1"))
        daemon.start()
        expected = sorted([*expected, f"WH/MO/00001: status confirmed → progress{POLLED}"])
        assert wait_for(lambda: (found if len(found := posts()) >= 4 else None)) == expected
        # later polls of all 5,000 rows find nothing new: a sentinel order inserted behind
        # is posted, and nothing else came
        sentinel(lambda: insert_order(erp, SENTINEL),
                 lambda: f"WH/MO/{SENTINEL:05d} created" in posts())
        assert posts() == sorted([*expected, f"WH/MO/{SENTINEL:05d} created"])
    erp.dispose()
