"""Personal e-mail digests: what a person follows on the web feed, by e-mail, hourly or daily.

A person (``web.people``) with an ``email`` gets a digest when the config gives them one
(``digest: {every: daily, at: "07:00", timezone: Europe/Berlin}``) or they choose one on their
page or through the API (``fs_web_digests``: their choice wins over the config's). At the end
of each period the daemon's :class:`DigestService` gathers the posts of what they follow —
subjects, sources, teams, threads — committed since their last digest, of the teams they may
read, and commits **one post** (source ``@digest``, no team, addressed to them in
``fields["to"]``) with **one outbox row** for ``web.digest_sink``, in the same transaction
that moves their digest's checkpoint (``last_end``, ``last_seq``). From there it is the
outbox's: the email sink's workers send it with retries, leases and an idempotency key like
any post, and it counts in that sink's health and metrics. Nothing new, no digest (the
checkpoint still moves).

Exactly once: the checkpoint moves by compare-and-set (``WHERE last_end = … AND last_seq =
…``) in the digest's own transaction, so of several daemons building the same person's
digest at once exactly one commits it and the others roll back; the post's id derives from
the person and the period's end, so even a checkpoint lost with its database could not
commit that digest twice; a restart finds the period done. A digest covers the posts with a
seq above the last one's, up to the newest when it is built, so nothing falls between two.
(On PostgreSQL a post's seq is drawn at insert: a post whose transaction is still open while
a digest is built, with a seq below one already committed, is not in any digest.)
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, update

from floorstream.config.settings import Config
from floorstream.delivery.personal_schedule import Schedule
from floorstream.logs import get_logger
from floorstream.model import DIGEST_SOURCE, PEOPLE_SOURCE, Post, Severity, utcnow
from floorstream.store import schema
from floorstream.store.dialect import insert_ignore, upsert
from floorstream.store.store import Store, _post_row, _row_post

__all__ = ["DIGEST_TYPE", "DigestService", "PersonalDigests", "digest_id", "lane"]

log = get_logger("floorstream.delivery")

DIGEST_TYPE = "digest.personal"
#: posts listed in a mail at most (the rest: "… more in your feed")
MAX_LINES = 60
#: posts a digest reads at most per thing followed
MAX_READ = 500
#: seconds after a period's end before its digest is built (posts of its last moment commit)
GRACE = 5.0
KINDS = ("subject", "source", "team", "thread")


def digest_id(person: str, end: datetime) -> str:
    """The digest of ``person`` for the period ending at ``end``: the same on every daemon."""
    return hashlib.blake2b(f"digest\x1f{person}\x1f{end.isoformat()}".encode(),
                           digest_size=16).hexdigest()


def lane(person: str) -> str:
    """The outbox lane (the ``team`` column) of a person's digests: their own."""
    return f"@{person}"[:64]


@dataclass(frozen=True)
class Choice:
    """A person's digest as it stands: the schedule and where it came from."""

    schedule: Schedule
    chosen: bool  # by the person (page or API), not the config


class PersonalDigests:
    """Builds and commits the due digests (:meth:`run_once`); reads and sets choices."""

    def __init__(self, config: Config, store: Store, *, grace: float = GRACE) -> None:
        self.config = config
        self.web = config.settings.web
        self.store = store
        self.engine = store.engine
        self.grace = grace
        self.base_url = (self.web.base_url or "").rstrip("/")
        #: digests committed and people passed over for nothing new (health, metrics)
        self.sent = 0
        self.empty = 0
        self.last_run: datetime | None = None
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.web.digest_sink is not None

    # -- choices -------------------------------------------------------------------------------

    def choice(self, person: str) -> Choice | None:
        """The person's digest: theirs, else the config's; None: they can have none (no
        address, or no digest sink) — or have none yet (``Choice`` with ``every`` off)."""
        found = self.web.people.get(person)
        if found is None or not found.email or not self.enabled:
            return None
        t = schema.web_digests
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.every, t.c.at, t.c.zone)
                               .where(t.c.person == person)).first()
        if row is not None and row.every:
            return Choice(Schedule.parse(row.every, row.at, row.zone), True)
        if found.digest is not None:
            return Choice(found.digest.schedule(), False)
        return Choice(Schedule("off"), False)

    def choose(self, person: str, schedule: Schedule) -> None:
        """The person's own choice (their page, the API): kept over the config's."""
        with self.engine.begin() as conn:
            upsert(conn, schema.web_digests, [{
                "person": person, "every": schedule.every, "at": schedule.at_text,
                "zone": schedule.zone, "updated_at": utcnow()}], keys=("person",))

    # -- building --------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> list[str]:
        """Commit every digest due at ``now``; returns their ids."""
        now = now or utcnow()
        done: list[str] = []
        if not self.enabled:
            return done
        for person in self.web.people:
            choice = self.choice(person)
            if choice is None or choice.schedule.off:
                continue
            end = choice.schedule.period_end(
                now - timedelta(seconds=self.grace))
            if end is None:
                continue
            made = self._person(person, choice.schedule, end)
            if made is not None:
                done.append(made)
        self.last_run = now
        return done

    def _person(self, person: str, schedule: Schedule, end: datetime) -> str | None:
        t = schema.web_digests
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.last_end, t.c.last_seq)
                               .where(t.c.person == person)).first()
        if row is not None and row.last_end is not None and row.last_end >= end:
            return None  # this period's digest is done (here or by another daemon)
        head = self._head()
        if row is None or row.last_end is None:
            # the first period: start from here (no digest of everything before)
            self._move(person, row, end, head)
            return None
        posts = self._followed(person, int(row.last_seq), head)
        post = self._digest(person, schedule, row.last_end, end, posts) if posts else None
        if not self._move(person, row, end, head, post):
            return None
        if post is None:
            self.empty += 1
            return None
        self.sent += 1
        log.info("personal_digest_committed", person=person, posts=len(posts),
                 until=end.isoformat())
        return post.id

    def _head(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(schema.posts.c.seq))).scalar() or 0)

    def _move(self, person: str, row: Any, end: datetime, head: int,
              post: Post | None = None) -> bool:
        """Move the checkpoint from ``row`` to (end, head) and commit ``post`` with its
        outbox row, all in one transaction; False when another daemon moved it first."""
        t = schema.web_digests
        now = utcnow()
        with self.engine.begin() as conn:
            if row is None:
                insert_ignore(conn, t, [{"person": person, "last_end": end, "last_seq": head,
                                         "updated_at": now}])
                moved: bool = conn.execute(select(t.c.last_end).where(
                    t.c.person == person)).scalar_one() == end
                # (an insert that found a row leaves it: moved only if it is ours, and
                # another daemon's first period ends at the same time: no post either way)
                return moved
            query = update(t).where(t.c.person == person, t.c.last_seq == row.last_seq)
            query = query.where(t.c.last_end.is_(None) if row.last_end is None
                                else t.c.last_end == row.last_end)
            if conn.execute(query.values(last_end=end, last_seq=head,
                                         updated_at=now)).rowcount != 1:
                conn.rollback()
                return False
            if post is not None:
                self._commit_post(conn, person, post)
        return True

    def _commit_post(self, conn: Connection, person: str, post: Post) -> None:
        p = schema.posts
        sink = self.web.digest_sink
        assert sink is not None
        insert_ignore(conn, p, [_post_row(post)])
        seq = conn.execute(select(p.c.seq).where(p.c.id == post.id)).scalar_one()
        if conn.dialect.name == "sqlite":  # the text index, as Store.commit keeps it
            conn.execute(schema.SQLITE_TEXT_ADD, {"seqs": [int(seq)]})
        now = utcnow()
        insert_ignore(conn, schema.deliveries, [{
            "post_id": post.id, "team": lane(person), "sink": sink, "status": "pending",
            "attempts": 0, "next_attempt_at": now, "created_at": now}])

    def _followed(self, person: str, after: int, head: int) -> list[Post]:
        """The posts of what ``person`` follows in seqs (after, head], of teams they may
        read, oldest first; not digests, not their own comments and acknowledgements."""
        f, p, pt = schema.web_follows, schema.posts, schema.post_teams
        found = self.web.people[person]
        readable = None if "*" in found.teams else set(found.teams)
        seqs: set[int] = set()
        with self.engine.connect() as conn:
            follows = list(conn.execute(select(f.c.kind, f.c.value)
                                        .where(f.c.person == person)))
            for kind, value in follows:
                if kind not in KINDS:
                    continue
                if kind == "team":
                    if readable is not None and value not in readable:
                        continue
                    query = select(pt.c.post_seq).where(
                        pt.c.team == value, pt.c.post_seq > after, pt.c.post_seq <= head
                    ).order_by(pt.c.post_seq.desc())
                else:
                    column: Any = p.c[kind]
                    if kind == "source":
                        # (source || ''): not the (source, subject, seq) index, whose walk
                        # reads every post of the source; the seq window bounds the read
                        column = column.concat("")
                    query = select(p.c.seq).where(
                        column == value, p.c.seq > after, p.c.seq <= head
                    ).order_by(p.c.seq.desc())
                seqs.update(int(s) for s in conn.execute(query.limit(MAX_READ)).scalars())
            ordered = sorted(seqs)[-MAX_READ * 2:]
            rows = {int(r["seq"]): r for r in conn.execute(
                select(p).where(p.c.seq.in_(ordered))).mappings()} if ordered else {}
            teams: dict[str, list[str]] = {}
            if ordered:
                for post_id, team in conn.execute(select(pt.c.post_id, pt.c.team)
                                                  .where(pt.c.post_seq.in_(ordered))):
                    teams.setdefault(post_id, []).append(team)
        posts = [_row_post(rows[s], teams) for s in ordered if s in rows]
        return [post for post in posts
                if post.source != DIGEST_SOURCE
                and not (post.source == PEOPLE_SOURCE and post.fields.get("actor") == person)
                and (readable is None or any(t in readable for t in post.teams))]

    def _digest(self, person: str, schedule: Schedule, since: datetime, end: datetime,
                posts: Sequence[Post]) -> Post:
        """One post listing ``posts`` grouped by subject, each with its permalink."""
        zone = ZoneInfo(schedule.zone)
        found = self.web.people[person]
        name = found.name or person
        subjects: dict[str, list[Post]] = {}
        for post in posts:
            subjects.setdefault(post.subject, []).append(post)
        noun = "post" if len(posts) == 1 else "posts"
        about = "subject" if len(subjects) == 1 else "subjects"
        local_since = since.astimezone(zone)
        summary = (f"Digest for {name}: {len(posts)} {noun} on {len(subjects)} {about} you "
                   f"follow since {local_since:%d %b %H:%M} {schedule.zone}")
        lines: list[str] = []
        shown = 0
        for subject, items in sorted(subjects.items(),
                                     key=lambda kv: -max(p.severity for p in kv[1])):
            lines.append(f"{subject} ({len(items)})")
            for post in items:
                if shown >= MAX_LINES:
                    break
                shown += 1
                link = f"  {self.base_url}/posts/{post.id}" if self.base_url else ""
                lines.append(f"  • {post.created_at.astimezone(zone):%H:%M} "
                             f"{post.severity.label:<8} {post.summary}{link}")
            lines.append("")
        if shown < len(posts):
            lines.append(f"… {len(posts) - shown} more in your feed"
                         + (f": {self.base_url}/me" if self.base_url else ""))
        links = {"your feed": f"{self.base_url}/me"} if self.base_url else {}
        return Post(
            id=digest_id(person, end), type=DIGEST_TYPE, source=DIGEST_SOURCE,
            subject=f"digest of {person}", summary=summary[:200],
            body="\n".join(lines).rstrip(), severity=max(
                (p.severity for p in posts), default=Severity.INFO),
            teams=(), links=links, occurred_at=end, thread=f"{DIGEST_SOURCE}:{person}",
            fields={"to": [found.email], "person": person, "count": len(posts),
                    "posts": [p.id for p in posts][:MAX_READ], "since": since.isoformat(),
                    "until": end.isoformat(), "schedule": schedule.describe()})


class DigestService:
    """The daemon's digest thread (``start()``/``stop()`` like its other services): looks for
    due digests every ``tick`` seconds, a read per person when none is due."""

    def __init__(self, config: Config, store: Store, *, tick: float = 30.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.digests = PersonalDigests(config, store)
        self.tick = tick
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="floorstream-digests",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.digests.run_once(self.clock())
                self.digests.last_error = None
            except Exception as exc:  # the store is away: the next tick tries again
                self.digests.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("personal_digest_failed", error=self.digests.last_error)
            self._stop.wait(self.tick)

    def health(self) -> dict[str, Any]:
        d = self.digests
        return {"sent": d.sent, "empty": d.empty,
                "last_run": d.last_run.isoformat() if d.last_run else None,
                "last_error": d.last_error}
