"""What people do on the feed: acknowledge, comment, follow.

An acknowledgement ("on it") is committed the same way (design.md §9): an event of the
``@people`` source, type ``post.acknowledged``, a post in the acknowledged post's thread
answering it, with the acknowledged post's teams (so who may read the one may read the
other). Its id comes from the person and the post, so acknowledging twice commits once. It is
delivered to those teams' sinks — "Anna Berg is on it: …" in the alarm's chat or mail thread —
only with ``web.deliver_acks``; otherwise it is stored and shown, and no outbox row is
written for it. The ``fs_web_acks`` row the pages and the live stream read is written after
the commit (insert-or-keep, so a retry restores one a crash lost; the pages also read the
acknowledgement posts themselves).

A comment is a post like any other: an event of the ``@people`` source committed through the
pipeline (:meth:`floorstream.pipeline.Pipeline.run_now`, the daemon's own when the web runs in
it), so it is stored, routed, put in the outbox and delivered — threaded under the post it
answers where the sink threads (``refers_to``). It goes to the teams of the post it answers
and to every ``@team`` it mentions; its id comes from the person, the post and the text (or
the form's key), so a double submit or a retried API call posts once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

from floorstream.model import Event, Post, Severity, utcnow
from floorstream.pipeline import Pipeline
from floorstream.processing import PEOPLE_SOURCE, Envelope
from floorstream.render import clip
from floorstream.web.auth import Identity
from floorstream.web.queries import ACK_TYPE, Ack, FeedQueries

__all__ = ["ACK_TYPE", "COMMENT_TYPE", "MAX_COMMENT", "Commenter", "mentions"]

COMMENT_TYPE = "comment.posted"
MAX_COMMENT = 4000
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9][A-Za-z0-9_.-]*)")


def mentions(text: str, teams: Collection[str]) -> list[str]:
    """The known teams ``text`` mentions as ``@team``, in order, once each."""
    found: list[str] = []
    for name in _MENTION.findall(text):
        name = name.rstrip(".")
        if name in teams and name not in found:
            found.append(name)
    return found


class Commenter:
    def __init__(self, pipeline: Pipeline, teams: Collection[str], *,
                 deliver_acks: bool | None = None) -> None:
        self.pipeline = pipeline
        self.teams = teams
        if deliver_acks is None:  # as the pipeline's config says (web.deliver_acks)
            deliver_acks = pipeline.processor.config.settings.web.deliver_acks
        self.deliver_acks = deliver_acks
        self._acks = FeedQueries(pipeline.store)

    def acknowledge(self, who: Identity, post: Post) -> tuple[Ack, bool]:
        """Commit ``who``'s acknowledgement of ``post``; (the ack, whether it is new)."""
        route = [{"team": team, "rule": f"acknowledgement of a post of {team}"}
                 for team in post.teams]
        event = Event.create(
            type=ACK_TYPE, source=PEOPLE_SOURCE, subject=post.subject,
            position=f"ack\x1f{who.person}\x1f{post.id}", occurred_at=utcnow(),
            severity=Severity.INFO, thread=post.thread or post.subject, relation="new",
            refers_to=post.id,
            fields={"summary": clip(f"{who.name} is on it: {post.summary}"),
                    "actor": who.person, "actor_name": who.name, "route": route,
                    "acknowledges": post.id, "in_reply_to": post.id,
                    "deliver": self.deliver_acks})
        posts = self.pipeline.run_now([Envelope(PEOPLE_SOURCE, event=event)])
        mine = next((p for p in posts if p.id == event.id), None)
        new = mine is not None
        if mine is None:
            mine = self.pipeline.store.post(event.id)
        if mine is None:  # pragma: no cover - committed or raised above
            raise RuntimeError("the acknowledgement was not stored")
        ack, recorded = self._acks.acknowledge(post.id, who.person, at=mine.created_at)
        return ack, new and recorded

    def comment(self, who: Identity, post: Post, text: str, key: str | None = None) -> Post:
        """Commit ``who``'s comment on ``post``; the stored post (also when it already was)."""
        text = text.strip()
        if not text:
            raise ValueError("a comment needs some text")
        if len(text) > MAX_COMMENT:
            raise ValueError(f"a comment is at most {MAX_COMMENT} characters")
        route = [{"team": team, "rule": f"comment on a post of {team}"} for team in post.teams]
        named = mentions(text, self.teams)
        route += [{"team": team, "rule": f"mentioned as @{team}"}
                  for team in named if team not in post.teams]
        position = key or hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
        summary = clip(f"{who.name}: {text}")
        event = Event.create(
            type=COMMENT_TYPE, source=PEOPLE_SOURCE, subject=post.subject,
            position=f"{who.person}\x1f{post.id}\x1f{position}", occurred_at=utcnow(),
            severity=Severity.INFO, thread=post.thread or post.subject, relation="new",
            refers_to=post.id,
            fields={"summary": summary,
                    "body": text if summary != f"{who.name}: {text}" else None,
                    "actor": who.person, "actor_name": who.name, "route": route,
                    "mentions": named, "in_reply_to": post.id})
        posts = self.pipeline.run_now([Envelope(PEOPLE_SOURCE, event=event)])
        mine = next((p for p in posts if p.id == event.id), None)
        if mine is None:
            mine = self.pipeline.store.post(event.id)
        if mine is None:  # pragma: no cover - committed or raised above
            raise RuntimeError("the comment was not stored")
        return mine
