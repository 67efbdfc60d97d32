"""What a supply source remembers between files: the stories it is telling.

A source must remember a little to tell one story per shipment: which thread a booking number,
a bill of lading or a PO belongs to, what the last post of a shipment said (its milestones, its
ETA, what the ASN shipped), which documents wait for their PO to reach the ERP, and which post
a carrier's event id became (DCSA retractions name events that way). The memory travels in the
source's checkpoint, committed in the same transaction as the posts, so a restart remembers
exactly what was posted.

**Bounded.** Four tables, each an LRU with a cap (``limit`` stories; aliases, pending
documents and carrier event ids a few times that); stories also expire ``max_age`` seconds
after they were last touched, pending documents at their own expiry. Nothing grows forever.

**Cheap to checkpoint.** Every entry is kept as its JSON text, so a checkpoint is one join of
the cached texts (no re-encoding of thousands of stories per file), and a read is a
``json.loads`` of one small entry: a fresh copy the interpreter may change before it puts it
back.

**All or nothing per file.** Changes since the last :meth:`dump` are journaled; when reading a
file fails half-way (the ERP went away on its third document) :meth:`rollback` restores the
memory the file found, so its retry decides exactly as the first attempt would have.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Memory"]

_TABLES = ("stories", "aliases", "pending", "events")
#: how many entries each table keeps per remembered story
_FACTOR = {"stories": 1, "aliases": 6, "pending": 1, "events": 8}
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class Memory:
    """A source's memory; see the module docstring."""

    def __init__(self, limit: int = 2_000, *, max_age: float = 60 * 86_400,
                 clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.max_age = max_age
        self.clock = clock
        # table → key → (JSON text of the value, JSON text of "key":value)
        self._tables: dict[str, OrderedDict[str, tuple[str, str]]] = {
            t: OrderedDict() for t in _TABLES}
        self._touched: dict[str, float] = {}  # story key → last touch (clock seconds)
        self._journal: list[tuple[str, str, tuple[str, str] | None, float | None]] = []
        self.extra: dict[str, Any] = {}  # transport state (HTTP cursor, ETag)
        self.dirty = False

    # -- checkpoint ------------------------------------------------------------------------

    @classmethod
    def load(cls, checkpoint: str | None, limit: int = 2_000, **options: Any) -> Memory:
        memory = cls(limit, **options)
        if not checkpoint:
            return memory
        try:
            data = json.loads(checkpoint)
        except ValueError:
            return memory  # a checkpoint from another adapter version: start fresh
        if not isinstance(data, dict):
            return memory
        memory.extra = dict(data.get("extra") or {})
        if data.get("v") != 2:  # version 1: ETAs (dropped) and carrier event id → [subject, id]
            for key, pair in (data.get("events") or {}).items():
                if isinstance(pair, list) and len(pair) >= 2:
                    memory._set("events", str(key), [str(pair[0]), str(pair[1])])
            memory._journal.clear()
            return memory
        for table in _TABLES:
            for key, value in (data.get(table) or {}).items():
                memory._set(table, str(key), value)
        for key, (text, _fragment) in memory._tables["stories"].items():
            memory._touched[key] = float(json.loads(text).get("t") or 0)
        memory._journal.clear()
        return memory

    def dump(self) -> str:
        """The checkpoint text; what was changed until now is committed with it."""
        self.dirty = False
        self._journal.clear()
        parts = ['{"v":2']
        for table in _TABLES:
            parts.append(f',"{table}":{{')
            parts.append(",".join(fragment for _text, fragment in self._tables[table].values()))
            parts.append("}")
        parts.append(',"extra":')
        parts.append(_encode(self.extra))
        parts.append("}")
        return "".join(parts)

    def rollback(self) -> None:
        """Undo every change since the last :meth:`dump` (a file that could not be read)."""
        while self._journal:
            table, key, before, touched = self._journal.pop()
            entries = self._tables[table]
            if before is None:
                entries.pop(key, None)
            else:
                entries[key] = before
            if table == "stories":
                if touched is None:
                    self._touched.pop(key, None)
                else:
                    self._touched[key] = touched

    # -- tables ----------------------------------------------------------------------------

    def story(self, key: str) -> dict[str, Any] | None:
        """A copy of the story, None when unknown or expired."""
        value = self._get("stories", key)
        if value is None:
            return None
        if self.clock() - self._touched.get(key, 0.0) > self.max_age:
            self._delete("stories", key)
            return None
        story: dict[str, Any] = value
        return story

    def put_story(self, key: str, story: dict[str, Any]) -> None:
        story["t"] = round(self.clock(), 3)
        self._set("stories", key, story)
        self._expire_stories()

    def stories(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, (text, _fragment) in self._tables["stories"].items():
            yield key, json.loads(text)

    def thread_of(self, alias: str) -> str | None:
        """The thread an alias (``ref:<BOL>``, ``po:<PO>``, ``asn:<sender>/<id>``) names, if its
        story is still remembered."""
        thread = self._get("aliases", alias)
        if thread is None:
            return None
        if str(thread) not in self._tables["stories"]:
            self._delete("aliases", alias)
            return None
        return str(thread)

    def alias(self, alias: str, thread: str) -> None:
        if self._get_text("aliases", alias) != _encode(thread):
            self._set("aliases", alias, thread)

    def pending_items(self) -> list[tuple[str, dict[str, Any]]]:
        return [(key, json.loads(text)) for key, (text, _f) in self._tables["pending"].items()]

    def put_pending(self, key: str, item: dict[str, Any]) -> None:
        self._set("pending", key, item)

    def drop_pending(self, key: str) -> None:
        self._delete("pending", key)

    def carrier_event(self, carrier_id: str) -> list[str] | None:
        """``[subject, event id, thread, milestone key]`` of a carrier event posted earlier."""
        value = self._get("events", carrier_id)
        return [str(v) for v in value] if isinstance(value, list) else None

    def remember_event(self, carrier_id: str, subject: str, event_id: str, thread: str = "",
                       milestone: str = "") -> None:
        self._set("events", carrier_id, [subject, event_id, thread, milestone])

    def size(self, table: str) -> int:
        return len(self._tables[table])

    # -- internals -------------------------------------------------------------------------

    def _get_text(self, table: str, key: str) -> str | None:
        entry = self._tables[table].get(key)
        return entry[0] if entry else None

    def _get(self, table: str, key: str) -> Any:
        text = self._get_text(table, key)
        return None if text is None else json.loads(text)

    def _set(self, table: str, key: str, value: Any) -> None:
        entries = self._tables[table]
        self._journal.append((table, key, entries.get(key),
                              self._touched.get(key) if table == "stories" else None))
        text = _encode(value)
        entries[key] = (text, f"{_encode(key)}:{text}")
        entries.move_to_end(key)
        if table == "stories":
            self._touched[key] = float(value.get("t") or self.clock()) \
                if isinstance(value, dict) else self.clock()
        cap = max(10, self.limit * _FACTOR[table])
        while len(entries) > cap:
            self._delete(table, next(iter(entries)))
        self.dirty = True

    def _delete(self, table: str, key: str) -> None:
        entries = self._tables[table]
        if key not in entries:
            return
        self._journal.append((table, key, entries[key],
                              self._touched.get(key) if table == "stories" else None))
        del entries[key]
        if table == "stories":
            self._touched.pop(key, None)
        self.dirty = True

    def _expire_stories(self) -> None:
        """Stories are ordered by their last touch: the expired ones are at the front."""
        entries = self._tables["stories"]
        oldest = self.clock() - self.max_age
        while entries:
            key = next(iter(entries))
            if self._touched.get(key, 0.0) >= oldest:
                break
            self._delete("stories", key)
