"""What a supply source remembers between files: the stories it is telling.

A source must remember a little to tell one story per shipment: which thread a booking number,
a bill of lading or a PO belongs to, what the last post of a shipment said (its milestones, its
ETA, what the ASN shipped), which documents wait for their PO to reach the ERP, and which post
a carrier's event id became (DCSA retractions name events that way). The memory travels in the
source's checkpoint, committed in the same transaction as the posts, so a restart remembers
exactly what was posted.

**Bounded.** Two tables, each an LRU with a cap (``limit`` stories, as many waiting
documents); stories also expire ``max_age`` seconds after they were last touched, waiting
documents at their own expiry. A story lists its aliases (``ref:<BOL>``, ``po:<PO>``…, at
most 16) and the carrier event ids it posted (``v``, the newest 16, for DCSA retractions);
the index of both is rebuilt from the stories when the memory is loaded and loses a story's
names with the story. Nothing grows forever.

**Cheap to checkpoint.** Every entry is kept as its JSON text (orjson), and the checkpoint is
a base (every entry as of the last compaction, one cached string) plus the log of changes
since, so a file's checkpoint is a copy of text already encoded, not an encoding of thousands
of stories; the log is folded into the base once it is a quarter as long. A story changed
several times by one file (a DCSA page with four events of a booking) is encoded once, when
the file's checkpoint is written. A read decodes one small entry (or hands out the story being
changed), which the interpreter changes and then puts back.

**All or nothing per file.** Changes since the last :meth:`dump` are journaled; when reading a
file fails half-way (the ERP went away on its third document) :meth:`rollback` restores the
memory the file found, so its retry decides exactly as the first attempt would have.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

__all__ = ["Memory"]

_TABLES = ("stories", "pending")
_TABLE_NO = {table: number for number, table in enumerate(_TABLES)}
_ALIASES_PER_STORY = 16
_EVENTS_PER_STORY = 16
_INDEX = "index"  # journal entries of the alias index


def _encode(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


_decode = orjson.loads


class Memory:
    """A source's memory; see the module docstring."""

    def __init__(self, limit: int = 1_000, *, max_age: float = 60 * 86_400,
                 clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.max_age = max_age
        self.clock = clock
        # table → key → (JSON text of the value, JSON text of "key":value)
        self._tables: dict[str, OrderedDict[str, tuple[str, str]]] = {
            t: OrderedDict() for t in _TABLES}
        self._touched: dict[str, float] = {}  # story key → last touch (clock seconds)
        self._index: dict[str, str] = {}  # alias → thread (rebuilt from the stories)
        self._live: dict[str, dict[str, Any]] = {}  # stories changed since the last dump
        self._journal: list[tuple[str, str, Any, float | None]] = []
        self._base = _empty_base()  # the tables at the last compaction, as JSON text
        self._log: list[str] = []  # changes since: [table, key, value or null]
        self._log_text = ""  # the log as written by the last dump
        self._log_dumped = 0  # entries of the log in _log_text
        self.extra: dict[str, Any] = {}  # transport state (HTTP cursor, ETag)
        self.dirty = False

    # -- checkpoint ------------------------------------------------------------------------

    @classmethod
    def load(cls, checkpoint: str | None, limit: int = 1_000, **options: Any) -> Memory:
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
        if data.get("v") != 3:  # version 1: ETAs (dropped) and carrier event id → [subject, id]
            for key, pair in (data.get("events") or {}).items():
                if isinstance(pair, list) and len(pair) >= 2:  # its thread was the subject
                    story = memory._get("stories", str(pair[0])) or {"v": {}}
                    story["v"][str(key)] = [str(pair[0]), str(pair[1]), ""]
                    memory._set("stories", str(pair[0]), story)
        else:
            base = data.get("base") or {}
            for table in _TABLES:
                for key, value in (base.get(table) or {}).items():
                    memory._set(table, str(key), value)
            for entry in data.get("log") or []:
                table, key, value = _TABLES[int(entry[0])], str(entry[1]), entry[2]
                if value is None:
                    memory._delete(table, key)
                else:
                    memory._set(table, key, value)
        for key, story in memory.stories():  # the index, newest stories last (they win)
            for alias in story.get("a") or ():
                memory._index[str(alias)] = key
            for carrier_id in story.get("v") or ():
                memory._index[f"ev:{carrier_id}"] = key
        memory._compact()
        memory._journal.clear()
        memory.dirty = False
        return memory

    def dump(self) -> str:
        """The checkpoint text; what was changed until now is committed with it."""
        self.dirty = False
        self._expire_stories()
        self._flush()
        self._journal.clear()
        if len(self._log) > max(256, sum(len(t) for t in self._tables.values()) // 4):
            self._compact()
        elif self._log_dumped < len(self._log):
            new = ",".join(self._log[self._log_dumped:])
            self._log_text = f"{self._log_text},{new}" if self._log_text else new
            self._log_dumped = len(self._log)
        return "".join(('{"v":3,"base":', self._base, ',"log":[', self._log_text,
                        '],"extra":', _encode(self.extra), "}"))

    def rollback(self) -> None:
        """Undo every change since the last :meth:`dump` (a file that could not be read)."""
        self._live.clear()
        while self._journal:
            table, key, before, touched = self._journal.pop()
            if table == _INDEX:
                if before is None:
                    self._index.pop(key, None)
                else:
                    self._index[key] = before
                continue
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
        del self._log[self._log_dumped:]

    def _compact(self) -> None:
        """Fold the log into the base: the base becomes every entry as it is now."""
        self._base = "{" + ",".join(
            f'"{table}":{{{",".join(f for _t, f in self._tables[table].values())}}}'
            for table in _TABLES) + "}"
        self._log.clear()
        self._log_text = ""
        self._log_dumped = 0

    # -- stories ---------------------------------------------------------------------------

    def story(self, key: str) -> dict[str, Any] | None:
        """The story (to change and put back), None when unknown or expired."""
        value = self._live.get(key)
        if value is None:
            value = self._get("stories", key)
        if value is None:
            return None
        if self.clock() - self._touched.get(key, 0.0) > self.max_age:
            self._delete("stories", key)
            return None
        story: dict[str, Any] = value
        return story

    def put_story(self, key: str, story: dict[str, Any], aliases: Iterable[str] = (),
                  carrier_ids: Iterable[str] = ()) -> None:
        """Store the story (touched now) and name it by its aliases too (the story's ``a``:
        the newest 16 are kept) and by the carrier event ids just added to its ``v``."""
        known = set(story.get("a") or ())
        new = [a for a in aliases if a not in known]
        dropped: list[str] = []
        if new:
            names = [*(story.get("a") or ()), *new]
            dropped, story["a"] = names[:-_ALIASES_PER_STORY], names[-_ALIASES_PER_STORY:]
        story["t"] = int(self.clock())
        entries = self._tables["stories"]
        if key not in self._live:  # the first change since the last dump: journaled
            self._journal.append(("stories", key, entries.get(key), self._touched.get(key)))
            if key not in entries:
                entries[key] = ("", "")  # encoded when the file's checkpoint is written
        self._live[key] = story
        entries.move_to_end(key)
        self._touched[key] = story["t"]
        for alias in new:
            self._point(alias, key)
        for alias in dropped:  # the oldest names go: the index forgets them
            if self._index.get(alias) == key:
                self._point(alias, None)
        for carrier_id in carrier_ids:
            self._point(f"ev:{carrier_id}", key)
        posted = story.get("v")
        if posted and len(posted) > _EVENTS_PER_STORY + 8:  # the oldest go, with their names
            dropped = list(posted)[:-_EVENTS_PER_STORY]
            story["v"] = {c: posted[c] for c in list(posted)[-_EVENTS_PER_STORY:]}
            for carrier_id in dropped:
                if self._index.get(f"ev:{carrier_id}") == key:
                    self._point(f"ev:{carrier_id}", None)
        self.dirty = True
        while len(entries) > max(10, self.limit):
            self._delete("stories", next(iter(entries)))

    def stories(self) -> Iterator[tuple[str, dict[str, Any]]]:
        self._flush()
        for key, (text, _fragment) in self._tables["stories"].items():
            yield key, _decode(text)

    def thread_of(self, alias: str) -> str | None:
        """The thread an alias (``ref:<BOL>``, ``po:<PO>``, ``asn:<sender>/<id>``) names, if its
        story is still remembered."""
        thread = self._index.get(alias)
        if thread is None:
            return None
        if thread not in self._tables["stories"]:
            self._point(alias, None)
            return None
        return thread

    # -- waiting documents, carrier events -------------------------------------------------

    def pending_items(self) -> list[tuple[str, dict[str, Any]]]:
        return [(key, _decode(text)) for key, (text, _f) in self._tables["pending"].items()]

    def put_pending(self, key: str, item: dict[str, Any]) -> None:
        self._set("pending", key, item)

    def drop_pending(self, key: str) -> None:
        self._delete("pending", key)

    def carrier_event(self, carrier_id: str) -> list[str] | None:
        """``[subject, event id, thread, milestone key]`` of a carrier event a story posted
        (its ``v``: carrier event id → [subject, event id, milestone key])."""
        thread = self.thread_of(f"ev:{carrier_id}")
        story = self.story(thread) if thread is not None else None
        found = (story or {}).get("v", {}).get(carrier_id)
        if not found or thread is None:
            return None
        return [str(found[0]), str(found[1]), thread, str(found[2] if len(found) > 2 else "")]

    def size(self, table: str) -> int:
        """Entries of a table (``aliases``: of the index of aliases and carrier event ids)."""
        return len(self._index) if table == "aliases" else len(self._tables[table])

    # -- internals -------------------------------------------------------------------------

    def _get(self, table: str, key: str) -> Any:
        entry = self._tables[table].get(key)
        return None if entry is None else _decode(entry[0])

    def _flush(self) -> None:
        """Encode the stories changed since the last dump (empty values left out)."""
        entries = self._tables["stories"]
        for key, story in self._live.items():
            if key not in entries:
                continue  # evicted meanwhile
            text = _encode({k: v for k, v in story.items() if v or v == 0})
            key_text = _encode(key)
            entries[key] = (text, f"{key_text}:{text}")
            self._log.append(f"[{_TABLE_NO['stories']},{key_text},{text}]")
        self._live.clear()

    def _point(self, alias: str, thread: str | None) -> None:
        before = self._index.get(alias)
        if before == thread:
            return
        self._journal.append((_INDEX, alias, before, None))
        if thread is None:
            del self._index[alias]
        else:
            self._index[alias] = thread

    def _set(self, table: str, key: str, value: Any) -> None:
        entries = self._tables[table]
        self._journal.append((table, key, entries.get(key),
                              self._touched.get(key) if table == "stories" else None))
        text = _encode(value)
        key_text = _encode(key)
        entries[key] = (text, f"{key_text}:{text}")
        entries.move_to_end(key)
        self._log.append(f"[{_TABLE_NO[table]},{key_text},{text}]")
        if table == "stories":
            self._touched[key] = float(value.get("t") or self.clock()) \
                if isinstance(value, dict) else self.clock()
        cap = max(10, self.limit)
        while len(entries) > cap:
            self._delete(table, next(iter(entries)))
        self.dirty = True

    def _delete(self, table: str, key: str) -> None:
        entries = self._tables[table]
        if key not in entries:
            return
        self._journal.append((table, key, entries[key],
                              self._touched.get(key) if table == "stories" else None))
        if table == "stories":  # its aliases go with it
            live = self._live.pop(key, None)
            story = live if live is not None else _decode(entries[key][0] or "{}")
            for alias in [*(story.get("a") or ()), *(f"ev:{c}" for c in story.get("v") or ())]:
                if self._index.get(alias) == key:
                    self._point(alias, None)
            self._touched.pop(key, None)
        del entries[key]
        self._log.append(f"[{_TABLE_NO[table]},{_encode(key)},null]")
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


def _empty_base() -> str:
    return "{" + ",".join(f'"{table}":{{}}' for table in _TABLES) + "}"
