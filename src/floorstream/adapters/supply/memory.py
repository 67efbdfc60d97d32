"""What a supply source remembers between files: recent ETAs and carrier event ids.

"Delayed" means later than the *previous* estimate, and a DCSA retraction names an event by
the carrier's id, so a source must remember a little. The memory is small and bounded (LRU)
and travels in the source's checkpoint, committed in the same transaction as the posts, so a
restart remembers exactly what was posted. Each ETA remembers the position that reported it:
when a document is replayed, the "previous" ETA is the one before *that* position, so the
replay makes the same decision (and the same event id) as the first time.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

__all__ = ["Memory"]


class Memory:
    def __init__(self, limit: int = 2_000) -> None:
        self.limit = limit
        self.etas: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
        self.events: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.extra: dict[str, Any] = {}  # transport state (HTTP cursor, ETag)
        self.dirty = False

    @classmethod
    def load(cls, checkpoint: str | None, limit: int = 2_000) -> Memory:
        memory = cls(limit)
        if not checkpoint:
            return memory
        try:
            data = json.loads(checkpoint)
        except ValueError:
            return memory  # a checkpoint from another adapter version: start fresh
        if isinstance(data, dict):
            for key, items in (data.get("eta") or {}).items():
                memory.etas[key] = [(str(p), str(e)) for p, e in items]
            for key, pair in (data.get("events") or {}).items():
                memory.events[key] = (str(pair[0]), str(pair[1]))
            memory.extra = dict(data.get("extra") or {})
        return memory

    def dump(self) -> str:
        self.dirty = False
        return json.dumps({"eta": self.etas, "events": self.events, "extra": self.extra},
                          separators=(",", ":"))

    def previous_eta(self, shipment: str, position: str) -> str | None:
        """The ETA known before the one reported at ``position`` (ISO text), if any."""
        history = self.etas.get(shipment, [])
        for index, (pos, _eta) in enumerate(history):
            if pos == position:
                return history[index - 1][1] if index else None
        return history[-1][1] if history else None

    def remember_eta(self, shipment: str, position: str, eta: str) -> None:
        history = self.etas.setdefault(shipment, [])
        if any(pos == position for pos, _ in history):
            return
        history.append((position, eta))
        del history[:-4]
        self._touch(self.etas, shipment)

    def remember_event(self, carrier_id: str, subject: str, event_id: str) -> None:
        self.events[carrier_id] = (subject, event_id)
        self._touch(self.events, carrier_id)

    def _touch(self, table: OrderedDict[str, Any], key: str) -> None:
        table.move_to_end(key)
        while len(table) > self.limit:
            table.popitem(last=False)
        self.dirty = True
