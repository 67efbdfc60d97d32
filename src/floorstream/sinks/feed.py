"""``feed``: the store itself — always on, what ``floorstream feed`` and ``Stream.feed`` read.

Every post is in its teams' feeds the moment it is committed, with or without this sink, so
there is nothing to send. The type exists so the feed shows up in ``floorstream plugins`` next
to the other destinations, and so a team may list it explicitly (``sinks: [feed]``) to make the
outbox record that the post reached the feed; its reference is the post's feed address.
"""

from __future__ import annotations

from typing import ClassVar

from floorstream.model import Post
from floorstream.plugin import Outgoing, Sink, SinkConfig

__all__ = ["FeedSink"]


class FeedSink(Sink[SinkConfig]):
    name: ClassVar[str] = "feed"
    config_model: ClassVar[type[SinkConfig]] = SinkConfig

    def deliver(self, post: Post, outgoing: Outgoing) -> str | None:
        return f"feed:{outgoing.team}:{post.id}"
