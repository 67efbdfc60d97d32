"""Database down mid-stream: reconnect with backoff, every change posted exactly once.

The ERP database is a private PostgreSQL server (see ``private_pg``), crashed with
``pg_ctl stop -m immediate`` while a writer keeps inserting work orders, then started again.
The truth is what the table holds afterwards: a write whose COMMIT was cut off by the crash may
or may not have landed, and the posts must match the table either way.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from support import wait_for
from support.erp import ErpRun, create_erp, now_sql, update

from .idioms_support import POLLED
from .private_pg import PrivatePostgres, private_pg

__all__ = ["private_pg"]

pytestmark = pytest.mark.postgres

CURSOR = """        mode: cursor
        cursor: write_date
        overlap: 5s
        batch: 50
"""


class Writer(threading.Thread):
    """Inserts a work order every 20 ms; failed attempts (server down) are simply retried."""

    def __init__(self, url: str, first_id: int) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(url, pool_pre_ping=True)
        self.next_id = first_id
        self.stop = threading.Event()
        self.failures = 0

    def run(self) -> None:
        now = now_sql(self.engine)
        while not self.stop.is_set():
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(
                        "INSERT INTO production_order (id, name, product_id, product_qty, "
                        f"state, create_date, write_date) VALUES (:i, :n, 2, 1, 'draft', {now}, "
                        f"{now})"), {"i": self.next_id, "n": f"WH/MO/{self.next_id:05d}"})
                self.next_id += 1
            except DBAPIError:
                self.failures += 1
                self.engine.dispose()
            self.stop.wait(0.02)
        self.engine.dispose()


def test_database_crash_mid_stream_loses_and_repeats_nothing(private_pg: PrivatePostgres,
                                                            tmp_path: Path) -> None:
    erp = create_erp(private_pg.url, orders=3)
    run = ErpRun(tmp_path, private_pg.url, CURSOR)
    run.start()
    writer = Writer(private_pg.url, first_id=100)
    try:
        writer.start()
        wait_for(lambda: writer.next_id >= 140, what="the writer under way")
        update(erp, 1, state="progress")  # right before the crash: likely not polled yet
        private_pg.stop("immediate")
        erp.dispose()
        # down for a while: the adapter's polls fail and back off; the writer's inserts fail
        failed = writer.failures
        wait_for(lambda: writer.failures >= failed + 20, what="inserts failing")
        time.sleep(1.0)  # an outage of a while (pacing the scenario, not waiting on a result)
        private_pg.start()
        resumed = writer.next_id
        wait_for(lambda: writer.next_id >= resumed + 20, what="the writer inserting again")
        update(erp, 2, state="done")  # after the restart
        wait_for(lambda: writer.next_id >= resumed + 40, what="more inserts after the restart")
        writer.stop.set()
        writer.join(5)
        with erp.connect() as conn:
            ids = conn.execute(text("SELECT id FROM production_order WHERE id >= 100 "
                                    "ORDER BY id")).scalars().all()
        expected = [f"WH/MO/{i:05d} created" for i in ids] + [
            f"WH/MO/00001: status Confirmed → In progress{POLLED}",
            f"WH/MO/00002: status Confirmed → Done{POLLED}"]
        assert writer.failures > 0, "the writer should have seen the database down"
        assert len(ids) > 60
        found = run.wait_summaries(lambda s: len(s) >= len(expected), timeout=30)
        duplicates = [s for s, n in Counter(found).items() if n > 1]
        assert duplicates == []
        assert sorted(found) == sorted(expected)
        assert run.sentinel(erp) == found
    finally:
        writer.stop.set()
        run.stop()
        erp.dispose()
