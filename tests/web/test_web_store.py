"""The web feed's tables (schema v7) on SQLite, PostgreSQL and MariaDB: created fresh and by
the upgrade from v6, sessions, follows and acknowledgements round-trip, and a feed page reads
the same on each store."""

from __future__ import annotations

from sqlalchemy import inspect, text

from floorstream.config.settings import WebSettings
from floorstream.model import Post, utcnow
from floorstream.store import schema
from floorstream.store.migrations import MIGRATIONS, current_version
from floorstream.store.store import CommitBatch, Store
from floorstream.web.auth import Authenticator
from floorstream.web.queries import FeedFilter, FeedQueries

WEB_TABLES = {"fs_web_sessions", "fs_web_follows", "fs_web_acks"}


def test_a_v6_store_gets_the_web_tables(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        with store.engine.begin() as conn:
            for table in sorted(WEB_TABLES):
                conn.execute(text(f"DROP TABLE {table}"))
            conn.execute(schema.schema_version.update().values(version=6))
        assert 7 in MIGRATIONS
    finally:
        store.close()
    upgraded = Store.open(store_url)
    try:
        with upgraded.engine.connect() as conn:
            assert current_version(conn) == schema.SCHEMA_VERSION
            assert set(inspect(conn).get_table_names()) >= WEB_TABLES
            if conn.dialect.name == "postgresql":
                triggers = set(conn.execute(text(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars())
                assert {"fs_posts_web_notify", "fs_web_acks_web_notify"} <= triggers
    finally:
        upgraded.close()


def test_sessions_follows_acks_and_a_page(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        posts = [Post(id=f"p{n}", type="machine.state_changed", source="presses",
                      subject=f"press-0{n % 3}", summary=f"post °C → {n}",
                      severity=10 + 10 * (n % 4), teams=("maintenance",), occurred_at=utcnow())
                 for n in range(10)]
        store.commit(CommitBatch(posts=posts))
        queries = FeedQueries(store)
        page = queries.page(teams=["maintenance"], readable=None,
                            filters=FeedFilter(subject="press-01", text="°c"), limit=2)
        assert [p.summary for p in page.posts] == ["post °C → 7", "post °C → 4"]
        assert page.next_before == page.seqs[-1]
        older = queries.page(teams=["maintenance"], readable=None,
                             filters=FeedFilter(subject="press-01"), before=page.next_before)
        assert [p.summary for p in older.posts] == ["post °C → 1"]
        ack, created = queries.acknowledge("p3", "anna")
        again, created_again = queries.acknowledge("p3", "anna")
        assert created and not created_again and again.id == ack.id
        assert [a.person for a in queries.acks(["p3", "p4"])["p3"]] == ["anna"]
        assert queries.acks_after(0) == [ack]
        assert queries.follow("anna", "subject", "press-01")
        assert not queries.follow("anna", "subject", "press-01")
        mine = queries.followed(queries.follows("anna"), readable=None)
        assert [p.id for p in mine.posts] == ["p7", "p4", "p1"]
        assert queries.unfollow("anna", "subject", "press-01")
        auth = Authenticator(WebSettings(people={"anna": {"name": "Anna"}}), store)
        token, session = auth.start_session("anna")
        assert auth.session(token) == session and auth.session(token + "x") is None
        auth.end_session(token)
        assert auth.session(token) is None
    finally:
        store.close()
