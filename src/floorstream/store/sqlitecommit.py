"""The hot part of :meth:`Store.commit` on SQLite, through the driver's cursor.

Why: at a steady rate the pipeline commits a few hundred small batches a second (issue 16:
a paced 5,000 msgs/s stream, one transaction per ~10 batches, each with a post or two, a
checkpoint and a detector state row). Through SQLAlchemy each of those 5–7 statements paid
its statement machinery — the compiled cache's key, the expanding ``IN`` list compiled anew
for every length, the execution context and the result wrapper — about as much as SQLite's
own work for the statement. Here the same statements, in the same order and in the same
transaction (the caller's connection; pysqlite opens the transaction at the first write, as
it does under SQLAlchemy), go to ``sqlite3`` directly with ``?`` parameters: the values are
encoded exactly as SQLAlchemy binds them on SQLite (JSON text, the stamp text of
:class:`~floorstream.store.schema.UTCDateTime`), so rows written either way are the same.

Everything rarer (outbox rows, quarantine, the fleet's fence) stays with SQLAlchemy in
:meth:`Store.commit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from floorstream.model import Post
from floorstream.store import schema
from floorstream.store.schema import json_text

__all__ = ["driver_errors", "post_row", "stamp", "write_checkpoints", "write_posts",
           "write_states"]

#: SQLite's bound-parameter limit is 32,766 since 3.32 (999 before): chunks stay far below
_CHUNK = 500

_STAMP = schema.UTCDateTime()

#: a post's columns, in the order of :func:`post_row`
_POST_COLUMNS = ("id", "type", "source", "subject", "severity", "summary", "body", "tags",
                 "links", "fields", "routing", "clears", "occurred_at", "created_at", "thread",
                 "relation", "refers_to")
_POST_INSERT = (
    f"INSERT INTO fs_posts ({', '.join(_POST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_POST_COLUMNS))}) ON CONFLICT DO NOTHING")
_TEAM_INSERT = (
    "INSERT INTO fs_post_teams (team, post_id, post_seq, severity, created_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
_STATE_UPSERT = (
    "INSERT INTO fs_detector_state (source, subject, detector, state, updated_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, subject, detector) DO UPDATE SET "
    "state = excluded.state, updated_at = excluded.updated_at")
_CHECKPOINT_UPSERT = (
    "INSERT INTO fs_checkpoints (source, position, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (source) DO UPDATE SET "
    "position = excluded.position, updated_at = excluded.updated_at")


def stamp(value: datetime, dialect: Any) -> Any:
    """A timestamp as :class:`~floorstream.store.schema.UTCDateTime` binds it on SQLite."""
    return _STAMP.process_bind_param(value, dialect)


@contextmanager
def driver_errors(dialect: Any) -> Iterator[None]:
    """The driver's exceptions as SQLAlchemy raises them (``IntegrityError``,
    ``OperationalError`` for a locked database, …): the pipeline's retry and its callers tell
    failures apart by those classes, whichever way a statement was sent."""
    error = dialect.loaded_dbapi.Error
    try:
        yield
    except error as exc:
        raise DBAPIError.instance(None, None, exc, error, dialect=dialect) from exc


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def post_row(post: Post, dialect: Any) -> tuple[Any, ...]:
    """A post's row as SQLAlchemy would bind it on SQLite (JSON text, stamp text)."""
    return (post.id, post.type, post.source, post.subject, int(post.severity), post.summary,
            post.body, json_text(post.tags), json_text(post.links), json_text(post.fields),
            json_text(post.routing), post.clears, stamp(post.occurred_at, dialect),
            stamp(post.created_at, dialect), post.thread or post.subject, post.relation,
            post.refers_to)


def write_posts(db: Any, posts: Sequence[Post], dialect: Any) -> list[Post]:
    """Insert the posts not already stored (a replay's are), their words for the text index
    and their team rows; returns the new ones, first occurrence of an id kept.

    ``db`` is the transaction's ``sqlite3.Connection``."""
    ids = [post.id for post in posts]
    existing: set[str] = set()
    for chunk in _chunks(ids):
        existing.update(row[0] for row in db.execute(
            f"SELECT id FROM fs_posts WHERE id IN ({_marks(len(chunk))})", chunk))
    new_posts: list[Post] = []
    for post in posts:
        if post.id not in existing:
            existing.add(post.id)
            new_posts.append(post)
    if not new_posts:
        return new_posts
    db.executemany(_POST_INSERT, [post_row(post, dialect) for post in new_posts])
    new_ids = [post.id for post in new_posts]
    seqs: dict[str, int] = {}
    for chunk in _chunks(new_ids):
        seqs.update(db.execute(
            f"SELECT id, seq FROM fs_posts WHERE id IN ({_marks(len(chunk))})", chunk))
        # the text index: one statement, not a trigger per row (schema.SQLITE_TEXT_ADD_SQL)
        db.execute(schema.SQLITE_TEXT_ADD_SQL.format(seqs=f"({_marks(len(chunk))})"),
                   [seqs[post_id] for post_id in chunk])
    teams = [(team, post.id, seqs[post.id], int(post.severity), stamp(post.created_at, dialect))
             for post in new_posts for team in post.teams]
    if teams:
        db.executemany(_TEAM_INSERT, teams)
    return new_posts


def write_checkpoints(db: Any, checkpoints: dict[str, str], now: Any) -> None:
    """Each source's position (``now`` already bound by :func:`stamp`)."""
    if checkpoints:
        db.executemany(_CHECKPOINT_UPSERT,
                       [(source, position, now) for source, position in checkpoints.items()])


def write_states(db: Any, states: dict[tuple[str, str, str], dict[str, Any]], now: Any) -> None:
    """Detector state rows, one statement for the batch (a carrier page may bring a
    thousand stories): SQLAlchemy's per-row parameter processing was most of their cost."""
    if states:
        db.executemany(_STATE_UPSERT, [(source, subject, detector, json_text(data), now)
                                       for (source, subject, detector), data in states.items()])
