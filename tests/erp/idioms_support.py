"""Helpers of the ERP-idiom tests (``test_frappe_*``, ``test_odoo_*``, ``test_sap_*``).

Each test builds the tables its ERP really has (shapes after ``research/erp-subset-ddl.sql``
and the ERPs' own schemas), adapted per dialect where it must be: MariaDB needs VARCHAR for
indexed text and DATETIME(6) for sub-second times, and quotes names with backticks (tables
such as ``tabWork Order`` have spaces). SQL in here is written with double-quoted names and
``{vtext}`` / ``{ts}`` / ``{num}`` placeholders; :func:`sql` makes it fit the dialect.

:class:`IdiomRun` is a daemon on a SQLite store watching one source of the test's config;
:meth:`IdiomRun.behind` proves absence the sentinel way: it puts a marker change through the
same table or log behind the changes under test, waits for the marker's post, and only then
returns the posts (marker left out).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from floorstream.model import Post
from support.daemon import DaemonRunner
from support.waiting import sentinel, wait_for

__all__ = ["POLLED", "SAP_AUDIT_ORDERS", "SAP_CHANGE_LOG", "IdiomRun", "config", "create",
           "execute", "post_lines", "sql"]

#: SAP's change documents as the audit mode reads them (CDHDR/CDPOS under readable names;
#: ``{vtext}`` placeholders, see :func:`sql`): append to a test's own AUFK
SAP_CHANGE_LOG = """
CREATE TABLE change_header (
    mandant {vtext} NOT NULL, objectclas {vtext} NOT NULL, objectid {vtext} NOT NULL,
    changenr {vtext} NOT NULL, username {vtext} NOT NULL, udate {vtext} NOT NULL,
    utime {vtext} NOT NULL, tcode {vtext}, change_ind {vtext} NOT NULL,
    PRIMARY KEY (mandant, objectclas, objectid, changenr));
CREATE TABLE change_item (
    mandant {vtext} NOT NULL, objectclas {vtext} NOT NULL, objectid {vtext} NOT NULL,
    changenr {vtext} NOT NULL, tabname {vtext} NOT NULL, tabkey {vtext} NOT NULL,
    fname {vtext} NOT NULL, chngind {vtext} NOT NULL, value_old TEXT, value_new TEXT,
    PRIMARY KEY (mandant, objectclas, objectid, changenr, fname))
"""

#: an audit-mode source on AUFK (client 100) through SAP_CHANGE_LOG; ``{url}`` to fill
SAP_AUDIT_ORDERS = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: sap ecc
    client: '100'
    table: aufk
    key: aufnr
    mode: audit
    audit: {{style: sap, object: ORDER}}
    alpha: [aufnr]
    track: [ktext]
    labels: {{ktext: description}}
    subject: "{{{{ row.aufnr | alpha }}}}"
"""

#: the note of a change a polled table (cursor, snapshot mode; interval 100 ms) read by
#: comparing states: edits between two polls are not seen one by one
POLLED = " (intermediate states may be missing: polled every 100 ms)"


def sql(engine: Engine, statement: str) -> str:
    """``statement`` for this dialect: placeholders filled, names quoted its way."""
    mysql = engine.dialect.name in ("mysql", "mariadb")
    filled = statement.replace("{vtext}", "VARCHAR(100)" if mysql else "TEXT") \
        .replace("{ts}", "DATETIME(6)" if mysql else "TIMESTAMP") \
        .replace("{num}", "DECIMAL(16,4)" if mysql else "NUMERIC(16,4)")
    return re.sub(r'"([^"]*)"', r"`\1`", filled) if mysql else filled


def create(url: str, ddl: str) -> Engine:
    """An engine on ``url`` with ``ddl`` (statements separated by ``;``) run."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in ddl.split(";"):
            if statement.strip():
                conn.execute(text(sql(engine, statement)))
    return engine


def execute(engine: Engine, statement: str, *params: dict[str, Any]) -> None:
    """One transaction running ``statement`` once per parameter set (at least once)."""
    with engine.begin() as conn:
        for values in params or ({},):
            conn.execute(text(sql(engine, statement)), values)


def post_lines(posts: Iterable[Post]) -> list[tuple[str, str, str, str]]:
    """(summary, type, thread, relation) of each post: what the idiom tests assert."""
    return [(p.summary, p.type, p.thread, p.relation) for p in posts]


class IdiomRun(DaemonRunner):
    """A daemon of ``config`` (one ERP source named ``erp``), started and stopped between
    the steps of a test; :meth:`start` returns once every table was polled twice (the
    baseline is taken: what the test does next is news). Posts whose subject holds one of
    ``markers`` are the sentinels' (left out of :meth:`news`)."""

    def __init__(self, config: str, tables: int = 1,
                 markers: tuple[str, ...] = ("SENTINEL", "9000")) -> None:
        super().__init__(config)
        self.tables = tables
        self.markers = markers

    def start(self, *, ready: bool = True) -> IdiomRun:
        super().start()
        if not ready:
            return self
        adapter = self.adapter("erp")
        floor = adapter.polls + 2 * self.tables
        wait_for(lambda: adapter.polls >= floor, what="two polls of every table")
        return self

    def news(self) -> list[Post]:
        """Posts so far, oldest first, markers left out."""
        return [p for p in self.posts() if not any(m in p.subject for m in self.markers)]

    def wait_news(self, count: int, timeout: float = 30.0) -> list[Post]:
        return wait_for(lambda: (found if len(found := self.news()) >= count else []),
                        timeout, f"{count} posts")

    def behind(self, send: Callable[[], object], line: str, timeout: float = 30.0
               ) -> list[Post]:
        """Send a marker change behind what was tested, wait for its post (``line``), and
        return the posts then, markers left out: nothing the changes under test would
        have posted can still be on its way."""
        sentinel(send, lambda: any(p.summary == line for p in self.posts()), timeout,
                 f"the marker post {line!r}")
        return self.news()


def config(store: Path, body: str) -> str:
    """A daemon config with a SQLite store at ``store`` and ``body`` (sources, routes)."""
    return f"store: sqlite:///{store}\ndefault_team: planning\n{body}"
