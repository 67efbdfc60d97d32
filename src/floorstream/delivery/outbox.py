"""The outbox table as a work queue: claim due rows, then record what happened to them.

Rows are written by the pipeline in the same transaction as their post (status ``pending``).
A worker claims rows of one *lane* — one (sink, team) pair — at a time, so the posts of a team
reach a sink in commit order: a lane is skipped while any of its rows is being sent or waits
for a retry. Claiming sets ``status='sending'``, a random claim token, and a short lease
(:data:`LEASE`, 6 s) in ``next_attempt_at``. While a worker holds the claim — a request in
flight included — a renewer thread of its process pushes the lease forward every
:data:`LEASE` / 4 seconds, so a slow sink never loses its claim, and a worker that dies (kill -9,
a crash, a lost host) stops renewing: its rows' lease runs out within :data:`LEASE` seconds and
the next claim puts them back in the queue (at-least-once; the idempotency key lets services
drop the copy). Every later update names the claim token, so a worker that lost its lease cannot
overwrite the outcome of the one that took over; a worker checks that its lease is still
renewed before each send and gives the claim up when it is not.

Several daemons can share the outbox on PostgreSQL and on MariaDB ≥ 10.6 (MySQL ≥ 8): rows are
selected ``FOR UPDATE SKIP LOCKED`` after the claimer took a non-blocking lock on the lane
(:mod:`floorstream.delivery.lanes`), so no row is claimed twice and a lane is never split
(which would break its order). On SQLite one process claims at a time, and the conditional
``UPDATE … WHERE status IN ('pending', 'held')`` plus the claim token still rule out a double
claim.

A claim costs a read-only query to find due lanes (an idle worker never takes a write lock) and
one short transaction per lane; outcomes are written in one statement per claim, not per row.

Statuses: ``pending`` (due at ``next_attempt_at``), ``held`` (for a digest released at
``next_attempt_at``), ``sending``, ``delivered``, ``failed``.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Update,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from floorstream.delivery.lanes import lane_transaction, supports_skip_locked
from floorstream.delivery.policy import TeamPolicy
from floorstream.logs import get_logger
from floorstream.model import Post, Severity, utcnow
from floorstream.store import schema

__all__ = ["LEASE", "MAX_HOLD", "Claim", "ClaimedRow", "DeliveryRow", "Outbox"]

log = get_logger("floorstream.delivery")

#: seconds a claim is leased for; renewed every LEASE / 4 s while its worker holds it, so after
#: a crash the lane is free again within this time (docs/delivery.md, "Crashes and leases")
LEASE = 6.0
#: seconds after which a claim is no longer renewed: a sink call hung this long (a plugin sink
#: without a timeout) gives its lane up to other workers, as the old 5-minute lease did
MAX_HOLD = 300.0

_DEFAULT_POLICY = TeamPolicy()
d = schema.deliveries


@dataclass
class _Held:
    """A lane a worker of this process holds: reserved while claiming, then its claim."""

    started: float  # time.monotonic() when the claim began (its lease counts from there)
    token: str | None = None
    ids: tuple[int, ...] = ()  # the claimed rows (renewals name them: the primary key index)
    renewed: float = 0.0  # monotonic time from which the lease was last confirmed
    lost: bool = False  # a renewal found none of the rows still ours


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    post_id: str
    attempts: int  # including the attempt this claim is for
    created_at: datetime


@dataclass(frozen=True)
class Claim:
    """Rows of one lane a worker now owns: sent one by one, then the digest as one message."""

    sink: str
    team: str
    token: str
    immediate: tuple[ClaimedRow, ...]
    digest: tuple[ClaimedRow, ...]
    leased_until: datetime
    #: the claimed rows' posts by id, read in the claim's transaction (one round trip less)
    posts: Mapping[str, Post] = field(default_factory=dict)
    #: other lanes of the sink were due too: wake another worker for them
    more: bool = False


@dataclass(frozen=True)
class DeliveryRow:
    """An outbox row as ``floorstream deliveries`` shows it."""

    id: int
    post_id: str
    team: str
    sink: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    summary: str | None


def _transient() -> Retrying:
    """Outcome writes retried on deadlocks and lost connections: once a post is sent, its
    row must say so, or the lease runs out and it is sent again."""
    return Retrying(retry=retry_if_exception_type(DBAPIError), stop=stop_after_attempt(8),
                    wait=wait_random_exponential(multiplier=0.01, max=1.0), reraise=True)


class Outbox:
    """The claim/finish protocol over ``fs_deliveries`` (see the module docstring)."""

    def __init__(self, engine: Engine, *, lease: float = LEASE, renew_every: float | None = None,
                 max_hold: float = MAX_HOLD) -> None:
        self.engine = engine
        self.lease = lease
        self.renew_every = renew_every if renew_every is not None else lease / 4
        self.max_hold = max_hold
        self.skip_locked = supports_skip_locked(engine)
        # lanes this process's workers hold: other workers skip them without a query, and the
        # renewer keeps their leases. Other daemons' claims are seen through the lane lock and
        # the busy check.
        self._mine: dict[tuple[str, str], _Held] = {}
        self._mine_lock = threading.Lock()
        self._renewer: threading.Thread | None = None  # runs while _mine is not empty
        self._renew_lock = threading.Lock()  # held by the renewer while it writes

    # -- claiming -----------------------------------------------------------------------------

    def claim(self, sink: str, policies: Mapping[str, TeamPolicy], *, limit: int = 100,
              digest_limit: int = 500, now: datetime | None = None) -> Claim | None:
        """Claim the due rows of one lane of ``sink``; None when no lane has work.

        The claim's lease is renewed until :meth:`finished` is called for its lane."""
        started = time.monotonic()  # before ``now``: the lease is never thought longer than it is
        now = now or utcnow()
        due = self.due_lanes(sink, now)
        lanes = [team for team in due if not self._held_here(sink, team)]
        random.shuffle(lanes)  # several workers of one sink spread over the lanes
        for team in lanes:
            with self._mine_lock:  # reserve the lane in this process before asking the store
                if self._held_here(sink, team):
                    continue
                self._mine[(sink, team)] = _Held(started)
            claim = None
            try:
                with lane_transaction(self.engine, sink, team, shared=self.skip_locked) as conn:
                    if conn is not None:  # else another daemon is claiming it right now
                        claim = self._claim_lane(conn, sink, team,
                                                 policies.get(team, _DEFAULT_POLICY), limit,
                                                 digest_limit, now, due[team])
            finally:
                if claim is None:
                    self.finished(sink, team)
            if claim is not None:
                self._track(claim, started)
                return replace(claim, more=len(lanes) > 1)
        return None

    def finished(self, sink: str, team: str, token: str | None = None) -> None:
        """The worker is done with its claim on this lane (outcomes written): its lease is no
        longer renewed, and other workers of this process may claim the lane. With ``token``,
        only that claim (a worker back from a call that hung past max_hold leaves the lane's
        next claim alone)."""
        with self._mine_lock:
            held = self._mine.get((sink, team))
            if held is not None and (token is None or held.token == token):
                del self._mine[(sink, team)]

    def _held_here(self, sink: str, team: str) -> bool:
        held = self._mine.get((sink, team))
        # a claim past max_hold (its worker hangs in a sink call) no longer keeps the lane
        return held is not None and time.monotonic() - held.started < self.max_hold + self.lease

    # -- leases ---------------------------------------------------------------------------------

    def holds(self, claim: Claim) -> bool:
        """True while ``claim``'s lease is known to be ours for at least one more renewal
        interval: a worker asks before each send and gives the claim up when not."""
        with self._mine_lock:
            held = self._mine.get((claim.sink, claim.team))
            if held is None or held.token != claim.token or held.lost:
                return False
            renewed = held.renewed
        return time.monotonic() < renewed + self.lease - self.renew_every

    def _track(self, claim: Claim, started: float) -> None:
        """Keep ``claim``'s lease renewed (by the renewer thread) until it is finished."""
        with self._mine_lock:
            held = self._mine.get((claim.sink, claim.team))
            if held is None:
                return
            held.token, held.renewed = claim.token, started
            held.ids = tuple(r.id for part in (claim.immediate, claim.digest) for r in part)
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_loop, daemon=True,
                                                 name="delivery-lease-renewer")
                self._renewer.start()

    def _renew_loop(self) -> None:
        """Renew the leases of this process's claims every ``renew_every`` seconds; ends when
        no lane is held (the next claim starts it again)."""
        while True:
            time.sleep(self.renew_every)
            with self._renew_lock:
                with self._mine_lock:
                    if not self._mine:
                        self._renewer = None
                        return
                    now = time.monotonic()
                    claims = {h.token: h.ids for h in self._mine.values()
                              if h.token and not h.lost and now - h.started < self.max_hold}
                if claims:
                    self.renew(claims)

    @staticmethod
    def renewal(token: str, ids: Sequence[int], until: datetime) -> Update:
        """The statement that extends one claim's lease: by primary key only. MariaDB would
        otherwise scan the (status, next_attempt_at) index, and InnoDB locks what it reads, so
        a concurrent claim's SKIP LOCKED read could step past rows it touched (a lane out of
        order; ``tests/delivery/test_lease_renewal.py`` checks the plan)."""
        query = update(d).where(d.c.id.in_(list(ids)), d.c.claim == token,
                                d.c.status == "sending").values(next_attempt_at=until)
        for dialect in ("mysql", "mariadb"):
            query = query.with_hint("FORCE INDEX (PRIMARY)", dialect_name=dialect)
        return query

    def _stop_renewing(self, token: str) -> None:
        """No renewal touches this claim's rows from now on: called before rows go back to
        the queue, so a renewal cannot hold a lock on a row a claim is about to read."""
        with self._renew_lock, self._mine_lock:
            for held in self._mine.values():
                if held.token == token:
                    held.lost = True

    def renew(self, claims: Mapping[str, Sequence[int]]) -> dict[str, bool]:
        """Extend the lease of each claim (token → its row ids) to now + ``lease``; returns
        which claims still had rows ``sending`` under their token. One short transaction."""
        started = time.monotonic()
        until = utcnow() + timedelta(seconds=self.lease)
        kept: dict[str, bool] = {}
        mysql = self.engine.dialect.name in ("mysql", "mariadb")
        try:
            with self.engine.connect() as conn:
                if mysql:  # as the claims: no gap locks, no snapshot (see lanes.py)
                    conn.execution_options(isolation_level="READ COMMITTED")
                with conn.begin():
                    for token, ids in claims.items():
                        kept[token] = conn.execute(
                            self.renewal(token, ids, until)).rowcount > 0
        except Exception as exc:  # the store is away: the next renewal tries again
            log.warning("delivery_lease_renewal_failed", claims=len(claims),
                        error=f"{type(exc).__name__}: {exc}"[:500])
            return {}
        with self._mine_lock:
            for held in self._mine.values():
                if held.token in kept:
                    if kept[held.token]:
                        held.renewed = started
                    else:  # every row of the claim is done, or another worker took them over
                        held.lost = True
        return kept

    def due_lanes(self, sink: str, now: datetime) -> dict[str, set[str]]:
        """Teams of ``sink`` with rows due now, and the statuses of those rows (``sending``:
        an expired lease). A plain read, so an idle worker takes no lock."""
        lanes: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for team, status in conn.execute(
                    select(d.c.team, d.c.status).where(
                        d.c.sink == sink, d.c.status.in_(("pending", "held", "sending")),
                        d.c.next_attempt_at <= now).distinct().limit(256)):
                lanes.setdefault(team, set()).add(status)
        return lanes

    def _claim_lane(self, conn: Connection, sink: str, team: str, policy: TeamPolicy,
                    limit: int, digest_limit: int, now: datetime,
                    statuses: set[str]) -> Claim | None:
        """Claim in ``conn`` (which owns the lane). ``statuses``: what :meth:`due_lanes` saw
        due in this lane; queries for the others are skipped (each is a round trip)."""
        lane = and_(d.c.sink == sink, d.c.team == team)
        if "sending" in statuses or not self.skip_locked:
            # rows of a worker that died while sending: their lease ran out. On SQLite this
            # always runs: a write first, so the transaction holds the write lock from here on
            conn.execute(update(d).where(lane, d.c.status == "sending",
                                         d.c.next_attempt_at <= now)
                         .values(status="pending", claim=None))
        busy = conn.execute(select(d.c.id).where(lane, or_(
            d.c.status == "sending",
            and_(d.c.status == "pending", d.c.next_attempt_at > now))).limit(1)).first()
        if busy is not None:
            return None  # an earlier post of this lane is in flight or waits for a retry
        pending = self.lane_rows(sink, team, "pending", now, limit)
        found = list(conn.execute(pending)) if statuses & {"pending", "sending"} else []
        immediate = found
        if found and policy.holds_anything:
            immediate = self._hold(conn, policy, found)
        due_held = self.lane_rows(sink, team, "held", now, digest_limit)
        digest = (list(conn.execute(due_held))
                  if "held" in statuses or len(immediate) < len(found) else [])
        ids = [r.id for r in immediate] + [r.id for r in digest]
        if not ids:
            return None
        token = uuid.uuid4().hex
        leased_until = now + timedelta(seconds=self.lease)
        taken = conn.execute(update(d).where(d.c.id.in_(ids),
                                             d.c.status.in_(("pending", "held")))
                             .values(status="sending", claim=token, attempts=d.c.attempts + 1,
                                     next_attempt_at=leased_until)).rowcount
        if taken == len(ids):  # the usual case: every selected row is ours
            mine = set(ids)
        else:
            mine = set(conn.execute(select(d.c.id).where(d.c.claim == token)).scalars())

        def rows(chosen: Sequence[Any]) -> tuple[ClaimedRow, ...]:
            return tuple(ClaimedRow(r.id, r.post_id, r.attempts + 1, r.created_at)
                         for r in chosen if r.id in mine)

        claimed = (rows(immediate), rows(digest))
        posts = _load_posts(conn, [r.post_id for part in claimed for r in part])
        return Claim(sink, team, token, *claimed, leased_until, posts)

    def lane_rows(self, sink: str, team: str, status: str, now: datetime,
                  limit: int) -> Select[Any]:
        """The claim's locking read of a lane's due rows in ``status``, oldest first.

        No join in it: MariaDB cannot say ``FOR UPDATE OF`` one table. And on MariaDB/MySQL
        it must scan the lane index: InnoDB locks every row it reads before filtering, so a
        scan of the (status, next_attempt_at) index would briefly lock other lanes' rows, and
        a concurrent claimer of such a lane would SKIP LOCKED past them — taking later rows
        of its lane first. (Seen in ``bench/delivery.py --store mysql``: teams out of order.)
        PostgreSQL locks only rows that match, so the plan does not matter there."""
        query = select(d.c.id, d.c.post_id, d.c.attempts, d.c.created_at).where(
            d.c.sink == sink, d.c.team == team, d.c.status == status,
            d.c.next_attempt_at <= now).order_by(d.c.id).limit(limit)
        if not self.skip_locked:
            return query
        for dialect in ("mysql", "mariadb"):
            query = query.with_hint(d, "FORCE INDEX (ix_fs_deliveries_lane)", dialect)
        return query.with_for_update(skip_locked=True)

    def _hold(self, conn: Connection, policy: TeamPolicy, found: list[Any]) -> list[Any]:
        """Mark the rows the team's policy holds for a digest; return the ones to send now."""
        p = schema.posts
        posts = {row.id: row for row in conn.execute(
            select(p.c.id, p.c.severity, p.c.created_at).where(
                p.c.id.in_([r.post_id for r in found])))}
        immediate: list[Any] = []
        held: dict[datetime, list[int]] = {}
        for row in found:
            post = posts.get(row.post_id)
            release = (policy.release_at(Severity(post.severity), post.created_at)
                       if post is not None else None)
            if release is None:
                immediate.append(row)
            else:
                held.setdefault(release, []).append(row.id)
        for release, ids in held.items():
            conn.execute(update(d).where(d.c.id.in_(ids), d.c.status == "pending")
                         .values(status="held", next_attempt_at=release))
        return immediate

    # -- outcomes -----------------------------------------------------------------------------

    def delivered(self, token: str, results: Sequence[tuple[int, str | None]],
                  now: datetime | None = None) -> None:
        """Rows sent; ``results`` pairs each row id with the service's message reference."""
        if not results:
            return
        now = now or utcnow()
        plain = [row_id for row_id, ref in results if ref is None]
        refs = [{"row_id": row_id, "ref": ref} for row_id, ref in results if ref is not None]
        done = {"status": "delivered", "delivered_at": now, "claim": None, "last_error": None}
        for attempt in _transient():
            with attempt, self.engine.begin() as conn:
                if plain:  # one statement for the whole claim, not one per row
                    conn.execute(update(d).where(d.c.id.in_(plain), d.c.claim == token)
                                 .values(**done))
                if refs:
                    conn.execute(
                        update(d).where(d.c.id == bindparam("row_id"), d.c.claim == token)
                        .values(**done, remote_ref=bindparam("ref")), refs)

    def retry_later(self, token: str, row_ids: Sequence[int], error: str, at: datetime,
                    *, held: bool = False) -> None:
        """Rows failed this time; due again at ``at`` (as pending, or held for a digest)."""
        self._stop_renewing(token)
        self._set(token, row_ids, status="held" if held else "pending", next_attempt_at=at,
                  last_error=error)

    def fail(self, token: str, row_ids: Sequence[int], error: str) -> None:
        """Rows given up on: attempts or age exhausted, or a permanent error."""
        self._set(token, row_ids, status="failed", last_error=error)

    def release(self, token: str, row_ids: Sequence[int], *, held: bool = False,
                now: datetime | None = None) -> None:
        """Claimed rows not attempted after all (an earlier row failed): back, uncounted."""
        self._stop_renewing(token)
        self._set(token, row_ids, status="held" if held else "pending",
                  next_attempt_at=now or utcnow(), attempts=d.c.attempts - 1)

    def _set(self, token: str, row_ids: Sequence[int], **values: Any) -> None:
        if not row_ids:
            return
        for attempt in _transient():
            with attempt, self.engine.begin() as conn:
                conn.execute(update(d).where(d.c.id.in_(list(row_ids)), d.c.claim == token)
                             .values(claim=None, **values))

    # -- what a worker needs to send ------------------------------------------------------------

    def posts(self, post_ids: Sequence[str]) -> dict[str, Post]:
        """The posts of claimed rows, by id, with their teams."""
        if not post_ids:
            return {}
        with self.engine.connect() as conn:
            return _load_posts(conn, post_ids)

    def thread_refs(self, sink: str, post_ids: Sequence[str]) -> dict[str, str]:
        """The service's references of earlier posts on ``sink`` (for threading replies)."""
        wanted = [i for i in post_ids if i]
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            return {post_id: ref for post_id, ref in conn.execute(
                select(d.c.post_id, d.c.remote_ref).where(
                    d.c.sink == sink, d.c.post_id.in_(wanted), d.c.remote_ref.is_not(None)))}

    # -- for people (the CLI) -------------------------------------------------------------------

    def rows(self, *, status: str | None = None, sink: str | None = None,
             limit: int = 50) -> list[DeliveryRow]:
        p = schema.posts
        query = select(d, p.c.summary).join(p, p.c.id == d.c.post_id, isouter=True).order_by(
            d.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(d.c.status == status)
        if sink is not None:
            query = query.where(d.c.sink == sink)
        with self.engine.connect() as conn:
            return [DeliveryRow(r.id, r.post_id, r.team, r.sink, r.status, r.attempts,
                                r.next_attempt_at, r.last_error, r.created_at, r.delivered_at,
                                r.summary) for r in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(
                select(d.c.status, func.count()).group_by(d.c.status))}

    def retry(self, ids: Sequence[int] = (), *, all_failed: bool = False) -> int:
        """Queue failed (or any not-sending) rows again from scratch; returns how many."""
        query = update(d).where(d.c.status != "sending")
        if all_failed:
            query = query.where(d.c.status == "failed")
        else:
            query = query.where(d.c.id.in_(list(ids)))
        with self.engine.begin() as conn:
            result = conn.execute(query.values(status="pending", attempts=0, claim=None,
                                               next_attempt_at=utcnow(), delivered_at=None))
        return int(result.rowcount)


def _load_posts(conn: Connection, post_ids: Sequence[str]) -> dict[str, Post]:
    p, pt = schema.posts, schema.post_teams
    if not post_ids:
        return {}
    rows = list(conn.execute(select(p).where(p.c.id.in_(list(post_ids)))).mappings())
    teams: dict[str, list[str]] = {}
    for post_id, team in conn.execute(select(pt.c.post_id, pt.c.team)
                                      .where(pt.c.post_id.in_(list(post_ids)))):
        teams.setdefault(post_id, []).append(team)
    return {row["id"]: _post(row, teams.get(row["id"], [])) for row in rows}


def _post(row: Any, teams: list[str]) -> Post:
    routing = tuple(row["routing"] or ())
    order = [r["team"] for r in routing if r.get("team") in teams]
    ordered = order + sorted(t for t in teams if t not in order)
    return Post.model_construct(
        id=row["id"], type=row["type"], source=row["source"], subject=row["subject"],
        summary=row["summary"], body=row["body"], severity=Severity(row["severity"]),
        teams=tuple(ordered), tags=tuple(row["tags"] or ()), links=dict(row["links"] or {}),
        occurred_at=row["occurred_at"], created_at=row["created_at"],
        thread=row["thread"] or row["subject"], relation=row["relation"] or "new",
        refers_to=row["refers_to"], fields=dict(row["fields"] or {}), routing=routing)
