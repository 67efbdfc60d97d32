"""Schema upgrades, one function per version step.

``MIGRATIONS[n]`` takes a database at version ``n - 1`` to version ``n`` inside one transaction.
A fresh database is created at the current version directly. A database newer than this code
is refused rather than written to, since an older floorstream cannot know what it would break.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, select, text

from floorstream.errors import SchemaVersionError
from floorstream.model import utcnow
from floorstream.store import schema

__all__ = ["MIGRATIONS", "ensure_schema"]

Migration = Callable[[Connection], None]


def _v2_delivery_claims(conn: Connection) -> None:
    """v1 → v2: outbox rows get a claim token and the service's message reference."""
    conn.execute(text("ALTER TABLE fs_deliveries ADD COLUMN claim VARCHAR(32)"))
    conn.execute(text("ALTER TABLE fs_deliveries ADD COLUMN remote_ref VARCHAR(255)"))
    conn.execute(text("CREATE INDEX ix_fs_deliveries_lane "
                      "ON fs_deliveries (sink, team, status, id)"))


def _v3_long_checkpoints(conn: Connection) -> None:
    """v2 → v3: checkpoints up to 4 GiB on MySQL/MariaDB (TEXT held 64 KiB, too little for the
    row hashes of an ERP table in snapshot mode); TEXT has no such limit elsewhere."""
    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(text("ALTER TABLE fs_checkpoints MODIFY position LONGTEXT NOT NULL"))


def _v4_threads(conn: Connection) -> None:
    """v3 → v4: every post belongs to a thread and says how it relates to an earlier post
    (design.md §9): new, update, resolution (what ``clears`` said) or retraction. Columns or
    indexes already there (a database created by a newer layout) are left alone."""
    found = inspect(conn)
    columns = {c["name"] for c in found.get_columns("fs_posts")}
    for name, ddl in (("thread", "VARCHAR(255) NOT NULL DEFAULT ''"),
                      ("relation", "VARCHAR(16) NOT NULL DEFAULT 'new'"),
                      ("refers_to", "VARCHAR(32)")):
        if name not in columns:
            conn.execute(text(f"ALTER TABLE fs_posts ADD COLUMN {name} {ddl}"))
    conn.execute(text("UPDATE fs_posts SET thread = subject WHERE thread = ''"))
    conn.execute(text("UPDATE fs_posts SET relation = 'resolution', refers_to = clears "
                      "WHERE clears IS NOT NULL AND refers_to IS NULL"))
    indexes = {i["name"] for i in found.get_indexes("fs_posts")}
    if "ix_fs_posts_thread" not in indexes:
        conn.execute(text("CREATE INDEX ix_fs_posts_thread ON fs_posts (thread, seq)"))
    if "ix_fs_posts_refers_to" not in indexes:
        conn.execute(text("CREATE INDEX ix_fs_posts_refers_to ON fs_posts (refers_to)"))


def _v5_retention_indexes(conn: Connection) -> None:
    """v4 → v5: indexes retention needs: a post's team rows by the post (pruning deleted them
    by a full scan of fs_post_teams per batch; reading a feed page did the same), and detector
    state by when it last changed (subjects gone quiet). Indexes already there are kept."""
    found = inspect(conn)
    if "ix_fs_post_teams_post" not in {i["name"] for i in found.get_indexes("fs_post_teams")}:
        conn.execute(text("CREATE INDEX ix_fs_post_teams_post ON fs_post_teams (post_seq)"))
    if "ix_fs_detector_state_updated" not in {
            i["name"] for i in found.get_indexes("fs_detector_state")}:
        conn.execute(text("CREATE INDEX ix_fs_detector_state_updated "
                          "ON fs_detector_state (updated_at)"))


def _v6_fleet(conn: Connection) -> None:
    """v5 → v6: the fleet's tables, a row per daemon and one per source lease (docs/fleet.md).
    Tables already there are kept."""
    for table in (schema.daemons, schema.source_leases):
        table.create(conn, checkfirst=True)


def _v7_web(conn: Connection) -> None:
    """v6 → v7: the web feed's tables (sessions, follows, acknowledgements) and, on
    PostgreSQL, the NOTIFY trigger that wakes web processes when posts or acks are inserted
    (docs/web.md). Created through the table metadata, so a fresh and an upgraded store match;
    tables already there are kept."""
    for table in (schema.web_sessions, schema.web_follows, schema.web_acks):
        table.create(conn, checkfirst=True)  # web_acks' after_create adds the PG trigger


def _v8_web_search(conn: Connection) -> None:
    """v7 → v8: the web feed's text index over the posts there already (SQLite FTS5 with its
    triggers, PostgreSQL a GIN index, MariaDB a FULLTEXT index on a stored column of the
    words; docs/web.md, "Store"), the failed logins every web process shares, and the
    personal digests' choices and checkpoints. Kept if there."""
    if conn.dialect.name == "sqlite":
        for statement in schema.SQLITE_TEXT_INDEX:
            conn.execute(text(statement))
        conn.execute(text(schema.SQLITE_TEXT_REBUILD))
    elif conn.dialect.name == "postgresql":
        conn.execute(text(schema.PG_TEXT_INDEX))
    else:  # MariaDB / MySQL: a stored column of the words and its FULLTEXT index
        found = inspect(conn)
        if "search_words" not in {c["name"] for c in found.get_columns("fs_posts")}:
            conn.execute(text(schema.MYSQL_TEXT_COLUMN))
        if "ix_fs_posts_text" not in {i["name"] for i in found.get_indexes("fs_posts")}:
            conn.execute(text(schema.MYSQL_TEXT_INDEX))
    for table in (schema.web_login_failures, schema.web_digests):
        table.create(conn, checkfirst=True)


def _v9_mariadb_utf8mb4(conn: Connection) -> None:
    """v8 → v9: MariaDB / MySQL tables in utf8mb4 with the binary collation, whatever they were
    created in. A store opened as ``mariadb+pymysql://`` got the database's default character
    set (latin1 on many servers: that dialect read none of floorstream's ``mysql_`` table
    options), and a post with an emoji or a CJK name could not be stored there. Every latin1
    character has its utf8mb4 one, so the conversion keeps what is stored."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return
    found: dict[str, str | None] = {name: collation for name, collation in conn.execute(text(
        "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE()"))}
    for table in schema.metadata.sorted_tables:
        if table.name in found and found[table.name] != "utf8mb4_bin":
            conn.execute(text(f"ALTER TABLE `{table.name}` "
                              "CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))


MIGRATIONS: dict[int, Migration] = {2: _v2_delivery_claims, 3: _v3_long_checkpoints,
                                    4: _v4_threads, 5: _v5_retention_indexes,
                                    6: _v6_fleet, 7: _v7_web, 8: _v8_web_search,
                                    9: _v9_mariadb_utf8mb4}


def current_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(schema.schema_version.name):
        return None
    return conn.execute(select(schema.schema_version.c.version)).scalar_one_or_none()


def ensure_schema(conn: Connection, target: int = schema.SCHEMA_VERSION,
                  migrations: dict[int, Migration] | None = None) -> int:
    """Create or upgrade the schema; returns the version found before (0 for a new database)."""
    steps = MIGRATIONS if migrations is None else migrations
    found = current_version(conn)
    if found is None:
        schema.metadata.create_all(conn)
        conn.execute(schema.schema_version.insert().values(version=target, upgraded_at=utcnow()))
        return 0
    if found > target:
        raise SchemaVersionError(
            f"the store is at schema version {found}, newer than this floorstream's {target}; "
            "upgrade floorstream")
    for version in range(found + 1, target + 1):
        steps[version](conn)
        conn.execute(schema.schema_version.update().values(version=version, upgraded_at=utcnow()))
    return found
