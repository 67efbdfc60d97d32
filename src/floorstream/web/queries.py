"""What the web feed reads from the store: pages of posts, threads, acks, deliveries, follows.

The web process reads the store through an engine of its own (never the pipeline's lock or
connections), so a page being rendered cannot hold a commit up. Every page is a keyset query
on an index: a team feed walks ``ix_fs_post_teams_feed`` (team, post_seq) backwards from the
cursor, the everything feed the posts' primary key, a thread ``ix_fs_posts_thread``; filters
narrow what those walks return, and the cursor of the next page is the last seq shown.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, delete, exists, func, select, text
from sqlalchemy.exc import IntegrityError

from floorstream.model import DIGEST_SOURCE, PEOPLE_SOURCE, Post, Severity, utcnow
from floorstream.store import schema
from floorstream.store.store import Store, _row_post
from floorstream.web import search

__all__ = ["ACK_TYPE", "FOLLOW_KINDS", "Ack", "Delivery", "FeedFilter", "FeedPage",
           "FeedQueries", "Follow", "posts_by_seq"]

#: MariaDB and PostgreSQL: the newest posts a text search tests before it asks the index
SEARCH_PROBE = 2000
#: PostgreSQL: the most hits a text search takes from the GIN index before it calls the
#: words common and walks the posts newest first instead
SEARCH_HITS_CAP = 2000
#: the type of a person's acknowledgement, a post of the ``@people`` source (web.actions)
ACK_TYPE = "post.acknowledged"
#: what a person can follow; each selects posts by one column
FOLLOW_KINDS: tuple[str, ...] = ("subject", "source", "team", "thread")

# The live watcher's statements (several a round, for as long as streams are open; in the
# daemon on its GIL) and the posts of a page by seq, built once: building a statement was
# about half of what executing it cost (0.5 ms against 0.2 ms on SQLite)
_P, _PT, _A = schema.posts, schema.post_teams, schema.web_acks
_HEAD = select(func.max(_P.c.seq))
_SEQS_AFTER = (select(_P.c.seq).where(_P.c.seq > bindparam("after")).order_by(_P.c.seq)
               .limit(bindparam("limit")))
_SEQS_BETWEEN = select(_P.c.seq).where(_P.c.seq > bindparam("after"),
                                       _P.c.seq <= bindparam("upto"))
_POSTS_IN = select(_P).where(_P.c.seq.in_(bindparam("seqs", expanding=True)))
_TEAMS_IN = select(_PT.c.post_id, _PT.c.team).where(
    _PT.c.post_seq.in_(bindparam("seqs", expanding=True)))
_ACK_HEAD = select(func.max(_A.c.id))
_ACKS_AFTER = (select(_A).where(_A.c.id > bindparam("after")).order_by(_A.c.id)
               .limit(bindparam("limit")))


@dataclass(frozen=True)
class FeedFilter:
    """The filters of a feed page; each one given narrows it."""

    severity: Severity | None = None  # at least
    source: str | None = None
    subject: str | None = None
    type: str | None = None  # exact, or a prefix ending in '*' ("machine.*")
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None  # words beginning words of the summary or body (web.search)

    @property
    def empty(self) -> bool:
        return not self.words and all(v is None for v in (
            self.severity, self.source, self.subject, self.type, self.since, self.until))

    @cached_property  # (the live stream asks for every post it pushes)
    def words(self) -> tuple[str, ...]:
        """The text's search words (floorstream.web.search): none, no text filter."""
        return search.words(self.text)

    def conditions(self, dialect: str = "", *, text: bool = True
                   ) -> list[ColumnElement[bool]]:
        """The filters as conditions on ``fs_posts``; the text's through the store's text
        index (``dialect``), left out with ``text=False`` (a query that walks that index
        itself)."""
        p = schema.posts
        found: list[ColumnElement[bool]] = []
        if self.severity is not None:
            found.append(p.c.severity >= int(self.severity))
        if self.source:
            found.append(p.c.source == self.source)
        if self.subject:
            found.append(p.c.subject == self.subject)
        if self.type:
            if self.type.endswith("*"):
                found.append(p.c.type.startswith(self.type[:-1], autoescape=True))
            else:
                found.append(p.c.type == self.type)
        if self.since is not None:
            found.append(p.c.created_at >= self.since)
        if self.until is not None:
            found.append(p.c.created_at < self.until)
        if self.words and text:
            found.append(search.text_condition(dialect, self.words))
        return found

    def matches(self, post: Post) -> bool:
        """The same test in Python, for posts pushed live (they are not queried again)."""
        if self.severity is not None and post.severity < self.severity:
            return False
        if self.source and post.source != self.source:
            return False
        if self.subject and post.subject != self.subject:
            return False
        if self.type and not (post.type.startswith(self.type[:-1]) if self.type.endswith("*")
                              else post.type == self.type):
            return False
        if self.since is not None and post.created_at < self.since:
            return False
        if self.until is not None and post.created_at >= self.until:
            return False
        return search.matches(self.words, post.summary, post.body)


@dataclass(frozen=True)
class FeedPage:
    posts: list[Post]
    seqs: list[int]
    #: pass as ``before`` for the next (older) page; None: this is the last page
    next_before: int | None
    #: the newest seq in the store when the page was read (where live updates start)
    head: int


@dataclass(frozen=True)
class Ack:
    post_id: str
    person: str
    at: datetime
    id: int = 0


@dataclass(frozen=True)
class Delivery:
    sink: str
    team: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class Follow:
    kind: str
    value: str
    created_at: datetime = field(default_factory=utcnow)


class FeedQueries:
    """Reads (and the web's own small writes) against one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- feeds -------------------------------------------------------------------------------

    def head(self) -> int:
        """The newest post's seq (0 for an empty store): an index's last entry."""
        with self.engine.connect() as conn:
            return int(conn.execute(_HEAD).scalar() or 0)

    def page(self, *, teams: Collection[str] | None, readable: Collection[str] | None,
             filters: FeedFilter = FeedFilter(), before: int | None = None,
             limit: int = 50) -> FeedPage:
        """Newest first, below ``before``. ``teams`` None: every team (the everything feed);
        ``readable`` None: the reader may read every team, else only those."""
        wanted = _wanted_teams(teams, readable)
        head = self.head()
        if wanted is not None and not wanted:
            return FeedPage([], [], None, head)
        with self.engine.connect() as conn:
            seqs = self._page_seqs(conn, wanted, filters, before, limit)
            pairs = posts_by_seq(conn, seqs)
        next_before = seqs[-1] if len(seqs) == limit else None
        if wanted is None:  # a person's digest has no team, so only this walk meets it
            pairs = [(s, post) for s, post in pairs if post.source != DIGEST_SOURCE]
        return FeedPage([p for _, p in pairs], [s for s, _ in pairs], next_before, head)

    def _page_seqs(self, conn: Any, wanted: list[str] | None, filters: FeedFilter,
                   before: int | None, limit: int) -> list[int]:
        p, pt = schema.posts, schema.post_teams
        dialect = self.engine.dialect.name
        if filters.words and dialect == "sqlite":
            return self._searched_seqs(conn, wanted, filters, before, limit)
        if filters.words and dialect in ("mysql", "mariadb"):
            return self._mysql_searched_seqs(conn, wanted, filters, before, limit)
        if filters.words and dialect == "postgresql":
            rare = self._pg_searched_seqs(conn, wanted, filters, before, limit)
            if rare is not None:
                return rare
        if wanted is None:
            query: Select[Any] = select(p.c.seq)
            if before is not None:
                query = query.where(p.c.seq < before)
            query = query.where(*filters.conditions(dialect)).order_by(
                p.c.seq.desc()).limit(limit)
            return [int(s) for s in conn.execute(query).scalars()]
        found: set[int] = set()
        for team in wanted:  # one index walk per team, merged: no sort of a team's history
            query = select(pt.c.post_seq).where(pt.c.team == team)
            if before is not None:
                query = query.where(pt.c.post_seq < before)
            if filters.severity is not None:
                query = query.where(pt.c.severity >= int(filters.severity))
            if not filters.empty:
                query = query.join(p, p.c.seq == pt.c.post_seq).where(
                    *filters.conditions(dialect))
            query = query.order_by(pt.c.post_seq.desc()).limit(limit)
            found.update(int(s) for s in conn.execute(query).scalars())
        return sorted(found, reverse=True)[:limit]

    def _searched_seqs(self, conn: Any, wanted: list[str] | None, filters: FeedFilter,
                       before: int | None, limit: int) -> list[int]:
        """SQLite, a page with a text search: the FTS5 index walked newest first from the
        cursor (its rowid is the post's seq), each hit checked against the team and the
        other filters, until the page is full: the posts the words are not in are never
        read."""
        p, pt, f = schema.posts, schema.post_teams, search.fts
        others = filters.conditions("sqlite", text=False)
        found: set[int] = set()
        for team in [None] if wanted is None else wanted:
            # the team and the other filters as correlated EXISTS, so the index stays the
            # outer loop (with a join, SQLite walks the team's posts and probes the index)
            query: Select[Any] = select(f.c.rowid).where(search.sqlite_match(filters.words))
            if team is not None:
                query = query.where(exists().where(pt.c.team == team,
                                                   pt.c.post_seq == f.c.rowid))
            if others:
                query = query.where(exists().where(p.c.seq == f.c.rowid, *others))
            if before is not None:
                query = query.where(f.c.rowid < before)
            query = query.order_by(f.c.rowid.desc()).limit(limit)
            found.update(int(s) for s in conn.execute(query).scalars())
        return sorted(found, reverse=True)[:limit]

    def _pg_searched_seqs(self, conn: Any, wanted: list[str] | None, filters: FeedFilter,
                          before: int | None, limit: int) -> list[int] | None:
        """PostgreSQL, a page with a text search. Left to itself the planner walks the posts
        newest first and computes each one's tsvector until the page is full: quick for a
        common word, 1–15 s for a word in no post of a million. So, as on MariaDB, the newest
        SEARCH_PROBE posts below the cursor are tested first (a common word fills the page
        there); then the GIN index gives the hits below them, through a materialised CTE
        that keeps the index the way in, at most SEARCH_HITS_CAP of them. None when it has
        that many: a word that common yet missing from the newest posts is left to the
        newest-first walk (the caller's)."""
        p, pt = schema.posts, schema.post_teams
        text = search.text_condition("postgresql", filters.words)
        others = filters.conditions("postgresql", text=False)
        if wanted is not None:
            others.append(exists().where(pt.c.post_seq == p.c.seq, pt.c.team.in_(wanted),
                                         *([] if filters.severity is None else
                                           [pt.c.severity >= int(filters.severity)])))
        window: Select[Any] = select(p.c.seq.label("seq"))
        if before is not None:
            window = window.where(p.c.seq < before)
        probe = window.order_by(p.c.seq.desc()).limit(SEARCH_PROBE).subquery()
        found = [int(s) for s in conn.execute(
            select(p.c.seq).join(probe, probe.c.seq == p.c.seq)
            .where(search.pg_row_test(filters.words), *others)
            .order_by(p.c.seq.desc()).limit(limit)).scalars()]
        if len(found) == limit:
            return found
        seen, oldest = conn.execute(select(func.count(), func.min(probe.c.seq))).one()
        if seen < SEARCH_PROBE:
            return found  # the probe saw every post there is below the cursor
        hits = select(p.c.seq).where(text, p.c.seq < oldest).limit(SEARCH_HITS_CAP).cte(
            "search_hits").prefix_with("MATERIALIZED", dialect="postgresql")
        below = [int(s) for s in conn.execute(select(hits.c.seq)).scalars()]
        if len(below) >= SEARCH_HITS_CAP:
            return None
        if below:
            found += [int(s) for s in conn.execute(
                select(p.c.seq).where(p.c.seq.in_(below), *others)
                .order_by(p.c.seq.desc()).limit(limit - len(found))).scalars()]
        return found

    def _mysql_searched_seqs(self, conn: Any, wanted: list[str] | None, filters: FeedFilter,
                             before: int | None, limit: int) -> list[int]:
        """MariaDB, a page with a text search. InnoDB's FULLTEXT index returns every post
        the words are in, unordered, and they are sorted: cheap for rare words, dear for a
        word in every few posts (0.6 s for one in four of 300,000). So the newest
        SEARCH_PROBE posts below the cursor are tested first, without the index; a word that
        common fills the page there. Only when they do not, the index finds the rest below
        them."""
        p, pt = schema.posts, schema.post_teams
        others = filters.conditions("mysql", text=False)
        exact = search.mysql_exact(filters.words)
        found: set[int] = set()
        for team in [None] if wanted is None else wanted:
            key = p.c.seq if team is None else pt.c.post_seq
            window: Select[Any] = select(key.label("seq"))
            if team is not None:
                window = window.where(pt.c.team == team)
            if before is not None:
                window = window.where(key < before)
            probe = window.order_by(key.desc()).limit(SEARCH_PROBE).subquery()
            hits = list(conn.execute(
                select(p.c.seq).join(probe, probe.c.seq == p.c.seq).where(exact, *others)
                .order_by(p.c.seq.desc()).limit(limit)).scalars())
            found.update(int(s) for s in hits)
            if len(hits) == limit:
                continue
            counted = conn.execute(select(func.count(), func.min(probe.c.seq))).one()
            if counted[0] < SEARCH_PROBE:
                continue  # the probe saw every post there is below the cursor
            match = search.mysql_match(filters.words)
            rest: Select[Any] = select(p.c.seq).where(
                p.c.seq < counted[1], exact, *others,
                *([] if match is None else [match]))
            if team is not None:
                rest = rest.where(exists().where(pt.c.team == team,
                                                 pt.c.post_seq == p.c.seq))
            found.update(int(s) for s in conn.execute(
                rest.order_by(p.c.seq.desc()).limit(limit - len(hits))).scalars())
        return sorted(found, reverse=True)[:limit]

    def after(self, seq: int, *, limit: int = 500) -> list[tuple[int, Post]]:
        """Posts newer than ``seq``, oldest first (what the live stream pushes)."""
        with self.engine.connect() as conn:
            seqs = [int(s) for s in conn.execute(
                _SEQS_AFTER, {"after": seq, "limit": limit}).scalars()]
            return posts_by_seq(conn, seqs)

    def seqs_between(self, after: int, upto: int) -> list[int]:
        """The seqs committed in (``after``, ``upto``]: the primary key's entries only, no post
        read — what a storm round needs to know which seqs are still to come."""
        with self.engine.connect() as conn:
            return [int(s) for s in conn.execute(
                _SEQS_BETWEEN, {"after": after, "upto": upto}).scalars()]

    def by_seq(self, seqs: Sequence[int]) -> list[tuple[int, Post]]:
        with self.engine.connect() as conn:
            return posts_by_seq(conn, seqs)

    def post(self, post_id: str) -> tuple[int, Post] | None:
        with self.engine.connect() as conn:
            seq = conn.execute(select(schema.posts.c.seq)
                               .where(schema.posts.c.id == post_id)).scalar_one_or_none()
            if seq is None:
                return None
            found = posts_by_seq(conn, [int(seq)])
        return found[0] if found else None

    def thread(self, thread: str, *, limit: int = 500) -> list[Post]:
        """A thread's newest ``limit`` posts, oldest first."""
        return self.store.thread(thread, limit=limit)

    def followed(self, follows: Sequence[Follow], *, readable: Collection[str] | None,
                 before: int | None = None, limit: int = 50) -> FeedPage:
        """A person's feed: posts of what they follow, newest first."""
        head = self.head()
        p, pt = schema.posts, schema.post_teams
        found: set[int] = set()
        with self.engine.connect() as conn:
            for follow in follows:
                if follow.kind == "team":
                    if readable is not None and follow.value not in readable:
                        continue
                    query = select(pt.c.post_seq.label("seq")).where(pt.c.team == follow.value)
                    column = pt.c.post_seq
                else:
                    query = select(p.c.seq).where(getattr(p.c, follow.kind) == follow.value)
                    column = p.c.seq
                if before is not None:
                    query = query.where(column < before)
                query = query.order_by(column.desc()).limit(limit * 4)
                found.update(int(s) for s in conn.execute(query).scalars())
            ordered = sorted(found, reverse=True)[: limit * 4]
            pairs = posts_by_seq(conn, ordered)
        if readable is not None:
            pairs = [(s, post) for s, post in pairs if set(post.teams) & set(readable)]
        pairs = pairs[:limit]
        return FeedPage([post for _, post in pairs], [s for s, _ in pairs],
                        pairs[-1][0] if len(pairs) == limit else None, head)

    # -- acknowledgements ----------------------------------------------------------------------

    def acks(self, post_ids: Iterable[str]) -> dict[str, list[Ack]]:
        """Who is on each post: the ``fs_web_acks`` rows, and the acknowledgement posts
        answering them (by ``ix_fs_posts_refers_to``) should a row be missing (a crash
        between the commit and the row; web.actions)."""
        a, p = schema.web_acks, schema.posts
        ids = list(dict.fromkeys(post_ids))
        found: dict[str, list[Ack]] = {}
        if not ids:
            return found
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                rows = conn.execute(select(a.c.id, a.c.post_id, a.c.person, a.c.at)
                                    .where(a.c.post_id.in_(chunk)).order_by(a.c.id))
                for row in rows:
                    found.setdefault(row.post_id, []).append(
                        Ack(row.post_id, row.person, row.at, int(row.id)))
                if conn.dialect.name == "sqlite":
                    posted = conn.execute(_SQLITE_ACK_POSTS, {
                        "ids": chunk, "type": ACK_TYPE, "source": PEOPLE_SOURCE})
                else:
                    posted = conn.execute(select(p.c.refers_to, p.c.fields, p.c.created_at)
                                          .where(p.c.refers_to.in_(chunk),
                                                 p.c.type == ACK_TYPE,
                                                 p.c.source == PEOPLE_SOURCE)
                                          .order_by(p.c.seq))
                for post_id, fields, at in posted:
                    person = str((fields or {}).get("actor") or "")
                    known = found.setdefault(post_id, [])
                    if person and all(k.person != person for k in known):
                        known.append(Ack(post_id, person, at))
        return found

    def acknowledge(self, post_id: str, person: str, *, at: datetime | None = None
                    ) -> tuple[Ack, bool]:
        """Record that ``person`` is on it (since ``at``, default now); the existing ack if
        they already were. (The acknowledgement itself is a post: web.actions.)"""
        a = schema.web_acks
        now = at or utcnow()
        try:
            with self.engine.begin() as conn:
                conn.execute(a.insert().values(post_id=post_id, person=person, at=now))
            created = True
        except IntegrityError:
            created = False
        with self.engine.connect() as conn:
            row = conn.execute(select(a).where(a.c.post_id == post_id,
                                               a.c.person == person)).one()
        return Ack(row.post_id, row.person, row.at, int(row.id)), created

    def ack_head(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(_ACK_HEAD).scalar() or 0)

    def acks_after(self, ack_id: int, *, limit: int = 500) -> list[Ack]:
        with self.engine.connect() as conn:
            rows = conn.execute(_ACKS_AFTER, {"after": ack_id, "limit": limit})
            return [Ack(r.post_id, r.person, r.at, int(r.id)) for r in rows]

    # -- deliveries ------------------------------------------------------------------------------

    def deliveries(self, post_id: str) -> list[Delivery]:
        d = schema.deliveries
        with self.engine.connect() as conn:
            rows = conn.execute(select(d).where(d.c.post_id == post_id).order_by(d.c.id))
            return [Delivery(r.sink, r.team, r.status, int(r.attempts), r.last_error,
                             r.created_at, r.delivered_at) for r in rows]

    # -- follows -----------------------------------------------------------------------------------

    def follows(self, person: str) -> list[Follow]:
        f = schema.web_follows
        with self.engine.connect() as conn:
            rows = conn.execute(select(f.c.kind, f.c.value, f.c.created_at)
                                .where(f.c.person == person).order_by(f.c.kind, f.c.value))
            return [Follow(r.kind, r.value, r.created_at) for r in rows]

    def follow(self, person: str, kind: str, value: str) -> bool:
        """True if this is new."""
        if kind not in FOLLOW_KINDS:
            raise ValueError(f"cannot follow a {kind!r}; one of {', '.join(FOLLOW_KINDS)}")
        try:
            with self.engine.begin() as conn:
                conn.execute(schema.web_follows.insert().values(
                    person=person, kind=kind, value=value, created_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def unfollow(self, person: str, kind: str, value: str) -> bool:
        f = schema.web_follows
        with self.engine.begin() as conn:
            gone = conn.execute(delete(f).where(f.c.person == person, f.c.kind == kind,
                                                f.c.value == value)).rowcount
        return bool(gone)

    # -- what exists, for the filter menus ---------------------------------------------------------

    def teams(self) -> list[str]:
        return self.store.teams()


#: SQLite: the acknowledgement posts of some posts by ``ix_fs_posts_refers_to``, named:
#: after ANALYZE its statistics count the posts without a ``refers_to`` (nearly all) as one
#: value, so the planner walked every post in seq order instead (264-333 ms a page with a
#: million posts; SQLAlchemy renders no index hint for SQLite, hence the text)
_SQLITE_ACK_POSTS = text(
    "SELECT refers_to, fields, created_at FROM fs_posts INDEXED BY ix_fs_posts_refers_to "
    "WHERE refers_to IN :ids AND type = :type AND source = :source ORDER BY seq"
).bindparams(bindparam("ids", expanding=True)).columns(
    schema.posts.c.refers_to, schema.posts.c.fields, schema.posts.c.created_at)


def _wanted_teams(teams: Collection[str] | None, readable: Collection[str] | None
                  ) -> list[str] | None:
    if teams is None:
        return None if readable is None else sorted(readable)
    if readable is None:
        return sorted(teams)
    return sorted(t for t in teams if t in readable)



def posts_by_seq(conn: Any, seqs: Sequence[int]) -> list[tuple[int, Post]]:
    """(seq, post) for these seqs, in their order; a seq pruned meanwhile is left out."""
    if not seqs:
        return []
    wanted = {"seqs": list(seqs)}
    rows = {int(r["seq"]): r for r in conn.execute(_POSTS_IN, wanted).mappings()}
    teams: dict[str, list[str]] = {}
    for post_id, team in conn.execute(_TEAMS_IN, wanted):
        teams.setdefault(post_id, []).append(team)
    return [(s, _row_post(rows[s], teams)) for s in seqs if s in rows]
