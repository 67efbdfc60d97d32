"""A checkpoint text held as its parts until it is committed.

Why: an adapter whose checkpoint is large and changes with many inputs — a Sparkplug host
with the sessions of hundreds of edge nodes, every birth changing one of them — gave each of
those inputs the whole text. A fleet's birth storm (200 nodes x 10 devices) left 2,200 such
texts in the pipeline's queue at once: 114 MB of strings for 2,200 messages, growing with the
square of the number of nodes, and built only for all but the last of each batch to be
thrown away (the pipeline commits a source's last checkpoint of a batch).

:class:`CheckpointParts` is that text as a tuple of strings the adapter already holds (one
part per node, say, kept until the node changes): the queue then holds references to shared
parts, and the pipeline joins only the checkpoint it commits. The parts are immutable, so
the text is exactly what it was when the adapter emitted it, however late it is joined.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias, final

__all__ = ["Checkpoint", "CheckpointParts", "checkpoint_text"]


@final
class CheckpointParts:
    """The checkpoint ``"".join(parts)``, joined when committed (pass it where an
    :class:`~floorstream.plugin.Emitter` method takes ``checkpoint``)."""

    __slots__ = ("parts",)

    def __init__(self, parts: Iterable[str]) -> None:
        self.parts: tuple[str, ...] = tuple(parts)

    def __str__(self) -> str:
        return "".join(self.parts)

    def __repr__(self) -> str:
        return f"CheckpointParts({len(self.parts)} parts, {sum(map(len, self.parts))} chars)"


#: what an :class:`~floorstream.plugin.Emitter` method takes as ``checkpoint``
Checkpoint: TypeAlias = "str | CheckpointParts"


def checkpoint_text(checkpoint: str | CheckpointParts | None) -> str | None:
    """The text of a checkpoint as an emitter was given it."""
    if checkpoint is None or isinstance(checkpoint, str):
        return checkpoint
    return str(checkpoint)
