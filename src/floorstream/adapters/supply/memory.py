"""What a supply source remembers between files: the stories it is telling.

A source must remember a little to tell one story per shipment: which thread a booking number,
a bill of lading or a PO belongs to, what the last post of a shipment said (its milestones, its
ETA, what the ASN shipped), which documents wait for their PO to reach the ERP, and which post
a carrier's event id became (DCSA retractions name events that way). All of it is committed in
the same transaction as the posts, so a restart remembers exactly what was posted.

**Keyed rows, written only when changed.** Each story is one row of the source's own state
(``Emitter.checkpoint(state=...)``, table ``fs_detector_state``), keyed ``s:<thread>``; each
name of a story — an alias (``ref:<BOL>``, ``po:<PO>``, ``asn:<sender>/<id>``) or a carrier
event id (``ev:<id>``) — is a row ``a:<name>`` → its thread. A file writes the rows of the
stories it changed and the names it added, nothing else: a few hundred bytes per ASN, where
the whole memory in every checkpoint used to cost ~0.3 MB per file. The checkpoint text keeps
only what is small and must be listed whole: the documents waiting for their PO (``floorstream
supply pending`` reads them there) and the transport's own state (an HTTP cursor, an ETag).

**Read lazily, cached.** A story or a name is read from the store the first time a document
needs it (``AdapterContext.load_state``: one indexed query per file for all the names its
documents carry, see :meth:`prefetch`) and kept in an LRU cache of ``limit`` stories (and
their names). A row written but not yet committed is never evicted from the cache (a re-read
would see the older committed row); the file's ack (:meth:`committed`) releases it. Without a
store (a test double, the library), the cache is the memory: an evicted story is forgotten.

**Bounded in what it believes.** A story untouched for ``max_age`` seconds reads as unknown;
a story keeps its newest 16 aliases and 16 carrier event ids, and a name row counts only while
its story still lists it, so an old name cannot lead to a story that gave it up. Waiting
documents are capped at ``limit`` too and expire at their own time.

**All or nothing per file.** Changes since the last :meth:`dump` are journaled; when reading a
file fails half-way (the ERP went away on its third document) :meth:`rollback` restores the
memory the file found, so its retry decides exactly as the first attempt would have.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Dump", "Loader", "Memory", "StateUnavailable", "row_key"]

#: reads committed state rows by key (``AdapterContext.load_state``)
Loader = Callable[[Collection[str]], dict[str, dict[str, Any]]]

_ALIASES_PER_STORY = 16
_EVENTS_PER_STORY = 16
_NAMES_PER_STORY = 40  # cache of names per cached story (16 aliases + up to 24 event ids)
_STORY = "s:"
_NAME = "a:"
_MAX_KEY = 255  # the store's key column (fs_detector_state.subject)
_MISSING = object()
_NAMES, _PENDING = 1, 2  # journal tables


def row_key(prefix: str, name: str) -> str:
    """The row key of a story (``s:``) or a name (``a:``); an identifier too long for the
    store's key column is shortened with a hash of the whole (never two names in one row)."""
    key = prefix + name
    if len(key) <= _MAX_KEY:
        return key
    return f"{key[:200]}#{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}"


class StateUnavailable(Exception):
    """The store could not be read: not the document's fault, so the file waits (like for
    an unreachable ERP) rather than being quarantined."""


@dataclass(frozen=True, slots=True)
class Dump:
    """What one file commits: the checkpoint text (None: unchanged) and the state rows it
    changed. Pass it to :meth:`Memory.committed` once committed."""

    checkpoint: str | None
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    generation: int = 0
    pinned: tuple[str, ...] = ()


class Memory:
    """A source's memory; see the module docstring."""

    def __init__(self, limit: int = 1_000, *, max_age: float = 60 * 86_400,
                 clock: Callable[[], float] = time.time, loader: Loader | None = None,
                 join: Iterable[str] = (),
                 foreign: Callable[[str, Collection[str]], dict[str, dict[str, Any]]] | None
                 = None) -> None:
        self.limit = limit
        self.max_age = max_age
        self.clock = clock
        self.loader = loader
        self.join = tuple(join)  # other sources whose stories a document may join
        self.foreign = foreign  # reads their committed rows (AdapterContext.load_state_of)
        self._stories: OrderedDict[str, bytes | None] = OrderedDict()  # thread → JSON; None: none
        self._names: OrderedDict[str, str | None] = OrderedDict()  # name → thread; None: none
        self._live: dict[str, dict[str, Any]] = {}  # stories changed since the last dump
        self._rows: dict[str, str] = {}  # names written since the last dump → thread
        # carrier event ids (``ev:``) written since the last dump → thread, not cached: see
        # _written_event; and those dumped, not committed yet, per generation
        self._events: dict[str, str] = {}
        self._unsaved: dict[int, dict[str, str]] = {}
        self._journal: list[tuple[int, str, Any]] = []
        self._pending: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._pinned: dict[str, int] = {}  # cache keys dumped, not committed → generation
        #: how many keys of each table (``s:``, ``a:``) are pinned: what eviction must skip
        self._held: dict[str, int] = {_STORY: 0, _NAME: 0}
        self._lock = threading.Lock()  # _pinned, _unsaved: released by acks (pipeline thread)
        self._generation = 0
        self.extra: dict[str, Any] = {}  # transport state (HTTP cursor, ETag)
        #: the checkpoint text changed (waiting documents, ``extra``): the next dump writes it
        self.dirty = False

    # -- checkpoint ------------------------------------------------------------------------

    @classmethod
    def load(cls, checkpoint: str | None, limit: int = 1_000, **options: Any) -> Memory:
        """The memory of a checkpoint; an older checkpoint that carried the stories (version
        1 or 3) hands them over: they are written as rows with the next dump."""
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
        version = data.get("v")
        if version == 4:
            for key, item in (data.get("pending") or {}).items():
                memory._pending[str(key)] = item
            return memory
        stories: dict[str, dict[str, Any]] = {}
        if version != 3:  # version 1: carrier event id → [subject, id] (its thread: the subject)
            for key, pair in (data.get("events") or {}).items():
                if isinstance(pair, list) and len(pair) >= 2:
                    story = stories.setdefault(str(pair[0]), {"v": {}})
                    story["v"][str(key)] = [str(pair[0]), str(pair[1]), ""]
        else:
            tables: dict[str, dict[str, Any]] = {"stories": {}, "pending": {}}
            base = data.get("base") or {}
            for table in tables:
                tables[table].update(base.get(table) or {})
            for entry in data.get("log") or []:
                table = ("stories", "pending")[int(entry[0])]
                tables[table].pop(str(entry[1]), None)  # a change moves the entry to the end
                if entry[2] is not None:
                    tables[table][str(entry[1])] = entry[2]
            stories = tables["stories"]
            memory._pending.update(tables["pending"])
        for key, story in stories.items():  # oldest first: the newest names win
            story.setdefault("t", int(memory.clock()))  # version 1 kept no time: now
            memory._live[key] = story
            for alias in story.get("a") or ():
                memory._point(str(alias), key)
            for carrier_id in story.get("v") or ():
                memory._point(f"ev:{carrier_id}", key)
        memory._journal.clear()
        memory.dirty = True
        return memory

    def dump(self) -> Dump:
        """What the file read since the last dump commits: the checkpoint text if it changed,
        and the rows of the stories and names it changed. The rows stay in the cache, pinned,
        until :meth:`committed`."""
        self._generation += 1
        generation = self._generation
        state: dict[str, dict[str, Any]] = {}
        pinned: list[str] = []
        for key, story in self._live.items():
            clean = {k: v for k, v in story.items() if v or v == 0}
            self._stories[key] = orjson.dumps(clean)
            self._stories.move_to_end(key)
            state[row_key(_STORY, key)] = clean
            pinned.append(_STORY + key)
        for alias, thread in self._rows.items():
            state[row_key(_NAME, alias)] = {"s": thread}
            pinned.append(_NAME + alias)
        events = self._events
        for alias, thread in events.items():
            state[row_key(_NAME, alias)] = {"s": thread}
        self._live.clear()
        self._rows.clear()
        self._events = {}
        self._journal.clear()
        if (pinned or events) and self.loader is not None:
            with self._lock:
                held = self._held
                for key in pinned:
                    if key not in self._pinned:
                        held[key[:2]] += 1
                    self._pinned[key] = generation
                if events:
                    self._unsaved[generation] = events
        self._trim()
        checkpoint = self.checkpoint() if self.dirty else None
        self.dirty = False
        return Dump(checkpoint, state, generation, tuple(pinned))

    def committed(self, dump: Dump) -> None:
        """The rows of ``dump`` are committed: the cache may let them go (any thread)."""
        if self.loader is None:
            return
        with self._lock:
            self._unsaved.pop(dump.generation, None)
            for key in dump.pinned:
                if self._pinned.get(key) == dump.generation:
                    del self._pinned[key]
                    self._held[key[:2]] -= 1

    def checkpoint(self) -> str:
        """The checkpoint text: the waiting documents and the transport's state."""
        return "".join(('{"v":4,"pending":', orjson.dumps(self._pending).decode(),
                        ',"extra":', orjson.dumps(self.extra).decode(), "}"))

    def rollback(self) -> None:
        """Undo every change since the last :meth:`dump` (a file that could not be read)."""
        self._live.clear()
        self._rows.clear()
        self._events.clear()
        while self._journal:
            table, key, before = self._journal.pop()
            entries: Any = self._names if table == _NAMES else self._pending
            if before is _MISSING:
                entries.pop(key, None)
            else:
                entries[key] = before

    # -- stories ---------------------------------------------------------------------------

    def prefetch(self, threads: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        """Read the stories and names a file's documents may need in one query (and the
        stories those names lead to in a second), instead of one query each."""
        if self.loader is None:
            return
        wanted_names = [n for n in dict.fromkeys(names) if n not in self._names
                        and not (n.startswith("ev:") and self._written_event(n) is not None)]
        wanted = [t for t in dict.fromkeys(threads) if t not in self._stories]
        self._fetch(wanted, wanted_names)
        found = {self._names.get(n) for n in wanted_names}
        self._fetch([t for t in found if t is not None and t not in self._stories], [])

    def story(self, key: str) -> dict[str, Any] | None:
        """The story (to change and put back), None when unknown or expired."""
        value = self._live.get(key)
        if value is None:
            if key not in self._stories:
                self._fetch([key], [])
            else:
                self._stories.move_to_end(key)
            text = self._stories.get(key)
            if text is None:
                return None
            value = orjson.loads(text)
        if self.clock() - float(value.get("t") or 0.0) > self.max_age:
            return None
        story: dict[str, Any] = value
        return story

    def put_story(self, key: str, story: dict[str, Any], aliases: Iterable[str] = (),
                  carrier_ids: Iterable[str] = ()) -> None:
        """Store the story (touched now) and name it by its aliases too (the story's ``a``:
        the newest 16 are kept) and by the carrier event ids just added to its ``v``."""
        known = story.get("a") or ()  # at most 16: a list is as quick as a set here
        new = [a for a in aliases if a not in known]
        dropped: list[str] = []
        if new:
            names = [*(story.get("a") or ()), *new]
            dropped, story["a"] = names[:-_ALIASES_PER_STORY], names[-_ALIASES_PER_STORY:]
        story["t"] = int(self.clock())
        self._live[key] = story
        for alias in new:
            self._point(alias, key)
        for carrier_id in carrier_ids:
            # a carrier event id is looked up only by a retraction of it: its row is written
            # but not cached (1,000 ids a DCSA page churned the names cache; ~15 % of the
            # page's CPU) unless a lookup cached it already (then the cache must follow)
            alias = f"ev:{carrier_id}"
            if self.loader is None or alias in self._names:
                self._point(alias, key)
            else:
                self._events[alias] = key
        posted = story.get("v")
        if posted and len(posted) > _EVENTS_PER_STORY + 8:  # the oldest go
            kept = list(posted)[-_EVENTS_PER_STORY:]
            dropped += [f"ev:{c}" for c in list(posted)[:-_EVENTS_PER_STORY]]
            story["v"] = {c: posted[c] for c in kept}
        for alias in dropped:  # their rows stay, unheeded (the story no longer lists them)
            if self._names.get(alias) == key:
                self._journal.append((_NAMES, alias, key))
                del self._names[alias]

    def stories(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The stories in the cache (and those changed since the last dump)."""
        for key in [*self._stories, *(k for k in self._live if k not in self._stories)]:
            story = self.story(key)
            if story is not None:
                yield key, story

    def thread_of(self, alias: str) -> str | None:
        """The thread an alias (``ref:<BOL>``, ``po:<PO>``, ``asn:<sender>/<id>``,
        ``ev:<carrier event id>``) names, if its story is remembered and still lists it."""
        thread: str | None
        if alias in self._names:
            self._names.move_to_end(alias)
            thread = self._names[alias]
        else:
            thread = self._written_event(alias) if alias.startswith("ev:") else None
            if thread is None:
                self._fetch([], [alias])
                thread = self._names.get(alias)
        if thread is None:
            return None
        story = self.story(thread)
        if story is None:
            return None
        if alias.startswith("ev:"):
            return thread if alias[3:] in (story.get("v") or {}) else None
        return thread if alias in (story.get("a") or ()) else None

    def joined_thread(self, aliases: list[str]) -> tuple[str, str | None] | None:
        """The thread of another source's story (``join``) that one of ``aliases`` names,
        and the newest post of that story: a carrier report of a shipment an ASN inbox
        told continues the ASN's thread. Read-only, from the committed rows, not cached (the
        other source keeps writing them)."""
        if not self.join or self.foreign is None or not aliases:
            return None
        keys = [row_key(_NAME, a) for a in aliases]
        for source in self.join:
            try:
                names = self.foreign(source, keys)
                for alias, key in zip(aliases, keys, strict=True):
                    thread = (names.get(key) or {}).get("s")
                    if not isinstance(thread, str):
                        continue
                    story = self.foreign(source, [row_key(_STORY, thread)]).get(
                        row_key(_STORY, thread))
                    if (not story or alias not in (story.get("a") or ())
                            or self.clock() - float(story.get("t") or 0.0) > self.max_age):
                        continue
                    told = story.get("o") or {}
                    last = story.get("last") or (
                        next(reversed(told.values())).get("id") if told else None)
                    return thread, last if isinstance(last, str) else None
            except Exception as exc:
                raise StateUnavailable(
                    f"reading the stories of source {source!r} failed: {exc!r}") from exc
        return None

    # -- waiting documents, carrier events -------------------------------------------------

    def pending_items(self) -> list[tuple[str, dict[str, Any]]]:
        return [(key, dict(item)) for key, item in self._pending.items()]

    def put_pending(self, key: str, item: dict[str, Any]) -> None:
        self._journal.append((_PENDING, key, self._pending.get(key, _MISSING)))
        self._pending[key] = item
        self._pending.move_to_end(key)
        while len(self._pending) > max(10, self.limit):
            self.drop_pending(next(iter(self._pending)))
        self.dirty = True

    def drop_pending(self, key: str) -> None:
        if key not in self._pending:
            return
        self._journal.append((_PENDING, key, self._pending.pop(key)))
        self.dirty = True

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
        """Entries of a table in memory: ``stories``, ``aliases`` (names of stories),
        ``pending``."""
        if table == "aliases":
            return sum(1 for thread in self._names.values() if thread is not None)
        if table == "pending":
            return len(self._pending)
        return sum(1 for t in self._stories.values() if t is not None) + sum(
            1 for k in self._live if self._stories.get(k) is None)

    # -- internals -------------------------------------------------------------------------

    def _fetch(self, threads: list[str], names: list[str]) -> None:
        """Read stories and names from the store into the cache (None: there is none)."""
        if self.loader is None or not (threads or names):
            return
        keys = {row_key(_STORY, t): (True, t) for t in threads}
        keys.update({row_key(_NAME, n): (False, n) for n in names})
        try:
            rows = self.loader(list(keys))
        except Exception as exc:
            raise StateUnavailable(f"reading the source's stories failed: {exc!r}") from exc
        for key, (is_story, name) in keys.items():
            row = rows.get(key)
            if is_story:
                self._stories[name] = orjson.dumps(row) if row else None
            else:
                thread = row.get("s") if row else None
                self._names[name] = thread if isinstance(thread, str) else None

    def _written_event(self, alias: str) -> str | None:
        """The thread of a carrier event id this source wrote but has not committed yet (the
        store would answer with the row before it), newest first; None if there is none."""
        thread = self._events.get(alias)
        if thread is not None:
            return thread
        with self._lock:
            for events in reversed(self._unsaved.values()):
                thread = events.get(alias)
                if thread is not None:
                    return thread
        return None

    def _point(self, alias: str, thread: str) -> None:
        before = self._names.get(alias, _MISSING)
        if before == thread:
            return  # its row says so already (or will, with this file's rows)
        self._journal.append((_NAMES, alias, before))
        self._names[alias] = thread
        self._names.move_to_end(alias)
        self._rows[alias] = thread

    def _trim(self) -> None:
        """Keep ``limit`` stories (and their names) in the cache, least recently used out;
        never one written but not committed yet (with a store to read it back from).

        The cost follows what is evicted, not what is pinned: with more files in flight than
        ``limit`` stories (the pipeline behind the source), the loop used to turn every pinned
        story at the head of the cache over to its end on every dump, after copying the
        pinned keys into a set: ~175 us of CPU per benchmark ASN with 10 files in flight,
        ~270 with 500, ~1,400 with 1,100 (the two speeds of ``bench/supply.py``)."""
        cap = max(10, self.limit)
        with self._lock:  # the pipeline's acks unpin meanwhile: read _pinned under the lock
            self._evict(self._stories, cap, _STORY, forget=self.loader is None)
            self._evict(self._names, cap * _NAMES_PER_STORY, _NAME, forget=False)

    def _evict(self, entries: OrderedDict[str, Any], cap: int, prefix: str, *,
               forget: bool) -> None:
        # at most as many as are over the cap and not pinned (a pinned name may have left
        # the cache: then fewer than could go go, never a pinned one and never an endless
        # turn over pinned keys)
        excess = min(len(entries) - cap, len(entries) - self._held[prefix])
        pinned = self._pinned
        while excess > 0:
            key = next(iter(entries))
            if prefix + key in pinned:
                entries.move_to_end(key)  # not committed yet: a re-read would be stale
                continue
            excess -= 1
            value = entries.pop(key)
            if forget and value:  # no store to read it back from: its names go with it
                story = orjson.loads(value)
                for alias in [*(story.get("a") or ()),
                              *(f"ev:{c}" for c in story.get("v") or ())]:
                    if self._names.get(alias) == key:
                        del self._names[alias]
