"""Text search through the store's text index (schema v8): SQLite FTS5, PostgreSQL GIN,
MariaDB FULLTEXT.

The same words are found on every store and by the live stream's Python test; the index is
kept as posts commit and are deleted, filled for posts already there by the upgrade, and the
query plan shows a search reads the index, not the posts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, inspect, text

from floorstream.model import Post, utcnow
from floorstream.store import schema
from floorstream.store.migrations import current_version
from floorstream.store.store import CommitBatch, Store
from floorstream.web import queries as queries_module
from floorstream.web import search
from floorstream.web.queries import FeedFilter, FeedQueries

TEXTS = [
    ("Press 7 stopped", None),
    ("press-07 in fault", "Hydraulic pressure below 120 bar"),
    ("Kühlung Linie 2 läuft wieder", None),
    ("mrp_production:42 quantity changed", "from 10 to 12"),
    ("PO 4500012 confirmed", "Supplier ACME: delivery 2026-12-04"),
    ("Container MSCU1234567 discharged at Hamburg", None),
    ("Temperature 81.5 °C above 80 °C", "<script>alert(1)</script>"),
]
QUERIES = ["pres", "PRESS", "press 07", "07 fault", "hydraulic", "kühl", "ühl", "production",
           "mrp 42", "4500012", "acme deliv", "mscu", "°C", "script", "nothing-like-it", "c 81"]


def _posts(n: int = 3) -> list[Post]:
    return [Post(id=f"s{i}-{k}", type="machine.state_changed", source="presses",
                 subject=f"press-0{k % 3}", summary=summary, body=body, severity=10,
                 teams=("maintenance",) if k % 2 else ("maintenance", "production"),
                 occurred_at=utcnow())
            for i in range(n) for k, (summary, body) in enumerate(TEXTS)]


def _expected(posts: list[Post], query: str, team: str | None = None) -> list[str]:
    wanted = FeedFilter(text=query)
    return [p.id for p in reversed(posts)
            if wanted.matches(p) and (team is None or team in p.teams)]


def _read_all(queries: FeedQueries, query: str, team: str | None) -> list[str]:
    """Every page of the search, following the cursor (pages of 4)."""
    found: list[str] = []
    before = None
    while True:
        page = queries.page(teams=[team] if team else None, readable=None,
                            filters=FeedFilter(text=query), before=before, limit=4)
        found += [p.id for p in page.posts]
        if page.next_before is None:
            return found
        before = page.next_before


def test_the_words_are_found_alike_on_every_store_and_live(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        posts = _posts()
        store.commit(CommitBatch(posts=posts))
        queries = FeedQueries(store)
        assert _expected(posts, "pres")  # (the Python test finds something to compare)
        for query in QUERIES:
            for team in (None, "production"):
                assert _read_all(queries, query, team) == _expected(posts, query, team), (
                    query, team)
        # the other filters narrow a search
        page = queries.page(teams=None, readable=None,
                            filters=FeedFilter(text="press", subject="press-01"))
        assert {p.summary for p in page.posts} == {"press-07 in fault"}
        # a deleted post leaves the index (retention, by the triggers on SQLite)
        with store.engine.begin() as conn:
            conn.execute(schema.post_teams.delete().where(
                schema.post_teams.c.post_id.like("s0-%")))
            conn.execute(schema.posts.delete().where(schema.posts.c.id.like("s0-%")))
        assert _read_all(queries, "hydraulic", None) == ["s2-1", "s1-1"]
    finally:
        store.close()


@pytest.mark.parametrize(("probe", "cap"), [(5, 3), (5, 1000), (1000, 3)])
def test_every_way_a_search_takes_finds_the_same(store_url: str, probe: int, cap: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounded probe of the newest posts, the index below it and (PostgreSQL, a word
    with more hits than the cap) the newest-first walk: with a probe and a cap small enough
    for all three to run, every query and team reads the same pages as the Python test."""
    monkeypatch.setattr(queries_module, "SEARCH_PROBE", probe)
    monkeypatch.setattr(queries_module, "SEARCH_HITS_CAP", cap)
    store = Store.open(store_url)
    try:
        posts = _posts(4)
        store.commit(CommitBatch(posts=posts))
        queries = FeedQueries(store)
        for query in QUERIES:
            for team in (None, "production"):
                assert _read_all(queries, query, team) == _expected(posts, query, team), (
                    query, team)
    finally:
        store.close()


def test_search_words() -> None:
    assert search.words("Press-07, in FAULT: press") == ("press", "07", "in", "fault")
    assert search.words("mrp_production:42") == ("mrp", "production", "42")
    assert search.words("°C → !") == ("c",)
    assert search.words("") == () and FeedFilter(text="---").empty
    assert search.matches(("pres", "07"), "press-07 stopped", None)
    assert not search.matches(("ress",), "press-07 stopped", None)
    assert search.matches(("bar",), "x", "below 120 bar")


def _downgrade_to_v7(store: Store) -> None:
    """The store as v7 left it: no text index, no v8 tables."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for name in ("delete", "update"):
                conn.execute(text(f"DROP TRIGGER fs_posts_fts_{name}"))
            conn.execute(text("DROP TABLE fs_posts_fts"))
        elif conn.dialect.name == "postgresql":
            conn.execute(text("DROP INDEX ix_fs_posts_text"))
        else:
            conn.execute(text("ALTER TABLE fs_posts DROP INDEX ix_fs_posts_text"))
            conn.execute(text("ALTER TABLE fs_posts DROP COLUMN search_words"))
        conn.execute(text("DROP TABLE fs_web_login_failures"))
        conn.execute(text("DROP TABLE fs_web_digests"))
        conn.execute(schema.schema_version.update().values(version=7))


def test_the_upgrade_indexes_the_posts_already_there(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        posts = _posts(2)
        store.commit(CommitBatch(posts=posts))
        _downgrade_to_v7(store)  # as if committed when there was no index
    finally:
        store.close()
    upgraded = Store.open(store_url)
    try:
        with upgraded.engine.connect() as conn:
            assert current_version(conn) == schema.SCHEMA_VERSION >= 8  # (v9: MariaDB charsets)
            assert {"fs_web_login_failures", "fs_web_digests"} <= set(
                inspect(conn).get_table_names())
        queries = FeedQueries(upgraded)
        for query in ("hydraulic", "kühl", "4500012"):
            assert _read_all(queries, query, None) == _expected(posts, query)
        later = [p.model_copy(update={"id": f"later-{p.id}"}) for p in posts[:2]]
        upgraded.commit(CommitBatch(posts=later))  # and kept current from there on
        assert _read_all(queries, "stopped", None)[0] == "later-s0-0"
    finally:
        upgraded.close()


def test_a_search_reads_the_index_not_the_posts(store_url: str) -> None:
    """EXPLAIN of the very statements a search page runs: the text index drives them."""
    store = Store.open(store_url)
    try:
        words = ["press", "stopped", "running", "order", "delayed", "shipment", "alpha"]
        posts = [Post(id=f"b{n}", type="t", source="presses", subject=f"press-{n % 40}",
                      summary=" ".join(words[(n * k) % 7] for k in range(1, 5))
                      + f" lot{n} unit{n % 300}" + (" zebra" if n % 500 == 0 else ""),
                      severity=10, teams=("maintenance",) if n % 3 else ("production",),
                      occurred_at=utcnow()) for n in range(6000)]
        for start in range(0, len(posts), 2000):
            store.commit(CommitBatch(posts=posts[start:start + 2000]))
        postgres = store.engine.dialect.name == "postgresql"
        mariadb = store.engine.dialect.name in ("mysql", "mariadb")
        if postgres:
            with store.engine.begin() as conn:
                conn.execute(text("ANALYZE fs_posts"))
                conn.execute(text("ANALYZE fs_post_teams"))
        statements: list[tuple[str, Any]] = []

        def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                 executemany: bool) -> None:
            if ("fs_posts_fts" in statement or "to_tsquery" in statement
                    or "MATCH (fs_posts.search_words)" in statement) and (
                    not statement.startswith("EXPLAIN")):
                statements.append((statement, parameters))

        event.listen(store.engine, "before_cursor_execute", seen)
        queries = FeedQueries(store)
        for team in (None, "maintenance"):
            page = queries.page(teams=[team] if team else None, readable=None,
                                filters=FeedFilter(text="zebra", type="t"),
                                before=5000, limit=5)
            wanted = FeedFilter(text="zebra", type="t")
            expected = [p.id for seq, p in reversed(list(enumerate(posts, start=1)))
                        if seq < 5000 and wanted.matches(p)
                        and (team is None or team in p.teams)]
            assert expected and [p.id for p in page.posts] == expected[:5]
        event.remove(store.engine, "before_cursor_execute", seen)
        # PostgreSQL tests the newest SEARCH_PROBE posts below the cursor row by row first
        # (a common word fills the page there): a bounded walk of the primary key, and the
        # index only after it
        probes = [s for s in statements if "''::tsvector" in s[0]]
        assert len(probes) == (2 if postgres else 0)
        statements = [s for s in statements if s not in probes]
        assert len(statements) == 2
        with store.engine.connect() as conn:
            for statement, parameters in probes:
                plan = "\n".join(str(row[0]) for row in conn.exec_driver_sql(
                    "EXPLAIN " + statement, parameters))
                assert "Index Only Scan Backward using fs_posts_pkey" in plan, plan
                assert "ix_fs_posts_text" not in plan and "Seq Scan" not in plan, plan
            for statement, parameters in statements:
                if mariadb:  # the posts are read through the FULLTEXT index
                    rows = list(conn.exec_driver_sql("EXPLAIN " + statement,
                                                     parameters).mappings())
                    posts_row = next(r for r in rows if r["table"] == "fs_posts")
                    assert posts_row["type"] == "fulltext", rows
                    assert posts_row["key"] == "ix_fs_posts_text", rows
                    continue
                explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
                plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(
                    explain + statement, parameters))
                if postgres:
                    assert "ix_fs_posts_text" in plan, plan
                    assert "Seq Scan" not in plan, plan
                else:
                    assert "SCAN fs_posts_fts VIRTUAL TABLE INDEX" in plan, plan
                    assert ":M" in plan, plan  # the MATCH is the index's constraint
                    for line in plan.splitlines():  # nothing else is walked, only looked up
                        assert not line.startswith(("SCAN fs_posts ", "SCAN fs_post_teams")), plan
                        assert "SEARCH fs_post_teams USING" not in line or "=?)" in line, plan
    finally:
        store.close()
