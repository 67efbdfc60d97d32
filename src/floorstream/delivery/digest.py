"""A digest: many held posts of one team folded into one post, so sinks need no digest code.

Every sink already knows how to send a post; a digest is a post whose body lists the others
(and whose ``Outgoing.digest`` carries them, for sinks that render a richer list, like e-mail's
HTML table). Its id is derived from the outbox rows it folds, so a retried digest carries the
same id and idempotency key.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from floorstream.model import Post, Severity, utcnow

__all__ = ["digest_key", "digest_post"]

MAX_LINES = 50


def digest_key(sink: str, row_ids: Sequence[int]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(sink.encode() + b"\x1f")
    for row_id in sorted(row_ids):
        digest.update(f"{row_id},".encode())
    return digest.hexdigest()


def digest_post(team: str, posts: Sequence[Post], key: str) -> Post:
    """One post summarising ``posts`` (oldest first) for ``team``."""
    ordered = sorted(posts, key=lambda p: p.created_at)
    counts = Counter(p.severity for p in ordered)
    by_severity = ", ".join(f"{counts[s]} {s.label}" for s in sorted(counts, reverse=True))
    since = ordered[0].occurred_at.strftime("%H:%M") if ordered else ""
    noun = "post" if len(ordered) == 1 else "posts"
    summary = f"Digest for {team}: {len(ordered)} {noun} ({by_severity}) since {since} UTC"
    lines = [f"• {p.occurred_at.strftime('%H:%M')} {p.summary}" for p in ordered[-MAX_LINES:]]
    if len(ordered) > MAX_LINES:
        lines.insert(0, f"… {len(ordered) - MAX_LINES} earlier posts are in the team's feed")
    severity = max((p.severity for p in ordered), default=Severity.INFO)
    return Post(
        id=key, type="digest", source="floorstream", subject=f"{team} digest",
        summary=summary[:200], body="\n".join(lines), severity=severity, teams=(team,),
        occurred_at=ordered[-1].occurred_at if ordered else utcnow(),
        fields={"count": len(ordered), "posts": [p.id for p in ordered]},
    )
