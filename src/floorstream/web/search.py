"""Text search of the feed: words, found through the store's text index, never a scan.

A search is words: letters and digits, split at everything else (``press-07`` is ``press``
and ``07``; ``mrp_production:42`` is ``mrp``, ``production`` and ``42``), case-insensitive,
no stemming, no stop words. A post matches when every search word begins one of the words
of its summary or body (``pres`` finds "Press 7 stopped"). That is what both indexes answer
directly:

* SQLite: the FTS5 table ``fs_posts_fts`` (unicode61 words, prefix queries ``"pres"*``),
  which a feed page walks from its cursor back, newest first, like any other index;
* PostgreSQL: the GIN index ``ix_fs_posts_text`` on ``to_tsvector('simple', …)`` of the
  text with everything but letters and digits made a space (prefix queries ``pres:*``);
* MariaDB / MySQL: no index. InnoDB's FULLTEXT over the store's binary utf8mb4 collation
  matches case-sensitively and leaves out words under three letters (``07``), so a search
  there still reads the feed's posts from the cursor back, as before schema v8.

The same test runs in Python (:func:`matches`) for the posts the live stream pushes, so a
filtered page and its stream agree.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, and_, column, func, literal_column, or_, select, table

from floorstream.store import schema

__all__ = ["MAX_WORDS", "fts", "matches", "sqlite_match", "text_condition", "words"]

_WORD = re.compile(r"[^\W_]+")
#: search words used at most (more narrow nothing a person would type)
MAX_WORDS = 8

#: the SQLite FTS5 table (a virtual table: not in the metadata; see schema.SQLITE_TEXT_INDEX)
fts = table("fs_posts_fts", column("rowid"), column("fs_posts_fts"))


def words(text: str | None) -> tuple[str, ...]:
    """The search words of ``text``: lower case, once each, in order, at most MAX_WORDS."""
    if not text:
        return ()
    found = dict.fromkeys(w.lower()[:64] for w in _WORD.findall(text))
    return tuple(found)[:MAX_WORDS]


def matches(wanted: tuple[str, ...], summary: str, body: str | None) -> bool:
    """Every word of ``wanted`` begins a word of the summary or the body."""
    if not wanted:
        return True
    have = {w.lower() for w in _WORD.findall(f"{summary} {body or ''}")}
    return all(any(h.startswith(w) for h in have) for w in wanted)


def sqlite_match(wanted: tuple[str, ...]) -> ColumnElement[bool]:
    """``fs_posts_fts MATCH '"w1"* "w2"*'`` (every word, each as a prefix)."""
    query = " ".join('"' + w.replace('"', '""') + '"*' for w in wanted)
    return fts.c.fs_posts_fts.op("MATCH")(query)


def text_condition(dialect: str, wanted: tuple[str, ...]) -> ColumnElement[bool]:
    """A condition on ``fs_posts`` that the store answers from its text index."""
    p = schema.posts
    if dialect == "sqlite":
        return p.c.seq.in_(select(fts.c.rowid).where(sqlite_match(wanted)))
    if dialect == "postgresql":
        query = " & ".join(f"{w}:*" for w in wanted)  # words are letters and digits only
        return literal_column(schema.PG_TEXT_DOCUMENT).bool_op("@@")(
            func.to_tsquery(literal_column("'simple'::regconfig"), query))
    # MariaDB / MySQL: no index (see the module docstring); the nearest test without one
    text: Any = func.lower(p.c.summary + " " + func.coalesce(p.c.body, ""))
    return and_(*(or_(text.startswith(w, autoescape=True),
                      text.regexp_match(f"[^[:alnum:]]{w}")) for w in wanted))
