"""The store on SQLite, PostgreSQL and MariaDB: schema and upgrades, idempotent posts, feeds,
unicode, quarantine, checkpoints and detector state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.exc import IntegrityError

from floorstream.errors import SchemaVersionError
from floorstream.model import Post, Severity, event_id
from floorstream.store import schema
from floorstream.store.migrations import current_version, ensure_schema
from floorstream.store.store import CommitBatch, QuarantineItem, Store

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    try:
        yield opened
    finally:
        opened.close()


def _post(n: int, *, teams: tuple[str, ...] = ("maintenance",),
          severity: Severity = Severity.INFO, summary: str | None = None) -> Post:
    return Post(id=event_id("presses", f"press-{n % 3}", str(n), "machine.state_changed"),
                type="machine.state_changed", source="presses", subject=f"press-{n % 3}",
                summary=summary or f"post {n}", severity=severity, teams=teams,
                tags=("area:pressing",), occurred_at=T0 + timedelta(seconds=n),
                created_at=T0 + timedelta(minutes=n), fields={"n": n},
                routing=tuple({"team": t, "rule": "routes[0]"} for t in teams))


def test_schema_is_created_at_the_current_version(store: Store) -> None:
    with store.engine.connect() as conn:
        assert current_version(conn) == schema.SCHEMA_VERSION
        tables = set(inspect(conn).get_table_names())
    assert {"fs_posts", "fs_post_teams", "fs_checkpoints", "fs_detector_state",
            "fs_quarantine", "fs_deliveries", "fs_schema_version"} <= tables
    # opening again neither recreates nor fails
    again = Store.open(store.engine.url.render_as_string(hide_password=False))
    again.close()
    with store.engine.connect() as conn:
        rows = conn.execute(select(schema.schema_version.c.version)).all()
    assert rows == [(schema.SCHEMA_VERSION,)]


def test_an_older_database_is_upgraded_step_by_step(store_url: str) -> None:
    store = Store.open(store_url, create=False)
    applied: list[int] = []

    def step(version: int) -> object:
        def migrate(conn: Connection) -> None:
            applied.append(version)
            conn.execute(text(f"CREATE TABLE fs_test_v{version} (id INTEGER PRIMARY KEY)"))
        return migrate

    steps = {2: step(2), 3: step(3)}
    try:
        with store.engine.begin() as conn:
            assert ensure_schema(conn, target=1, migrations=steps) == 0  # new: no steps run
        assert applied == []
        with store.engine.begin() as conn:
            assert ensure_schema(conn, target=3, migrations=steps) == 1  # type: ignore[arg-type]
        assert applied == [2, 3]
        with store.engine.connect() as conn:
            assert current_version(conn) == 3
            assert {"fs_test_v2", "fs_test_v3"} <= set(inspect(conn).get_table_names())
        with store.engine.begin() as conn:
            assert ensure_schema(conn, target=3, migrations=steps) == 3  # type: ignore[arg-type]
        assert applied == [2, 3]
    finally:
        store.close()


def test_a_newer_database_is_refused(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(schema.schema_version.update().values(version=schema.SCHEMA_VERSION + 5))
    url = store.engine.url.render_as_string(hide_password=False)
    with pytest.raises(SchemaVersionError, match="newer than this floorstream"):
        Store.open(url)


def test_posts_are_inserted_once(store: Store) -> None:
    first, second = _post(1), _post(2)
    new = store.commit(CommitBatch(posts=[first, second, first],
                                   deliveries=[(first.id, "maintenance", "chat")]))
    assert [p.id for p in new] == [first.id, second.id]
    replay = store.commit(CommitBatch(posts=[second, first],
                                      deliveries=[(first.id, "maintenance", "chat")]))
    assert replay == []
    assert store.count_posts() == 2
    assert len(store.feed("maintenance")) == 2
    with store.engine.connect() as conn:
        assert conn.execute(select(schema.deliveries.c.post_id)).scalars().all() == [first.id]


def test_feed_by_team_severity_time_and_after_seq(store: Store) -> None:
    posts = [_post(n, teams=("maintenance", "production") if n % 2 else ("production",),
                   severity=Severity.WARNING if n % 3 == 0 else Severity.INFO)
             for n in range(1, 11)]
    store.commit(CommitBatch(posts=posts[:5]))
    store.commit(CommitBatch(posts=posts[5:]))
    feed = store.feed("production")
    assert [p.summary for p in feed] == [f"post {n}" for n in range(10, 0, -1)]  # newest first
    assert [p.summary for p in store.feed("production", limit=3)] == [
        "post 10", "post 9", "post 8"]
    assert [p.summary for p in store.feed("maintenance")] == [
        "post 9", "post 7", "post 5", "post 3", "post 1"]
    assert store.feed("maintenance")[0].teams == ("maintenance", "production")
    assert [p.summary for p in store.feed("production", min_severity=Severity.WARNING)] == [
        "post 9", "post 6", "post 3"]
    since = T0 + timedelta(minutes=8)
    assert [p.summary for p in store.feed("production", since=since)] == [
        "post 10", "post 9", "post 8"]
    seq = store.post_seq(posts[6].id)
    assert seq is not None
    assert [p.summary for p in store.feed("production", after_seq=seq)] == [
        "post 8", "post 9", "post 10"]  # oldest first, for --follow
    assert store.feed("nobody") == []
    assert store.teams() == ["maintenance", "production"]


def test_posts_round_trip_with_unicode(store: Store) -> None:
    post = _post(1, summary="press-07: Spindeltemperatur 91 °C → 79 °C (Übertemperatur) ✓",
                 severity=Severity.CRITICAL)
    post = post.model_copy(update={"fields": {"unit": "°C", "before": "läuft", "after": "→"},
                                   "links": {"Auftrag": "https://erp.example/mo/42"},
                                   "body": "Ölstand prüfen", "relation": "resolution",
                                   "refers_to": "f" * 32})
    store.commit(CommitBatch(posts=[post]))
    loaded = store.post(post.id)
    assert loaded is not None
    assert loaded.summary == post.summary and loaded.body == "Ölstand prüfen"
    assert loaded.fields == post.fields and loaded.links == post.links
    assert loaded.severity is Severity.CRITICAL and loaded.tags == ("area:pressing",)
    assert loaded.occurred_at == post.occurred_at and loaded.occurred_at.tzinfo is not None
    assert loaded.clears == "f" * 32
    assert loaded.routing == post.routing


def test_quarantine_keeps_raw_bytes_including_large_ones(store: Store) -> None:
    small = QuarantineItem("presses", b"\xff\xfe not json \x00", "invalid JSON", position="p1",
                           context={"topic": "plant/a/press-07/telemetry"})
    large_raw = bytes(range(256)) * 400  # 100 KiB: past MariaDB's 64 KiB BLOB
    large = QuarantineItem("presses", large_raw, "payload too large", position="p2")
    store.commit(CommitBatch(quarantined=[small, large]))
    store.commit(CommitBatch(quarantined=[small]))  # replayed: kept once
    rows = store.quarantined()
    assert [r.position for r in rows] == ["p2", "p1"]
    assert rows[0].raw == large_raw and len(rows[0].raw) == 102_400
    item = store.quarantined_item(rows[1].id)
    assert item is not None and item.raw == small.raw and item.error == "invalid JSON"
    assert item.context == {"topic": "plant/a/press-07/telemetry"}
    assert store.quarantined(source="other") == []


def test_checkpoints_and_detector_state_are_upserted(store: Store) -> None:
    store.commit(CommitBatch(checkpoints={"presses": "10", "orders": "2026-11-02T06:00:00|4"},
                             states={("presses", "press-07", "threshold:t"): {"status": "raised",
                                                                              "peak": 91.5}}))
    store.commit(CommitBatch(checkpoints={"presses": "11"},
                             states={("presses", "press-07", "threshold:t"): {"status": "normal"},
                                     ("presses", "press-08", "silence"): {"last_seen": 1.5}}))
    assert store.checkpoints() == {"presses": "11", "orders": "2026-11-02T06:00:00|4"}
    assert store.detector_states("presses") == {
        ("press-07", "threshold:t"): {"status": "normal"},
        ("press-08", "silence"): {"last_seen": 1.5}}
    assert store.detector_states("orders") == {}


def test_a_batch_is_all_or_nothing(store: Store) -> None:
    good = _post(1)
    bad = _post(2).model_copy(update={"summary": None})  # NOT NULL violated on every database
    with pytest.raises(IntegrityError):
        store.commit(CommitBatch(posts=[good, bad], checkpoints={"presses": "99"},
                                 states={("presses", "press-1", "x"): {"a": 1}}))
    assert store.count_posts() == 0 and store.checkpoints() == {}
    assert store.detector_states("presses") == {}


def test_sqlite_feed_queries_use_the_team_index(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    store.commit(CommitBatch(posts=[_post(n) for n in range(20)]))
    plans = []
    for kwargs in ({}, {"min_severity": Severity.WARNING},
                   {"since": T0}, {"after_seq": 3}):
        pt = schema.post_teams
        query = select(pt.c.post_seq).where(pt.c.team == "maintenance")
        if "min_severity" in kwargs:
            query = query.where(pt.c.severity >= 30)
        if "since" in kwargs:
            query = query.where(pt.c.created_at >= T0)
        if "after_seq" in kwargs:
            query = query.where(pt.c.post_seq > 3)
        query = query.order_by(pt.c.post_seq.desc()).limit(50)
        compiled = query.compile(store.engine, compile_kwargs={"literal_binds": True})
        with store.engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}"))
        plans.append(plan)
        assert "ix_fs_post_teams" in plan or "pk_fs_post_teams" in plan, plan
        assert "SCAN fs_post_teams" not in plan.replace("USING", "").split("INDEX")[0], plan
    store.close()


def test_sqlite_driver_commit_writes_the_rows_sqlalchemy_writes(sqlite_url: str,
                                                                  tmp_path: object) -> None:
    """Store.commit on SQLite sends its statements through the driver's cursor
    (floorstream.store.sqlitecommit); every column of the posts, team rows, checkpoints and
    state rows must read back exactly as through SQLAlchemy's own insert of the same values,
    and the words must be found by the text search."""
    from sqlalchemy import insert

    from floorstream.store.store import _post_row

    driver = Store.open(sqlite_url)
    posts = [_post(1, teams=("maintenance", "quality"), summary="Ünïcode 92 °C — Press 7"),
             _post(2).model_copy(update={"body": "spindle\nhot", "clears": "x",
                                         "thread": "t-1", "relation": "update",
                                         "refers_to": "p-0"})]
    states = {("presses", "press-1", "state"): {"after": "RUN", "n": 1.5, "at": [1, None]}}
    driver.commit(CommitBatch(posts=posts, checkpoints={"presses": "42"}, states=states))
    reference = Store.open(f"sqlite:///{tmp_path}/reference.db")
    with reference.engine.begin() as conn:
        conn.execute(insert(schema.posts), [_post_row(p) for p in posts])
    with driver.engine.connect() as a, reference.engine.connect() as b:
        columns = [c for c in schema.posts.c if c.name != "seq"]
        assert a.execute(select(*columns).order_by(schema.posts.c.id)).all() == \
            b.execute(select(*columns).order_by(schema.posts.c.id)).all()
        raw = "SELECT id, tags, fields, routing, occurred_at, created_at FROM fs_posts ORDER BY id"
        assert a.exec_driver_sql(raw).all() == b.exec_driver_sql(raw).all()
        teams = a.execute(select(schema.post_teams.c.team, schema.post_teams.c.post_id,
                                 schema.post_teams.c.created_at)).all()
    assert sorted(teams) == sorted((t, p.id, p.created_at) for p in posts for t in p.teams)
    assert driver.checkpoints() == {"presses": "42"}
    assert driver.detector_states("presses") == {("press-1", "state"): states[
        ("presses", "press-1", "state")]}
    # a replay of the same posts writes nothing new
    assert driver.commit(CommitBatch(posts=posts)) == []
    assert driver.count_posts() == 2
    with driver.engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT p.id FROM fs_posts_fts f JOIN fs_posts p ON p.seq = f.rowid "
            "WHERE fs_posts_fts MATCH 'spindle'").scalars().all()
    assert found == [posts[1].id]
    driver.close()
    reference.close()


@pytest.mark.mysql
@pytest.mark.parametrize("scheme", ["mysql+pymysql", "mariadb+pymysql"])
def test_mysql_tables_are_utf8mb4_whatever_the_database_default(
        request: pytest.FixtureRequest, scheme: str) -> None:
    """A plant's MariaDB database created with the server's default (latin1 on many
    installations): floorstream's tables still take utf8mb4, binary collation, through either
    URL scheme — ``mariadb+pymysql://`` once created them latin1 (that dialect reads only its
    own ``mariadb_`` table options), and a post saying "92 °C 🔥" could not be stored."""
    from support.services import MYSQL_URL, mysql_database, require_marker, require_service

    require_marker(request, "mysql", "MariaDB")
    require_service(MYSQL_URL, 3306, "MariaDB")
    with mysql_database("latin1", scheme) as url:
        store = Store.open(url)
        try:
            with store.engine.connect() as conn:
                tables = conn.exec_driver_sql("SHOW TABLES").scalars().all()
                created = {t: conn.exec_driver_sql(f"SHOW CREATE TABLE `{t}`").one()[1]
                           for t in tables}
            assert len(created) >= 7
            for table, ddl in created.items():
                assert "CHARSET=utf8mb4" in ddl and "COLLATE=utf8mb4_bin" in ddl, (table, ddl)
            post = _post(1, summary="Press 7 stopped: spindle 92 °C 🔥")
            assert store.commit(CommitBatch(posts=[post])) == [post]
            assert [p.summary for p in store.feed("maintenance")] == [post.summary]
        finally:
            store.close()


@pytest.mark.mysql
def test_latin1_mariadb_tables_are_converted_to_utf8mb4_on_upgrade(
        request: pytest.FixtureRequest) -> None:
    """Tables an earlier floorstream created in latin1 (through ``mariadb+pymysql://``, before
    the fix above) are converted by the v9 migration, keeping what they hold: afterwards the
    post stored before reads back unchanged and one with an emoji can be stored."""
    from sqlalchemy import create_engine

    from floorstream.store.migrations import MIGRATIONS
    from support.services import MYSQL_URL, mysql_database, require_marker, require_service

    require_marker(request, "mysql", "MariaDB")
    require_service(MYSQL_URL, 3306, "MariaDB")
    with mysql_database("latin1", "mariadb+pymysql") as url:
        engine = create_engine(url)
        with engine.begin() as conn:  # as the code before the fix made them: at v8, in latin1
            schema.metadata.create_all(conn)
            tables = conn.exec_driver_sql("SHOW TABLES").scalars().all()
            for table in tables:
                conn.exec_driver_sql(f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET latin1")
            conn.execute(schema.schema_version.insert().values(version=8, upgraded_at=T0))
        engine.dispose()
        before = Store.open(url, create=False)
        old = _post(1, summary="Presse 7 gestoppt: Spindel 92 °C")  # latin1 can hold this
        before.commit(CommitBatch(posts=[old]))
        before.close()
        assert 9 in MIGRATIONS
        store = Store.open(url)
        try:
            with store.engine.connect() as conn:
                assert current_version(conn) == 9
                for table in tables:
                    ddl = conn.exec_driver_sql(f"SHOW CREATE TABLE `{table}`").one()[1]
                    assert "CHARSET=utf8mb4" in ddl and "COLLATE=utf8mb4_bin" in ddl, ddl
            new = _post(2, summary="Press 7 stopped: spindle 92 °C 🔥")
            assert store.commit(CommitBatch(posts=[new])) == [new]
            assert [p.summary for p in store.feed("maintenance")] == [new.summary, old.summary]
        finally:
            store.close()
