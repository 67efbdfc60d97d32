"""Tables (SQLAlchemy Core) and the schema version.

Column types are chosen to behave the same on SQLite, PostgreSQL and MariaDB: times are stored
as naive UTC with microseconds (MariaDB's DATETIME needs ``fsp=6`` for that), binary payloads as
LONGBLOB on MariaDB (BLOB stops at 64 KiB), tables in utf8mb4 so "°C" and "→" survive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import orjson
from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    event,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["SCHEMA_VERSION", "metadata"]

#: bump together with a new entry in ``migrations.MIGRATIONS``.
SCHEMA_VERSION = 9

#: every table's options on MySQL/MariaDB, given to a table as it is created there (see
#: :func:`_mysql_options`)
MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database, microsecond precision everywhere.

    On SQLite the value is formatted to text here, in the very layout SQLAlchemy's DATETIME
    uses there (``2026-11-25 10:00:00.123456``, so order and comparisons hold), instead of
    through two layers of processors: a post carries three timestamps, and that double
    processing was a fifth of the commit time.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SqliteStamp())
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is not None and value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
                    f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}")
        return value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


class _SqliteStamp(String):
    """SQLite's DATETIME column, declared as such, fed text already formatted."""

    __visit_name__ = "DATETIME"


def json_text(value: Any) -> str:
    """A JSON column's text, through orjson: the store's JSON serializer on every database,
    and what the SQLite commit binds itself (a post has four such columns, and the stdlib
    encoder was a tenth of the commit time)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


_T = TypeVar("_T")


class _LongOnMariaDB(TypeDecorator[_T]):
    """``impl``, but the MySQL type named :attr:`mariadb_type` on MySQL/MariaDB, whose plain
    BLOB and TEXT stop at 64 KiB. A decorator rather than ``with_variant(mysql.LONGBLOB())``
    so that the MySQL dialect (almost a megabyte) is imported only by a store that is
    MariaDB."""

    mariadb_type: ClassVar[str]

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(getattr(mysql, self.mariadb_type)())
        return self.impl_instance


class Blob(_LongOnMariaDB[bytes]):
    """Binary of any size: LONGBLOB on MariaDB, LargeBinary elsewhere."""

    impl = LargeBinary
    mariadb_type = "LONGBLOB"
    cache_ok = True  # (SQLAlchemy reads it from the class itself, not a base)


class LongText(_LongOnMariaDB[str]):
    """Text of any size: LONGTEXT on MariaDB (a snapshot-mode ERP checkpoint, row hashes,
    outgrow TEXT); Text elsewhere."""

    impl = Text
    mariadb_type = "LONGTEXT"
    cache_ok = True


Seq = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

schema_version = Table(
    "fs_schema_version", metadata,
    Column("version", Integer, nullable=False),
    Column("upgraded_at", UTCDateTime, nullable=False),
)

posts = Table(
    "fs_posts", metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False),
    Column("type", String(128), nullable=False),
    Column("source", String(128), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("summary", String(200), nullable=False),
    Column("body", Text),
    Column("tags", JSON, nullable=False),
    Column("links", JSON, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("routing", JSON, nullable=False),
    Column("clears", String(32)),  # v1-v3: the resolved post; refers_to since v4
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("thread", String(255), nullable=False, server_default=""),
    Column("relation", String(16), nullable=False, server_default="new"),
    Column("refers_to", String(32)),
    UniqueConstraint("id", name="uq_fs_posts_id"),
    Index("ix_fs_posts_source_subject", "source", "subject", "seq"),
    Index("ix_fs_posts_thread", "thread", "seq"),
    Index("ix_fs_posts_refers_to", "refers_to"),
)

post_teams = Table(
    "fs_post_teams", metadata,
    Column("team", String(64), nullable=False),
    Column("post_id", String(32), nullable=False),
    Column("post_seq", BigInteger, nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("team", "post_id", name="pk_fs_post_teams"),
    Index("ix_fs_post_teams_feed", "team", "post_seq"),
    Index("ix_fs_post_teams_severity", "team", "severity", "post_seq"),
    Index("ix_fs_post_teams_time", "team", "created_at"),
    # v5: a post's team rows by the post (reading posts, pruning them)
    Index("ix_fs_post_teams_post", "post_seq"),
)

checkpoints = Table(
    "fs_checkpoints", metadata,
    Column("source", String(128), primary_key=True),
    Column("position", LongText, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

detector_state = Table(
    "fs_detector_state", metadata,
    Column("source", String(128), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("detector", String(191), nullable=False),
    Column("state", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("source", "subject", "detector", name="pk_fs_detector_state"),
    # v5: subjects gone quiet, for retention
    Index("ix_fs_detector_state_updated", "updated_at"),
)

quarantine = Table(
    "fs_quarantine", metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("key", String(32), nullable=False),
    Column("source", String(128), nullable=False),
    Column("position", Text),
    Column("error", Text, nullable=False),
    Column("raw", Blob, nullable=False),
    Column("context", JSON, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("key", name="uq_fs_quarantine_key"),
    Index("ix_fs_quarantine_source", "source", "id"),
)

deliveries = Table(
    "fs_deliveries", metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("post_id", String(32), nullable=False),
    Column("team", String(64), nullable=False),
    Column("sink", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    # v2: the worker's claim token while sending, and the service's message reference
    # (Slack ts, Mattermost post id, e-mail Message-ID) so a clearing post can thread to it
    Column("claim", String(32)),
    Column("remote_ref", String(255)),
    UniqueConstraint("post_id", "sink", name="uq_fs_deliveries_post_sink"),
    Index("ix_fs_deliveries_due", "status", "next_attempt_at"),
    Index("ix_fs_deliveries_lane", "sink", "team", "status", "id"),
)


# -- v6: a fleet of daemons on one store (docs/fleet.md) ------------------------------------
# A row per running daemon and one per source lease: who holds what since when. The lock
# itself is a session lock of the holder's lock connection (pg_advisory_lock, GET_LOCK); these
# rows say what the locks mean, and a lease's epoch fences the commits of a holder that lost
# it (floorstream.fleet.fence).

daemons = Table(
    "fs_daemons", metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(64), nullable=False),
    Column("fleet", String(32), nullable=False),  # fingerprint of the sources it runs
    Column("weight", Integer, nullable=False, default=1),
    Column("max_sources", Integer),
    Column("session", String(64), nullable=False),  # its lock connection's session id
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

source_leases = Table(
    "fs_source_leases", metadata,
    Column("source", String(128), primary_key=True),
    Column("holder", String(64)),  # the daemon's id; NULL when released
    Column("epoch", BigInteger, nullable=False, default=0),  # +1 on every acquisition
    Column("since", UTCDateTime, nullable=False),
    # what the holder last reported of it (every few seconds): its lag and last commit
    Column("lag_ms", BigInteger),
    Column("committed_at", UTCDateTime),
    Column("reported_at", UTCDateTime),
)


# -- v7: the web feed (docs/web.md): sessions, follows, acknowledgements --------------------

web_sessions = Table(
    "fs_web_sessions", metadata,
    # sha256 of the cookie's token: a copy of the table logs nobody in
    Column("token_hash", String(64), primary_key=True),
    Column("person", String(128), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_fs_web_sessions_expires", "expires_at"),
)

web_follows = Table(
    "fs_web_follows", metadata,
    Column("person", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # subject | source | team | thread
    Column("value", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("person", "kind", "value", name="pk_fs_web_follows"),
)

web_acks = Table(
    "fs_web_acks", metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("post_id", String(32), nullable=False),
    Column("person", String(128), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("post_id", "person", name="uq_fs_web_acks_post_person"),
)

#: PostgreSQL: every statement that inserts posts or acknowledgements wakes the web processes
#: LISTENing on ``floorstream_web`` (once per transaction: NOTIFY folds duplicates), so a new
#: post reaches a browser without polling; other stores are polled on the indexed seq.
PG_NOTIFY_FUNCTION = (
    "CREATE OR REPLACE FUNCTION fs_web_notify() RETURNS trigger AS $$ "
    "BEGIN PERFORM pg_notify('floorstream_web', TG_TABLE_NAME); RETURN NULL; END; "
    "$$ LANGUAGE plpgsql")
PG_NOTIFY_TRIGGERS = tuple(
    statement for table in ("fs_posts", "fs_web_acks") for statement in (
        f"DROP TRIGGER IF EXISTS {table}_web_notify ON {table}",
        f"CREATE TRIGGER {table}_web_notify AFTER INSERT ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION fs_web_notify()"))

for _ddl in (PG_NOTIFY_FUNCTION, *PG_NOTIFY_TRIGGERS):
    event.listen(web_acks, "after_create",
                 DDL(_ddl).execute_if(dialect="postgresql"))  # type: ignore[no-untyped-call]


# -- v8: the web feed's text search, shared login limit and personal digests (docs/web.md) ---
# A search must not scan the posts. SQLite keeps an FTS5 index of summary and body (an
# external-content table over fs_posts: new posts enter it in Store.commit, deleted ones leave
# by trigger, see SQLITE_TEXT_ADD); PostgreSQL a GIN index on the tsvector of the same text
# (an expression index, current by construction); MariaDB a FULLTEXT index on a stored
# column of the words (MYSQL_TEXT_COLUMN). All see words: letters and digits, split at
# everything else, no stemming, no stop words; a search word matches the words it begins
# (floorstream.web.search).

SQLITE_TEXT_INDEX = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS fs_posts_fts USING fts5(summary, body, "
    "content='fs_posts', content_rowid='seq', detail=none, columnsize=0, "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS fs_posts_fts_delete AFTER DELETE ON fs_posts BEGIN "
    "INSERT INTO fs_posts_fts(fs_posts_fts, rowid, summary, body) "
    "VALUES ('delete', old.seq, old.summary, old.body); END",
    "CREATE TRIGGER IF NOT EXISTS fs_posts_fts_update AFTER UPDATE OF summary, body "
    "ON fs_posts BEGIN "
    "INSERT INTO fs_posts_fts(fs_posts_fts, rowid, summary, body) "
    "VALUES ('delete', old.seq, old.summary, old.body); "
    "INSERT INTO fs_posts_fts(rowid, summary, body) VALUES (new.seq, new.summary, new.body); "
    "END",
)
#: new posts go into the SQLite index in one statement per commit (Store.commit), not by an
#: insert trigger: FTS5 flushes its pending words at the end of every statement, and the
#: pipeline inserts posts one statement per row (executemany) — 13 µs a post by trigger,
#: 3 µs so. (Delete and update, rare and off the pipeline's path, go by trigger.) A writer
#: that inserts posts around Store.commit (a bulk load) runs SQLITE_TEXT_REBUILD after.
#: ``{seqs}``: the IN list, as the caller binds it (the pipeline's commit sends this through
#: the driver, ``store.sqlitecommit``; :data:`SQLITE_TEXT_ADD` is it for SQLAlchemy)
SQLITE_TEXT_ADD_SQL = ("INSERT INTO fs_posts_fts(rowid, summary, body) "
                       "SELECT seq, summary, body FROM fs_posts WHERE seq IN {seqs}")
SQLITE_TEXT_ADD = text(SQLITE_TEXT_ADD_SQL.format(seqs=":seqs")).bindparams(
    bindparam("seqs", expanding=True))
#: fills the SQLite index from the posts already there (the v8 upgrade)
SQLITE_TEXT_REBUILD = "INSERT INTO fs_posts_fts(fs_posts_fts) VALUES ('rebuild')"
#: the searched document on PostgreSQL; a query must spell it exactly so for the planner to
#: use ix_fs_posts_text (punctuation and '_' become spaces, as the word split elsewhere)
PG_TEXT_DOCUMENT = ("to_tsvector('simple'::regconfig, regexp_replace("
                    "summary || ' ' || coalesce(body, ''), '[^[:alnum:]]+', ' ', 'g'))")
PG_TEXT_INDEX = ("CREATE INDEX IF NOT EXISTS ix_fs_posts_text ON fs_posts "
                 f"USING gin ({PG_TEXT_DOCUMENT})")

#: MariaDB / MySQL: the searched words as a stored column (lower case, everything but letters
#: and digits made one space) with a FULLTEXT index on it; in lower case because InnoDB's
#: full-text search follows the column's collation, binary (case-sensitive) in this store
MYSQL_TEXT_COLUMN = (
    "ALTER TABLE fs_posts ADD COLUMN search_words LONGTEXT AS (LOWER(REGEXP_REPLACE("
    "CONCAT(summary, ' ', COALESCE(body, '')), '[^[:alnum:]]+', ' '))) STORED")
MYSQL_TEXT_INDEX = "ALTER TABLE fs_posts ADD FULLTEXT INDEX ix_fs_posts_text (search_words)"

for _ddl in (MYSQL_TEXT_COLUMN, MYSQL_TEXT_INDEX):
    for _dialect in ("mysql", "mariadb"):
        event.listen(posts, "after_create",
                     DDL(_ddl).execute_if(dialect=_dialect))  # type: ignore[no-untyped-call]
for _ddl in SQLITE_TEXT_INDEX:
    event.listen(posts, "after_create",
                 DDL(_ddl).execute_if(dialect="sqlite"))  # type: ignore[no-untyped-call]
event.listen(posts, "after_create",
             DDL(PG_TEXT_INDEX).execute_if(dialect="postgresql"))  # type: ignore[no-untyped-call]

#: failed logins, shared by every web process on the store (the limit per address and user)
web_login_failures = Table(
    "fs_web_login_failures", metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("address", String(64), nullable=False),
    Column("username", String(128), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_fs_web_login_failures_who", "address", "username", "at"),
    Index("ix_fs_web_login_failures_at", "at"),
)

#: a person's e-mail digest of what they follow: their choice (null: the config's) and how
#: far the last one went — the digest's checkpoint, moved in the transaction that writes it
web_digests = Table(
    "fs_web_digests", metadata,
    Column("person", String(128), primary_key=True),
    Column("every", String(16)),  # off | hourly | daily; null: as the config says
    Column("at", String(5)),  # HH:MM of a daily digest, in zone
    Column("zone", String(64)),
    Column("last_end", UTCDateTime),  # the period end the last digest covered
    Column("last_seq", BigInteger, nullable=False, default=0),  # the newest post it covered
    Column("updated_at", UTCDateTime, nullable=False),
)


def _mysql_options(table: Table, bind: Connection, **_: Any) -> None:
    """Gives ``table`` the :data:`MYSQL` options just before it is created on MySQL/MariaDB.

    Not ``Table(..., **MYSQL)``: a table's dialect options are checked against the dialect's
    as it is built, and that imports the MySQL dialect (almost a megabyte) into every daemon,
    SQLite and PostgreSQL ones included. Every table is created through ``create`` or
    ``create_all`` (migrations too), which both send ``before_create``.
    """
    name = bind.dialect.name
    if name == "mysql":
        table.dialect_kwargs.update(MYSQL)
    elif name == "mariadb":  # (``mariadb+pymysql://``: that dialect reads only its own prefix)
        table.dialect_kwargs.update({f"mariadb_{key.removeprefix('mysql_')}": value
                                     for key, value in MYSQL.items()})


for _table in metadata.tables.values():
    event.listen(_table, "before_create", _mysql_options)
