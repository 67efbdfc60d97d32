"""Putting one Sparkplug edge node's messages back in ``seq`` order.

Sparkplug B numbers every message of an edge node session (NBIRTH 0, then DBIRTH, NDATA,
DDATA, DDEATH 1, 2, … 255, 0, 1 …) across all of the node's topics. Over a broker bridge, a
shared subscription or QoS 0 they can arrive out of order (1, 2, 4, 3); processed as they come,
the state a detector last saw is the older one. Sparkplug 3.0 asks a host application to hold
a message that comes early for a configurable *Reorder Timeout* and to process it in order when
the missing one arrives; when the timeout passes first, the missing message is taken as lost
(and a Primary Host asks the node for a rebirth).

This module is only that bookkeeping, with no clock and no MQTT of its own: the caller says
what time it is (``time.monotonic()``), so the tests drive it without sleeping.

- :meth:`Reorder.offer` takes a message and returns what can be processed now, in order;
- :meth:`Reorder.expired` gives up on the gaps older than the timeout and returns what was held
  behind them, the first of it flagged with the gap;
- :meth:`Reorder.birth` starts a new numbering (NBIRTH): what was held of the old session is
  released, what came early of the new one is handed back to be offered again after the birth;
- :meth:`Reorder.drain` releases all that is held (an NDEATH: the session is over).

A timeout of 0 turns reordering off: messages are used as they come, a number out of turn is
only flagged as a gap.

A message behind the expected number is a *duplicate* (a broker redelivery of one already
processed: the same bytes under the same number), *late* (its number was given up after a
timeout: its values are older than what was already posted) or a *jump* (the node restarted
its numbering without a birth we saw: a new sequence starts there, after a gap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

__all__ = ["Gap", "Offer", "Reorder"]

T = TypeVar("T")

#: numbers up to this far ahead of the expected one are held; further is a jump (a new
#: numbering the node started without a birth we saw)
AHEAD = 128


@dataclass(frozen=True)
class Gap:
    """Messages that never came: ``missing`` numbers, in order, and how long they were
    waited for."""

    missing: tuple[int, ...]
    waited_s: float
    reason: str = "timeout"  # timeout | overflow | death | jump

    def text(self) -> str:
        """"2 messages missing before it (seq 3-4)"."""
        n = len(self.missing)
        if not n:
            return "messages may be missing before it"
        span = (f"seq {self.missing[0]}" if n == 1
                else f"seq {self.missing[0]}-{self.missing[-1]}")
        return f"{n} message{'s' if n != 1 else ''} missing before it ({span})"


@dataclass
class Offer(Generic[T]):
    """What :meth:`Reorder.offer` decided: ``released`` (item, gap before it or None) to
    process now in this order; or the item was ``held``, is a ``duplicate`` or is ``late``."""

    kind: Literal["released", "held", "duplicate", "late"]
    released: list[tuple[T, Gap | None]] = field(default_factory=list)


@dataclass
class _Node(Generic[T]):
    expected: int
    held: dict[int, tuple[float, T, int]] = field(default_factory=dict)  # seq → (at, item, fp)
    seen: dict[int, int] = field(default_factory=dict)  # seq → fingerprint processed last
    skipped: set[int] = field(default_factory=set)  # numbers given up on


class Reorder(Generic[T]):
    """Per-node reorder buffers of one source. ``timeout`` in seconds; at most ``limit``
    messages held per node (more: the oldest gap is given up at once, so a node that skipped a
    number cannot hold the broker's in-flight window hostage)."""

    def __init__(self, timeout: float, limit: int = 64) -> None:
        self.timeout = timeout
        self.limit = limit
        self.nodes: dict[str, _Node[T]] = {}

    def held(self) -> int:
        return sum(len(node.held) for node in self.nodes.values())

    def next_in_order(self, key: str, seq: int, fingerprint: int) -> bool:
        """The common case in one step: ``seq`` is the number the node's next message carries
        and nothing is held behind a gap, so :meth:`offer` would release this one message
        alone. Recorded as :meth:`offer` records it (True: process it now); False: ask
        :meth:`offer`."""
        node = self.nodes.get(key)
        if node is None or node.held or seq != node.expected:
            return False
        node.seen[seq] = fingerprint
        node.expected = (seq + 1) % 256
        if node.skipped:
            node.skipped.discard(seq)
        return True

    def offer(self, key: str, seq: int, fingerprint: int, item: T, now: float) -> Offer[T]:
        node = self.nodes.get(key)
        if node is None:  # the first message seen of this node: its number starts the count
            self.nodes[key] = _Node((seq + 1) % 256, seen={seq: fingerprint})
            return Offer("released", [(item, None)])
        distance = (seq - node.expected) % 256
        if self.timeout <= 0 and distance:  # no reordering: arrival order, gaps flagged
            if node.seen.get(seq) == fingerprint:
                return Offer("duplicate")
            missing = tuple((node.expected + i) % 256 for i in range(distance)) \
                if distance < AHEAD else ()
            node.expected, node.seen[seq] = (seq + 1) % 256, fingerprint
            return Offer("released", [(item, Gap(missing, 0.0, "arrival order"))])
        if distance == 0:
            node.seen[seq] = fingerprint
            node.expected = (seq + 1) % 256
            node.skipped.discard(seq)
            released: list[tuple[T, Gap | None]] = [(item, None)]
            self._drain_in_order(node, released)
            return Offer("released", released)
        if distance < AHEAD:
            if seq in node.held:
                return Offer("duplicate")
            node.held[seq] = (now, item, fingerprint)
            if len(node.held) > self.limit:
                return Offer("released", self._give_up(node, now, "overflow"))
            return Offer("held")
        if node.seen.get(seq) == fingerprint:
            return Offer("duplicate")
        if seq in node.skipped:
            node.skipped.discard(seq)
            return Offer("late")
        # far behind and never seen: the node counts from somewhere else now
        released = self.drain(key, now, reason="jump")
        self.nodes[key] = _Node((seq + 1) % 256, seen={seq: fingerprint})
        released.append((item, Gap((), 0.0, "jump")))
        return Offer("released", released)

    def expired(self, now: float) -> dict[str, list[tuple[T, Gap | None]]]:
        """Per node, what was held longer than the timeout behind a gap, now released."""
        out: dict[str, list[tuple[T, Gap | None]]] = {}
        for key, node in self.nodes.items():
            while node.held and min(at for at, _, _ in node.held.values()) + self.timeout \
                    <= now:
                out.setdefault(key, []).extend(self._give_up(node, now, "timeout"))
        return out

    def next_deadline(self) -> float | None:
        times = [at for node in self.nodes.values() for at, _, _ in node.held.values()]
        return min(times) + self.timeout if times else None

    def birth(self, key: str, seq: int | None, fingerprint: int, now: float
              ) -> tuple[list[tuple[T, Gap | None]], list[tuple[int, T, int]]]:
        """An NBIRTH: numbering restarts after ``seq``. What was held is split: messages
        numbered just after the birth came early in the new session (returned second, as
        ``(seq, item, fingerprint)``, to be offered again once the birth is processed); the
        rest are the old session's, released first (to be processed before the birth)."""
        node = self.nodes.get(key)
        early: list[tuple[int, T, int]] = []
        if node is not None and seq is not None:
            for s in list(node.held):
                if 0 < (s - seq) % 256 <= self.limit:
                    _, item, fp = node.held.pop(s)
                    early.append((s, item, fp))
            early.sort(key=lambda entry: (entry[0] - seq) % 256)
        old = self.drain(key, now, reason="birth") if node is not None else []
        if seq is None:
            self.nodes.pop(key, None)
        else:
            self.nodes[key] = _Node((seq + 1) % 256, seen={seq: fingerprint})
        return old, early

    def drain(self, key: str, now: float, reason: str = "death") -> list[tuple[T, Gap | None]]:
        """Everything held for ``key``, in order, the first flagged with the gap before it."""
        node = self.nodes.get(key)
        out: list[tuple[T, Gap | None]] = []
        while node is not None and node.held:
            out.extend(self._give_up(node, now, reason))
        return out

    def forget(self, key: str) -> None:
        self.nodes.pop(key, None)

    # -- internals ---------------------------------------------------------------------------

    def _give_up(self, node: _Node[T], now: float, reason: str) -> list[tuple[T, Gap | None]]:
        """Skip to the nearest held number, then release the run that follows it."""
        first = min(node.held, key=lambda s: (s - node.expected) % 256)
        missing = tuple((node.expected + i) % 256
                        for i in range((first - node.expected) % 256))
        waited = now - min(at for at, _, _ in node.held.values())
        node.skipped.update(missing)
        if len(node.skipped) > 512:  # only the recent ones can still arrive late
            node.skipped = set(missing)
        _, item, fingerprint = node.held.pop(first)
        node.seen[first] = fingerprint
        node.expected = (first + 1) % 256
        released: list[tuple[T, Gap | None]] = [(item, Gap(missing, max(0.0, waited), reason))]
        self._drain_in_order(node, released)
        return released

    @staticmethod
    def _drain_in_order(node: _Node[T], released: list[tuple[T, Gap | None]]) -> None:
        while node.expected in node.held:
            _, item, fingerprint = node.held.pop(node.expected)
            node.seen[node.expected] = fingerprint
            node.skipped.discard(node.expected)
            released.append((item, None))
            node.expected = (node.expected + 1) % 256
