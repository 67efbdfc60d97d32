"""Helpers for the supply-chain tests: an ERP database from the shared DDL, a daemon run."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.model import Post
from floorstream.plugins import build_plugins
from floorstream.store.store import Store

HERE = Path(__file__).parent
SAMPLES = HERE.parent / "samples"
DDL = HERE / "erp-subset-ddl.sql"  # a copy of shared/research/erp-subset-ddl.sql


def create_erp(url: str) -> None:
    """The ERP subset schema (the research DDL, unchanged) with two purchase orders:

    4500012 from ACME (lines 10: 200 EA promised 2026-11-29, 20: 50 EA, 30 deleted) and
    99999817 from the 856 sample's supplier (lines 10/20 carrying its vendor parts).
    """
    ddl = DDL.read_text()
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            raw.driver_connection.executescript(ddl)  # type: ignore[union-attr]
        finally:
            raw.close()
    else:
        body = ddl.split("CREATE TRIGGER")[0]
        body = re.sub(r"--[^\n]*", "", body)
        with engine.begin() as conn:
            for statement in body.split(";"):
                if statement.strip():
                    conn.execute(text(statement))
    now = datetime(2026, 11, 1)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO purchase_order (id, name, vendor_code, state, date_order, date_planned,"
            " create_date, write_date) VALUES (1, '4500012', 'V100', 'purchase', :now, :p1,"
            " :now, :now), (2, '99999817', 'V200', 'purchase', :now, :p2, :now, :now)"),
            {"now": now, "p1": datetime(2026, 11, 29), "p2": datetime(2011, 12, 5)})
        conn.execute(text(
            "INSERT INTO purchase_order_line (id, order_id, line_no, product_code,"
            " vendor_product_code, name, product_qty, uom, price_unit, date_planned,"
            " deletion_flag, create_date, write_date) VALUES"
            " (1, 1, 10, 'P-10', 'A-10', 'bracket', 200, 'EA', 1.5, :p1, '', :now, :now),"
            " (2, 1, 20, 'P-20', 'A-20', 'bolt', 50, 'EA', 0.1, :p1, '', :now, :now),"
            " (3, 1, 30, 'P-30', 'A-30', 'nut', 10, 'EA', 0.1, :p1, 'L', :now, :now),"
            " (4, 2, 10, 'W-1', '87787D', 'blue widget', 24, 'EA', 2, :p2, '', :now, :now),"
            " (5, 2, 20, 'W-2', '99887D', 'red widget', 10, 'EA', 2, :p2, '', :now, :now)"),
            {"now": now, "p1": datetime(2026, 11, 29), "p2": datetime(2011, 12, 5)})
    engine.dispose()


@contextmanager
def running(config_text: str) -> Iterator[Daemon]:
    plugins = build_plugins()
    config = parse_config(config_text, plugins)
    daemon = Daemon(config, plugins)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop(timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def all_posts(store_url: str, source: str | None = None) -> list[Post]:
    store = Store.open(store_url)
    try:
        posts = store.feed("everyone", limit=100_000)
    finally:
        store.close()
    posts.reverse()
    return [p for p in posts if source is None or p.source == source]


def inbox_empty(inbox: Path) -> Callable[[], bool]:
    return lambda: not any(p.is_file() for p in inbox.iterdir())
