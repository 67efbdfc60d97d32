"""One bad input affects itself only, even when it is the *store* that refuses it.

A batch is one transaction. When the database refuses it for what it holds rather than for
being unreachable — PostgreSQL rejecting a NUL in a text column (``DataError``), a value too
long, a field that cannot be serialised — retrying the same batch forever would stop every
source, and letting the error escape would end the pipeline thread. Instead the batch is
split: each post with its outbox rows in a transaction of its own, then the detector states,
checkpoints and quarantine rows. What the store still refuses is put in quarantine with the
database's reason (a post) or logged and dropped (a detector state: its subject starts afresh),
and everything else is committed.

Splitting is safe because post ids are deterministic and post inserts idempotent: a crash
between the parts replays the batch, and the posts already written are not written twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from floorstream.logs import get_logger
from floorstream.model import Post
from floorstream.store.store import CommitBatch, QuarantineItem

__all__ = ["commit_isolating", "is_transient"]

log = get_logger("floorstream.pipeline")

Commit = Callable[[CommitBatch], list[Post]]


def is_transient(exc: BaseException) -> bool:
    """True for a store that cannot be reached (retry); False for one that refuses what it
    was given (retrying the same batch cannot help)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def commit_isolating(batch: CommitBatch, commit: Commit, error: BaseException) -> list[Post]:
    """Commit ``batch`` part by part after the store refused it whole (``error``).

    ``commit`` retries while the store is unreachable and raises what it refuses. Returns the
    new posts, like a whole commit would.
    """
    log.warning("commit_refused_isolating", error=_reason(error), posts=len(batch.posts),
                states=len(batch.states))
    deliveries: dict[str, list[tuple[str, str, str]]] = {}
    for row in batch.deliveries:
        deliveries.setdefault(row[0], []).append(row)
    new_posts: list[Post] = []
    refused: list[QuarantineItem] = []
    for post in batch.posts:
        try:
            new_posts.extend(commit(CommitBatch(posts=[post],
                                                deliveries=deliveries.get(post.id, []))))
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("post_refused_by_store", source=post.source, post=post.id,
                        type=post.type, error=_reason(exc))
            refused.append(QuarantineItem(
                source=post.source, raw=_post_bytes(post), position=post.id,
                error=f"the store refused this post: {_reason(exc)}",
                context={"subject": _printable(post.subject), "type": post.type}))
    rest = CommitBatch(checkpoints=batch.checkpoints, states=batch.states,
                       quarantined=[*batch.quarantined, *refused],
                       unquarantined=batch.unquarantined, requarantined=batch.requarantined)
    try:
        commit(rest)
    except Exception as exc:
        if is_transient(exc):
            raise
        _commit_rest_piecewise(rest, commit)
    return new_posts


def _commit_rest_piecewise(rest: CommitBatch, commit: Commit) -> None:
    for key, data in rest.states.items():
        _try(commit, CommitBatch(states={key: data}), "detector_state_refused_by_store",
             source=key[0], subject=_printable(key[1]), detector=key[2])
    for item in rest.quarantined:
        if not _try(commit, CommitBatch(quarantined=[item]), None):
            # the reason or context itself was refused: keep the raw bytes, plain words
            _try(commit, CommitBatch(quarantined=[QuarantineItem(
                source=item.source, raw=item.raw, position=None,
                error=_printable(item.error)[:2000], received_at=item.received_at)]),
                "quarantine_refused_by_store", source=item.source)
    _try(commit, CommitBatch(unquarantined=rest.unquarantined,
                             requarantined={k: _printable(v) for k, v
                                            in rest.requarantined.items()}),
         "quarantine_update_refused_by_store")
    for source, position in rest.checkpoints.items():
        _try(commit, CommitBatch(checkpoints={source: position}),
             "checkpoint_refused_by_store", source=source)


def _try(commit: Commit, part: CommitBatch, event: str | None, **context: Any) -> bool:
    try:
        commit(part)
    except Exception as exc:
        if is_transient(exc):
            raise
        if event is not None:
            log.error(event, error=_reason(exc), **context)
        return False
    return True


def _post_bytes(post: Post) -> bytes:
    return json.dumps(post.model_dump(mode="json"), ensure_ascii=True, default=repr).encode()


def _printable(text: str) -> str:
    return text.replace("\x00", "\\x00")


def _reason(exc: BaseException) -> str:
    """The database's own words (``orig``) without SQLAlchemy's statement dump."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return _printable(text[0] if text else type(exc).__name__)[:500]
