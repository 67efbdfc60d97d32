"""A bounded hand-off from adapter threads to the pipeline thread, taken in batches.

``queue.Queue`` costs a lock, a condition and usually a thread wake-up per item; at tens of
thousands of MQTT messages a second that was a fifth of the per-message budget, paid while
holding the GIL the network thread needs. Here a producer appends to a deque (atomic in
CPython) and signals only when the consumer is idle; the consumer takes everything queued at
once. A full hand-off still blocks producers: memory stays bounded and back-pressure reaches
the broker or the poll loop.

A steady stream is gathered (:meth:`Handoff.gather`): the consumer sleeps until a deadline or
until a number of items is queued, and producers signal only when that number is reached, so
a stream of 5,000 messages a second costs a few hundred wake-ups instead of one per message.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._ready = threading.Event()  # set while items may be waiting
        self._room = threading.Condition(threading.Lock())
        self._blocked = 0  # producers waiting for room
        #: producers signal once this many items are queued (1 but while :meth:`gather` waits)
        self._wake_at = 1

    def put(self, item: T) -> None:
        """Append ``item``; blocks while ``maxsize`` items are waiting."""
        items = self._items
        if len(items) >= self.maxsize:
            self._wait_for_room()
        items.append(item)
        if len(items) >= self._wake_at and not self._ready.is_set():
            self._ready.set()

    def put_many(self, batch: list[T]) -> None:
        """Append every item of ``batch`` in order (one socket read's worth, say); blocks
        while ``maxsize`` items are waiting, then appends them all: the bound holds to within
        one batch, and the consumer is signalled once for the batch, not once per item."""
        if not batch:
            return
        items = self._items
        if len(items) >= self.maxsize:
            self._wait_for_room()
        items.extend(batch)
        if len(items) >= self._wake_at and not self._ready.is_set():
            self._ready.set()

    def _wait_for_room(self) -> None:
        items = self._items
        with self._room:
            self._blocked += 1
            try:
                while len(items) >= self.maxsize:
                    self._room.wait(0.05)
            finally:
                self._blocked -= 1

    def take(self, limit: int, timeout: float) -> list[T]:
        """Up to ``limit`` items, oldest first; waits up to ``timeout`` s if none is there."""
        items = self._items
        if not items:
            self._ready.clear()
            if not items:  # an append between the check and clear() must not be missed
                self._ready.wait(timeout)
        return self._drain(limit)

    def take_for(self, limit: int, first_timeout: float, linger: float) -> list[T]:
        """Like :meth:`take`, then keep collecting for ``linger`` s to fill a batch (woken
        early only once ``limit`` items are queued)."""
        batch = self.take(limit, first_timeout)
        if not batch or linger <= 0 or len(batch) >= limit:
            return batch
        batch.extend(self.gather(limit - len(batch), linger, limit - len(batch)))
        return batch

    def gather(self, limit: int, wait: float, enough: int) -> list[T]:
        """Up to ``limit`` items after waiting up to ``wait`` s for ``enough`` of them to be
        queued (at once if they are); what is there then, possibly nothing.

        Producers do not signal each item meanwhile, only the one that makes ``enough``: a
        steady stream costs one wake-up per batch. ``enough`` is capped by ``maxsize``, so a
        full hand-off never waits for room it cannot get.
        """
        items = self._items
        enough = max(1, min(enough, self.maxsize))
        if len(items) < enough and wait > 0:
            self._wake_at = enough
            self._ready.clear()
            try:
                if len(items) < enough:  # an append between the check and clear()
                    self._ready.wait(wait)
            finally:
                self._wake_at = 1
        return self._drain(limit)

    def _drain(self, limit: int) -> list[T]:
        """Up to ``limit`` queued items, oldest first, and room for blocked producers."""
        items = self._items
        batch: list[T] = []
        pop = items.popleft
        while items and len(batch) < limit:
            batch.append(pop())
        if self._blocked:
            with self._room:
                self._room.notify_all()
        return batch

    def qsize(self) -> int:
        return len(self._items)
