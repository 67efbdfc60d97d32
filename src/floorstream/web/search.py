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
* MariaDB / MySQL: a FULLTEXT index on ``search_words``, a stored column of the same words
  in lower case (InnoDB's full-text search follows the column's collation, and the store's
  is binary: case-sensitive). InnoDB leaves out words under three letters and its stop
  words, so the ``MATCH`` gets only the search words it can answer for (none of them a
  stop word or the beginning of one), and every word is then checked exactly on the
  column (``' ' || search_words LIKE '% word%'``). A search of only short words (``07``)
  has no index to use and reads the feed from the cursor back.

The same test runs in Python (:func:`matches`) for the posts the live stream pushes, so a
filtered page and its stream agree.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, and_, column, func, literal_column, select, table

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


def pg_row_test(wanted: tuple[str, ...]) -> ColumnElement[bool]:
    """PostgreSQL: the words' test computed on each row the query reads, never through
    ``ix_fs_posts_text`` (the document concatenated with an empty tsvector is not the
    indexed expression): for a walk over a few newest posts, where a planner that took the
    index would first collect every post the words are in (a million for a common one)."""
    query = " & ".join(f"{w}:*" for w in wanted)
    return literal_column(f"({schema.PG_TEXT_DOCUMENT} || ''::tsvector)").bool_op("@@")(
        func.to_tsquery(literal_column("'simple'::regconfig"), query))


def text_condition(dialect: str, wanted: tuple[str, ...]) -> ColumnElement[bool]:
    """A condition on ``fs_posts`` that the store answers from its text index."""
    p = schema.posts
    if dialect == "sqlite":
        return p.c.seq.in_(select(fts.c.rowid).where(sqlite_match(wanted)))
    if dialect == "postgresql":
        query = " & ".join(f"{w}:*" for w in wanted)  # words are letters and digits only
        return literal_column(schema.PG_TEXT_DOCUMENT).bool_op("@@")(
            func.to_tsquery(literal_column("'simple'::regconfig"), query))
    # MariaDB / MySQL (see the module docstring): the index narrows, the column decides
    found = mysql_match(wanted)
    exact = mysql_exact(wanted)
    return exact if found is None else and_(found, exact)


def mysql_exact(wanted: tuple[str, ...]) -> ColumnElement[bool]:
    """MariaDB: every word begins a word of ``search_words`` (no index: a test per row)."""
    spaced: Any = func.concat(" ", literal_column("fs_posts.search_words"))
    # (words are letters and digits only: nothing to escape in the pattern)
    return and_(*(spaced.like(f"% {w}%") for w in wanted))


def mysql_match(wanted: tuple[str, ...]) -> ColumnElement[bool] | None:
    """MariaDB: the FULLTEXT ``MATCH`` of the words InnoDB indexes; None when none is."""
    from sqlalchemy.dialects import mysql  # here: a web feed on SQLite/PostgreSQL never needs it

    indexed = [w for w in wanted if len(w) >= 3 and not any(
        stop.startswith(w) for stop in INNODB_STOPWORDS)]
    if not indexed:
        return None
    against = " ".join(f"+{w}*" for w in indexed)
    found: ColumnElement[bool] = mysql.match(
        literal_column("fs_posts.search_words"), against=against).in_boolean_mode()
    return found


#: InnoDB's default full-text stop words (INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD):
#: never in the index, so never asked of it
INNODB_STOPWORDS = frozenset((
    "a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how",
    "i", "in", "is", "it", "la", "of", "on", "or", "that", "the", "this", "to", "was", "what",
    "when", "where", "who", "will", "with", "und", "www"))
