"""An ERP database that is not there (the shared PostgreSQL answers, the database does not
exist): the ``erp.table`` source reports it through ``context.health`` on its first failed
attempt, with or without the single-poller lock, and ``/readyz`` says so. A missing table is a
schema problem of a reachable database: a ``source.problem`` post, the source stays connected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from health_http import ISO, get_json
from support import DaemonRunner, wait_for
from support.erp import create_erp

pytestmark = pytest.mark.postgres

CONFIG = """
store: sqlite:///{store}
health: {{port: 0}}
alerts: {{enabled: false}}
sources:
  - name: orders
    adapter: erp.table
    url: {url}
    interval: 200ms
    single_poller: {single}
    tables:
      - table: {table}
        cursor: write_date
"""


@pytest.mark.parametrize("single", [True, False], ids=["lock", "no-lock"])
def test_a_missing_database_makes_the_source_not_ready(pg_url: str, tmp_path: Path,
                                                       single: bool) -> None:
    missing = pg_url.rsplit("/", 1)[0] + "/fs_no_such_database"
    config = CONFIG.format(store=tmp_path / "fs.db", url=missing, single=str(single).lower(),
                           table="production_order")
    with DaemonRunner(config) as run:
        run.start()
        daemon = run.daemon
        assert daemon is not None
        url = f"http://127.0.0.1:{daemon.health_server.port}/readyz"

        def reported() -> dict[str, object] | None:
            status, body = get_json(url)
            source = body["sources"]["orders"]
            return body if status == 503 and source["last_error"] else None

        body = wait_for(reported, 20, "the missing database in /readyz")
        source = body["sources"]["orders"]
        assert source["connected"] is False and source["state"] == "running"
        assert source["last_error"].startswith("database unreachable: ")
        assert 'database "fs_no_such_database" does not exist' in source["last_error"]
        assert ISO.match(source["last_error_at"])
        assert daemon.status["orders"].health.failures <= 2  # told on the first attempts


def test_a_missing_table_is_a_problem_post_not_a_lost_connection(pg_url: str,
                                                                 tmp_path: Path) -> None:
    create_erp(pg_url, orders=1).dispose()
    config = CONFIG.format(store=tmp_path / "fs.db", url=pg_url, single="true",
                           table="no_such_table")
    with DaemonRunner(config) as run:
        run.start()
        problem = wait_for(lambda: [p for p in run.posts() if p.type == "source.problem"],
                           20, "the source.problem post")[0]
        assert "no_such_table" in problem.summary
        daemon = run.daemon
        assert daemon is not None
        status, body = get_json(f"http://127.0.0.1:{daemon.health_server.port}/readyz")
        assert status == 200 and body["sources"]["orders"]["connected"] is True
