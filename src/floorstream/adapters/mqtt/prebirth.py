"""Sparkplug data that came before the birth that names it.

A Sparkplug DATA message may carry only aliases; the names are in the node's NBIRTH and the
device's DBIRTH. A host that starts in the middle of a session (births are QoS 0 and not
retained) or whose birth message arrives late cannot name those values. Quarantining each such
message would bury the real quarantine under hundreds of entries and lose data a birth a
moment later would have explained; so they wait, per node, in a bounded buffer:

- the first one of a node opens an *episode*: reported once (the caller posts "unresolved
  aliases from Press07, waiting for a birth");
- each held message keeps its MQTT ack until it is processed, so a crash loses nothing (the
  broker sends it again); holding is bounded by ``limit`` messages per node and by ``wait``
  seconds per message, so held acks never fill the broker's in-flight window;
- what comes beyond the bound, or waited longer than ``wait``, is *given up*: acked, counted,
  the first one's bytes kept as the sample;
- a birth takes back the messages of the node (NBIRTH) or device (DBIRTH) it names, to be
  replayed through the detectors ahead of the birth's own values; when nothing is held any
  more the episode ends, and what was given up becomes **one** quarantine entry with the
  count (:meth:`BirthWait.close`).

Pure bookkeeping: the caller passes the time and does the MQTT and the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["BirthWait", "Episode"]

T = TypeVar("T")


@dataclass
class Episode(Generic[T]):
    """One node's wait for a birth."""

    held: list[tuple[str | None, float, T]] = field(default_factory=list)  # (device, at, item)
    given_up: int = 0
    sample: T | None = None  # the first message given up
    reason: str = ""  # why the first one could not be resolved ("unknown alias 7")
    rebirth_asked: bool = False


class BirthWait(Generic[T]):
    def __init__(self, limit: int, wait: float) -> None:
        self.limit = limit
        self.wait = wait
        self.episodes: dict[str, Episode[T]] = {}

    def waiting(self, key: str, device: str | None) -> bool:
        """Whether messages of this node (and device) are held: a later resolvable message of
        the same subject must wait behind them, or it would be processed before them."""
        episode = self.episodes.get(key)
        return episode is not None and any(d == device for d, _, _ in episode.held)

    def hold(self, key: str, device: str | None, item: T, now: float,
             reason: str, room: bool = True) -> tuple[bool, bool]:
        """Hold ``item``. Returns ``(new_episode, held)``; not held means given up (the bound
        is reached, or the caller has no ``room``): the caller acks it, it is counted."""
        episode = self.episodes.get(key)
        new = episode is None
        if episode is None:
            episode = self.episodes[key] = Episode(reason=reason)
        if len(episode.held) >= self.limit or not room:
            self._give_up(episode, item)
            return new, False
        episode.held.append((device, now, item))
        return new, True

    def take(self, key: str, device: str | None) -> list[T]:
        """The held messages a birth resolves: of the node itself (``device`` None, an
        NBIRTH) or of one device (DBIRTH), in arrival order."""
        episode = self.episodes.get(key)
        if episode is None:
            return []
        taken = [item for d, _, item in episode.held if d == device]
        episode.held = [entry for entry in episode.held if entry[0] != device]
        return taken

    def expired(self, now: float) -> list[tuple[str, list[T]]]:
        """Per node, the messages held longer than ``wait``: given up (counted; the caller
        acks them)."""
        out: list[tuple[str, list[T]]] = []
        for key, episode in self.episodes.items():
            old = [item for _, at, item in episode.held if at + self.wait <= now]
            if old:
                episode.held = [e for e in episode.held if e[1] + self.wait > now]
                for item in old:
                    self._give_up(episode, item)
                out.append((key, old))
        return out

    def next_deadline(self) -> float | None:
        times = [at for e in self.episodes.values() for _, at, _ in e.held]
        return min(times) + self.wait if times else None

    def close(self, key: str, *, force: bool = False) -> Episode[T] | None:
        """End the node's episode when nothing is held any more (or ``force``: an NDEATH,
        whatever is held is given up too); returns it for the one quarantine entry."""
        episode = self.episodes.get(key)
        if episode is None or (episode.held and not force):
            return None
        for _, _, item in episode.held:
            self._give_up(episode, item)
        del self.episodes[key]
        return episode

    def abandon_held(self, key: str) -> list[T]:
        """The items still held (for their acks) of a node whose episode ``close(force)``
        ends; call before :meth:`close`."""
        episode = self.episodes.get(key)
        return [item for _, _, item in episode.held] if episode else []

    @staticmethod
    def _give_up(episode: Episode[T], item: T) -> None:
        episode.given_up += 1
        if episode.sample is None:
            episode.sample = item
