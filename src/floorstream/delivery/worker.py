"""A worker thread drains one sink's lanes of the outbox.

Each sink gets its own threads, so a chat service that hangs or is down for an hour only delays
its own rows: the pipeline never waits for delivery (rows are already committed), and other
sinks' workers keep going. Failures are retried with tenacity's exponential backoff with jitter,
computed into ``next_attempt_at`` rather than slept, so a retrying row does not hold a thread;
a ``Retry-After`` from the service wins over the computed delay.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from tenacity import RetryCallState, Retrying, wait_exponential, wait_random

from floorstream.delivery.digest import digest_key, digest_post
from floorstream.delivery.outbox import Claim, ClaimedRow, Outbox
from floorstream.delivery.policy import TeamPolicy
from floorstream.delivery.stats import SinkStats
from floorstream.logs import get_logger
from floorstream.model import Post, utcnow
from floorstream.plugin.sink import (
    DeliveryError,
    Outgoing,
    PermanentDeliveryError,
    RetryAfter,
    RetrySettings,
    Sink,
    scrub,
)

__all__ = ["SinkWorker", "backoff_delay", "idempotency_key", "wake_workers"]

log = get_logger("floorstream.delivery")

FLUSH_EVERY = 1.0  # seconds: outcomes of a long claim are written at least this often


def idempotency_key(post_id: str, sink: str) -> str:
    """Stable per (post, sink): every retry of one delivery sends the same key."""
    return hashlib.blake2b(f"{post_id}\x1f{sink}".encode(), digest_size=16).hexdigest()


def backoff_delay(retry: RetrySettings, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    wait = (wait_exponential(multiplier=retry.initial, max=retry.max_delay)
            + wait_random(0, retry.jitter))
    return float(wait(state))


def describe(exc: BaseException) -> str:
    if isinstance(exc, DeliveryError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def wake_workers(workers: Sequence[SinkWorker], lanes: int = 1) -> None:
    """New work in ``lanes`` lanes of one sink: wake that many idle workers, not all of them.

    Waking every worker on every commit made each run a "which lanes are due?" query only to
    find the lane taken by a sibling. Busy workers look for more work anyway when they finish
    (their event is set too, which also covers one that is just about to wait), and a worker
    whose claim saw other lanes due wakes the next idle one, so work still fans out."""
    for worker in workers:
        if not worker.idle:
            worker.wake.set()
        elif lanes > 0 and not worker.wake.is_set():
            worker.wake.set()
            lanes -= 1


class SinkWorker(threading.Thread):
    """Claims a lane of its sink, sends its rows in order, records the outcome, repeats."""

    def __init__(self, sink: Sink[Any], outbox: Outbox, policies: Mapping[str, TeamPolicy], *,
                 secrets: frozenset[str], stop: threading.Event, poll: float = 0.5,
                 batch: int = 100, index: int = 0) -> None:
        super().__init__(name=f"delivery-{sink.config.name}-{index}", daemon=True)
        self.sink = sink
        self.name_ = sink.config.name
        self.outbox = outbox
        self.policies = policies
        self.secrets = secrets
        self.stop_event = stop
        self.poll = poll
        self.batch = batch
        self.wake = threading.Event()
        self.idle = False  # waiting for work (see wake_workers)
        self.siblings: Sequence[SinkWorker] = (self,)  # the workers of this sink
        self.delivered = 0  # outbox rows this worker delivered (health, tests)
        self.own_stats = SinkStats()  # the first sibling's is the sink's (see ``stats``)
        self.retry = sink.config.retry
        self.log = log.bind(sink=self.name_, sink_type=sink.config.type)

    @property
    def stats(self) -> SinkStats:
        """The sink's counters for health and metrics, shared by its workers."""
        return self.siblings[0].own_stats

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.wake.clear()
            try:
                worked = self.step()
            except Exception as exc:  # the store is away: log, wait, try again
                self.log.error("delivery_worker_error", error=scrub(describe(exc), self.secrets))
                worked = False
            if not worked:
                self.idle = True
                self.wake.wait(self.poll)
                self.idle = False
        try:
            self.sink.close()
        except Exception as exc:
            self.log.warning("sink_close_failed", error=scrub(describe(exc), self.secrets))

    def step(self) -> bool:
        """Handle one claim; False when there was nothing to do."""
        claim = self.outbox.claim(self.name_, self.policies, limit=self.batch)
        if claim is None:
            return False
        if claim.more:  # other lanes are due too: hand them to an idle sibling
            wake_workers(self.siblings)
        try:
            self._send(claim)
        finally:
            self.outbox.finished(claim.sink, claim.team, claim.token)
        return True

    def _send(self, claim: Claim) -> None:
        posts = claim.posts
        refs: dict[str, str] = {}
        if self.sink.threads:
            refs = self.outbox.thread_refs(self.name_,
                                           [p.refers_to or "" for p in posts.values()])
        if self._send_immediate(claim, posts, refs) and claim.digest:
            self._send_digest(claim, posts)

    def _send_immediate(self, claim: Claim, posts: Mapping[str, Post],
                        refs: dict[str, str]) -> bool:
        # a long claim stops after half of max_hold, so its lease is never left unrenewed
        deadline = time.monotonic() + self.outbox.max_hold / 2
        done: list[tuple[int, str | None]] = []
        flush_at = time.monotonic() + FLUSH_EVERY
        for index, row in enumerate(claim.immediate):
            if done and time.monotonic() >= flush_at:  # a slow sink: record progress, so a
                self.outbox.delivered(claim.token, done)  # crash re-sends less
                self.delivered += len(done)
                done = []
                flush_at = time.monotonic() + FLUSH_EVERY
            if (self.stop_event.is_set() or time.monotonic() > deadline
                    or not self._still_ours(claim)):
                self.outbox.delivered(claim.token, done)
                self.delivered += len(done)
                self._release(claim, claim.immediate[index:])
                return False
            post = posts.get(row.post_id)
            if post is None:
                self.outbox.fail(claim.token, [row.id], "the post is not in the store")
                continue
            outgoing = Outgoing(idempotency_key(post.id, self.name_), claim.team,
                                refs.get(post.refers_to) if post.refers_to else None)
            try:
                ref = self.sink.deliver(post, outgoing)
            except Exception as exc:
                self.outbox.delivered(claim.token, done)
                self.delivered += len(done)
                self._failed(claim, [row], exc, held=False)
                self._release(claim, claim.immediate[index + 1:])
                return False
            done.append((row.id, ref))
            self.stats.delivered_rows(claim.team, (row.created_at,))
            if ref:
                refs[post.id] = ref
        self.outbox.delivered(claim.token, done)
        self.delivered += len(done)
        return True

    def _send_digest(self, claim: Claim, posts: Mapping[str, Post]) -> None:
        found = [posts[r.post_id] for r in claim.digest if r.post_id in posts]
        ids = [r.id for r in claim.digest]
        if not found:
            self.outbox.fail(claim.token, ids, "the posts are not in the store")
            return
        if not self._still_ours(claim):
            self.outbox.release(claim.token, ids, held=True)
            return
        key = digest_key(self.name_, ids)
        post = digest_post(claim.team, found, key)
        try:
            ref = self.sink.deliver(post, Outgoing(key, claim.team, digest=tuple(found)))
        except Exception as exc:
            self._failed(claim, claim.digest, exc, held=True)
            return
        self.outbox.delivered(claim.token, [(row_id, ref) for row_id in ids])
        self.delivered += len(ids)
        self.stats.delivered_rows(claim.team, [r.created_at for r in claim.digest])
        self.log.info("digest_delivered", team=claim.team, posts=len(found))

    def _still_ours(self, claim: Claim) -> bool:
        """The claim's lease is renewed (see Outbox.holds); when not, another worker may take
        the rows over any moment, so sending more of them could break the lane's order."""
        if self.outbox.holds(claim):
            return True
        self.log.warning("delivery_lease_lost", team=claim.team,
                         rows=len(claim.immediate) + len(claim.digest))
        return False

    def _release(self, claim: Claim, rows: Sequence[ClaimedRow]) -> None:
        self.outbox.release(claim.token, [r.id for r in rows])
        self.outbox.release(claim.token, [r.id for r in claim.digest], held=True)

    def _failed(self, claim: Claim, rows: Sequence[ClaimedRow], exc: BaseException, *,
                held: bool) -> None:
        error = scrub(describe(exc), self.secrets)[:2000]
        now = utcnow()
        attempts = max(r.attempts for r in rows)
        age = (now - min(r.created_at for r in rows)).total_seconds()
        ids = [r.id for r in rows]
        bound = self.log.bind(team=claim.team, rows=ids, attempts=attempts, error=error)
        if (isinstance(exc, PermanentDeliveryError) or attempts >= self.retry.max_attempts
                or age >= self.retry.max_age):
            why = ("permanent error" if isinstance(exc, PermanentDeliveryError)
                   else f"gave up after {attempts} attempts, {age:.0f} s")
            self.outbox.fail(claim.token, ids, f"{error} ({why})")
            self.stats.failed_rows(claim.team, len(ids), error, gave_up=True)
            bound.error("delivery_failed")
            return
        delay = (exc.seconds if isinstance(exc, RetryAfter)
                 else backoff_delay(self.retry, attempts))
        self.outbox.retry_later(claim.token, ids, error, now + timedelta(seconds=delay),
                                held=held)
        self.stats.failed_rows(claim.team, len(ids), error, gave_up=False)
        bound.warning("delivery_retry", retry_in_s=round(delay, 3))
