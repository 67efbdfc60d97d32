"""The commit fence: a daemon commits a source's work only while the store says it holds the
source at the epoch it took it with.

Called by :meth:`floorstream.store.store.Store.commit` first thing inside the commit's
transaction. It reads the lease rows of the batch's sources ``FOR SHARE`` (so a taker's epoch
bump waits for this commit to end) and strips from the batch everything of a source whose
row names another holder or epoch: posts, their outbox rows, checkpoints, detector state,
quarantined input. Those sources' inputs are then not acked either (the daemon's gate is
closed by ``on_fenced`` before the commit returns), so their next holder reads them again
from the committed checkpoint. This is what makes "never two holders" hold even when a
holder learns of its loss late (a stalled process, a network partition that healed).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from sqlalchemy import Connection, select

from floorstream.store import schema
from floorstream.store.store import CommitBatch

__all__ = ["Fence", "batch_sources", "strip"]


def batch_sources(batch: CommitBatch) -> set[str]:
    """The sources whose work a batch writes."""
    found = {post.source for post in batch.posts}
    found.update(batch.checkpoints)
    found.update(key[0] for key in batch.states)
    found.update(item.source for item in batch.quarantined)
    return found


def strip(batch: CommitBatch, sources: Collection[str]) -> None:
    """Remove everything of ``sources`` from ``batch`` (in place)."""
    dropped = {post.id for post in batch.posts if post.source in sources}
    batch.posts[:] = [p for p in batch.posts if p.source not in sources]
    batch.deliveries[:] = [d for d in batch.deliveries if d[0] not in dropped]
    for source in sources:
        batch.checkpoints.pop(source, None)
    for key in [k for k in batch.states if k[0] in sources]:
        del batch.states[key]
    batch.quarantined[:] = [q for q in batch.quarantined if q.source not in sources]


class Fence:
    """``fence(conn, batch)``: strip what this daemon no longer holds (see the module)."""

    def __init__(self, daemon: str, managed: Collection[str],
                 held: Callable[[], Mapping[str, int]],
                 on_fenced: Callable[[set[str]], None]) -> None:
        self.daemon = daemon
        self.managed = frozenset(managed)
        self.held = held
        self.on_fenced = on_fenced
        #: batches whose work was stripped for a source (tests, metrics)
        self.fenced = 0

    def __call__(self, conn: Connection, batch: CommitBatch) -> None:
        sources = batch_sources(batch) & self.managed
        if not sources:
            return
        held = self.held()
        t = schema.source_leases
        rows = dict(conn.execute(
            select(t.c.source, t.c.epoch)
            .where(t.c.source.in_(sorted(sources)), t.c.holder == self.daemon)
            .with_for_update(read=True)).all())
        lost = {s for s in sources if s not in held or rows.get(s) != held[s]}
        if lost:
            self.fenced += 1
            self.on_fenced(lost)
            strip(batch, lost)
