"""The Sparkplug B host side of an mqtt source: messages in ``seq`` order, data held for its
birth, backfills summed up, host applications' STATE — and what reaches the pipeline.

The adapter decodes a message and hands it here (:meth:`SparkplugHost.message`); the stages,
each a small module with no MQTT of its own:

1. :mod:`.reorder` — per node, messages are processed in ``seq`` order; one that comes early
   waits up to ``reorder_timeout`` for the missing one. A gap given up is one log line
   (``sparkplug_seq_gap``), the node's next values are marked uncertain (``attrs.uncertain``:
   a post field and a word in the summary), and only a Primary Host asks for a rebirth.
2. :mod:`.sparkplug` — the session: births, aliases, bdSeq, deaths → Changes and Events.
3. :mod:`.prebirth` — data whose aliases no birth defined waits for the birth, reported once
   per node and session, replayed ahead of the birth's values; what overflows is quarantined
   once with a count.
4. :mod:`.backfill` — historical or late values become one post per subject and burst.
5. :mod:`.hoststate` — STATE messages (never quarantined): online/offline posts if asked.

Both paho's network thread (:meth:`message`) and the adapter's run loop (:meth:`tick`, for the
timeouts) come here, so everything runs under one lock. Held messages keep their MQTT ack until
they are processed, so a crash loses nothing: the broker sends them again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from floorstream.adapters.mqtt.backfill import Backfill, Burst, summary
from floorstream.adapters.mqtt.config import MqttConfig
from floorstream.adapters.mqtt.hoststate import HostStates, parse_state
from floorstream.adapters.mqtt.prebirth import BirthWait, Episode
from floorstream.adapters.mqtt.reorder import Gap, Reorder
from floorstream.adapters.mqtt.sparkplug import SparkplugResult, SparkplugSessions
from floorstream.adapters.mqtt.topics import MissingValue, Template
from floorstream.model import Change, Event, Severity, utcnow
from floorstream.plugin import (
    Checkpoint,
    CheckpointParts,
    DecodeError,
    Emitter,
    Interest,
    phrasing,
)

__all__ = ["Item", "SparkplugHost"]

MAX_SUBJECT = 255  # the store's subject column
_CMD = ("NCMD", "DCMD")
_DATA = ("NDATA", "DDATA")
Ack = Callable[[], None] | None


@dataclass(slots=True)
class Item:
    """One decoded edge message on its way through the stages."""

    levels: list[str]  # from spBv1.0 on
    topic: str
    payload: bytes
    record: dict[str, Any]
    observed: datetime
    ack: Ack
    key: str  # the node's session key: [prefix/]group/node
    prefix: str  # the bridge prefix of the topic ("" or "site/")

    @property
    def device(self) -> str | None:
        return self.levels[4] if len(self.levels) > 4 else None


def _named(specs: Any) -> frozenset[str]:
    """Every text in the source's detector options (``field: Temperature``, ``reason: …``):
    the names a config may give a metric by its path's last element
    (:meth:`SparkplugSessions.short_names`)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value and "/" not in value:
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item)

    for spec in specs or ():
        walk(spec.options.model_dump())
    return frozenset(found)


def _hash_position(topic: str, payload: bytes) -> str:
    return f"{topic}|h:{hashlib.blake2b(payload, digest_size=8).hexdigest()}"


def _combined(acks: list[Ack]) -> Ack:
    real = [a for a in acks if a is not None]
    if not real:
        return None

    def ack() -> None:
        for one in real:
            one()
    return ack


class SparkplugHost:
    """All Sparkplug state of one source and the stages above."""

    def __init__(self, cfg: MqttConfig, log: Any, static_attrs: dict[str, str],
                 subject: Template | None, interest: Interest | None = None) -> None:
        sp = self.sp = cfg.sparkplug
        self.source = cfg.name
        late = int(sp.late_after * 1000) if sp.late_after is not None else None
        interest = interest or Interest()
        self.sessions = SparkplugSessions(cfg.name, cfg.kind, sp.historical,
                                          sp.offline_severity, late_ms=late,
                                          fields=interest.fields, named=_named(cfg.detect))
        #: presence of subjects whose messages carried nothing anyone reads (Interest): the
        #: pipeline hears of each at least every ``presence_lag`` seconds, the first at once
        self.presence_lag = interest.presence_lag
        self.told: dict[str, float] = {}  # subject → when a Change of it last went out
        self.untold: dict[str, tuple[Item, str, int | None]] = {}  # subject → its last quiet
        self.told_at = time.monotonic()  # when ``untold`` was last sent
        self.reorder: Reorder[Item] = Reorder(sp.reorder_timeout, sp.reorder_limit)
        self.waiting: BirthWait[Item] = BirthWait(sp.birth_buffer, sp.birth_wait)
        self.backfill = Backfill(sp.backfill_quiet)
        self.hosts = HostStates()
        self.uncertain: dict[str, tuple[str, set[str]]] = {}  # node → (why, subjects done)
        self.reported: set[str] = set()  # nodes whose wait for a birth was reported
        self.rebirth_at: dict[str, float] = {}  # node → when a rebirth was last asked for
        self.prefix = sp.prefix_levels
        self.static_attrs = static_attrs
        self.subject = subject
        self.log = log
        self.lock = threading.RLock()
        self.emitter: Emitter | None = None
        self.checkpoint: Callable[[], Checkpoint] = lambda: "{}"
        self.publish: Callable[[str, bytes], None] = lambda topic, payload: None
        self.gaps = self.duplicates = self.late = 0
        # held QoS >= 1 messages keep their acks: never so many that the broker's in-flight
        # window (MQTT 5 Receive Maximum; Mosquitto gives 3.1.1 clients 20) fills and the
        # whole source stalls until a timeout
        self.max_held = max(1, cfg.receive_maximum // 2) if cfg.protocol == "5" else 10
        waits = [sp.reorder_timeout, sp.birth_wait, sp.backfill_quiet]
        self.tick_interval = min(1.0, max(0.02, min(w for w in waits if w > 0) / 4)) \
            if any(w > 0 for w in waits) else 1.0
        if interest.fields is not None:
            self.tick_interval = min(self.tick_interval, max(0.02, self.presence_lag))

    def start(self, emitter: Emitter, checkpoint: Callable[[], Checkpoint],
              publish: Callable[[str, bytes], None]) -> None:
        self.emitter, self.checkpoint, self.publish = emitter, checkpoint, publish

    # -- persistence (part of the source's checkpoint) ----------------------------------------

    def dump(self) -> dict[str, Any]:
        state: dict[str, Any] = {"sparkplug": self.sessions.dump()}
        if self.hosts.hosts:
            state["sparkplug_hosts"] = self.hosts.dump()
        if self.backfill.bursts:
            state["sparkplug_backfill"] = self.backfill.dump()
        return state

    def checkpoint_text(self, extra: dict[str, Any]) -> str:
        """The source's checkpoint as JSON: :meth:`dump` plus ``extra`` (the adapter's own
        keys), with the node sessions encoded part by part (:meth:`checkpoint_parts` joined)."""
        return str(self.checkpoint_parts(extra))

    def checkpoint_parts(self, extra: dict[str, Any]) -> CheckpointParts:
        """The checkpoint as the parts the sessions keep (what goes with each birth: queued
        behind a birth storm, checkpoints share the nodes' parts instead of a copy of the
        whole text each). Under the lock: the last-will path asks for it from paho's thread
        while a tick may change the sessions."""
        with self.lock:
            state = dict(extra)
            if self.hosts.hosts:
                state["sparkplug_hosts"] = self.hosts.dump()
            if self.backfill.bursts:
                state["sparkplug_backfill"] = self.backfill.dump()
            rest = json.dumps(state, separators=(",", ":"), sort_keys=True)
            nodes = self.sessions.dump_parts()
        nodes[0] = '{"sparkplug":{'
        return CheckpointParts([*nodes, "," + rest[1:] if rest != "{}" else "}"])

    def load(self, state: dict[str, Any]) -> None:
        self.sessions.load(state.get("sparkplug") or {})
        self.hosts.load(state.get("sparkplug_hosts") or {})
        self.backfill.load(state.get("sparkplug_backfill") or {})

    # -- entry points --------------------------------------------------------------------------

    def message(self, levels: list[str], topic: str, payload: bytes, record: dict[str, Any],
                observed: datetime, ack: Ack, prefix: str) -> None:
        """A decoded edge message (``levels`` from ``spBv1.0`` on)."""
        mtype = levels[2]
        if mtype in _CMD:  # commands to the node, not telemetry
            if ack is not None:
                ack()
            return
        key = f"{prefix}{levels[1]}/{levels[3]}"
        with self.lock:
            seq = record.get("seq")
            fingerprint = hash(payload)
            if mtype in _DATA and isinstance(seq, int) and \
                    self.reorder.next_in_order(key, seq, fingerprint):
                # in order, nothing held (what offer() releases): the common case, no Item
                if not self._plain(levels, topic, payload, record, observed, ack, key, prefix):
                    self._process(Item(levels, topic, payload, record, observed, ack, key,
                                       prefix), None, tried=True)
                return
            item = Item(levels, topic, payload, record, observed, ack, key, prefix)
            now = time.monotonic()
            if mtype == "NDEATH":
                if self.untold:
                    self._tell(key)
                for held, gap in self.reorder.drain(key, now):
                    self._process(held, gap)
                self._abandon(key)
                self._process(item, None)
                self.reorder.forget(key)
                self.uncertain.pop(key, None)
                return
            if not isinstance(seq, int):
                self._process(item, None)
                return
            if mtype == "NBIRTH":
                old, early = self.reorder.birth(key, seq, fingerprint, now)
                for held, gap in old:  # the last session's stragglers: before the birth
                    self._process(held, gap)
                self.uncertain.pop(key, None)
                self.reported.discard(key)
                self._process(item, None)
                for early_seq, early_item, early_fp in early:
                    self._offer(early_item, early_seq, early_fp, now)
                return
            if self.reorder.next_in_order(key, seq, fingerprint):
                self._process(item, None)  # in order, nothing held: what offer() releases
            else:
                self._offer(item, seq, fingerprint, now)

    def state_message(self, levels: list[str], topic: str, payload: bytes,
                      observed: datetime, ack: Ack) -> None:
        """A host application's STATE (``levels`` from ``spBv1.0`` or ``STATE`` on): never
        quarantined; online/offline posts with ``host_state: post``."""
        emitter = self.emitter
        assert emitter is not None
        if self.sp.host_state == "ignore":
            if ack is not None:
                ack()
            return
        parsed = parse_state(levels, payload)
        if isinstance(parsed, str):
            self.log.warning("sparkplug_state_unreadable", topic=topic, error=parsed)
            if ack is not None:
                ack()
            return
        with self.lock:
            found = self.hosts.update(parsed, int(observed.timestamp() * 1000))
            if found is None:
                emitter.checkpoint(self.checkpoint(), ack=ack)
                return
            what, previous = found
            record = self.hosts.hosts[parsed.host]
            stamp = parsed.timestamp
            when = datetime.fromtimestamp(stamp / 1000, UTC) if stamp else observed
            position = f"STATE|{parsed.host}|" + (
                str(stamp) if stamp is not None else f"n{record['n']}") + f"|{what}"
            attrs = {**self.static_attrs, "host": parsed.host}
            if what == "offline":
                event = Event.create(
                    type="host.offline", source=self.source, subject=parsed.host,
                    position=position, occurred_at=when,
                    severity=Severity.parse(self.sp.offline_severity), attrs=attrs,
                    fields={"state": "offline", "host": parsed.host,
                            "summary": f"host application {parsed.host} offline"},
                    thread=parsed.host)
                record["event"] = event.id
            else:
                since = previous.get("since")
                silent = max(0.0, (when.timestamp() * 1000 - since) / 1000) \
                    if isinstance(since, int | float) else 0.0
                event = Event.create(
                    type="host.online", source=self.source, subject=parsed.host,
                    position=position, occurred_at=when, severity=Severity.INFO, attrs=attrs,
                    fields={"state": "online", "host": parsed.host, "silent_s": silent,
                            "summary": f"host application {parsed.host} back online after "
                                       f"{phrasing.duration(silent)}"},
                    clears=previous.get("event"), thread=parsed.host)
            emitter.event(event, ack=ack, checkpoint=self.checkpoint())

    def tick(self) -> None:
        """Timeouts: gaps given up, births waited for too long, backfill bursts over. A bug
        here costs a log line, not the source's run loop."""
        try:
            self._tick()
        except Exception as exc:
            self.log.error("sparkplug_tick_failed", error=repr(exc), exc_info=True)

    def _tick(self) -> None:
        now = time.monotonic()
        with self.lock:
            if self.untold and now - self.told_at >= self.presence_lag:
                self._tell(None)
            deadlines = [d for d in (self.reorder.next_deadline(),
                                     self.waiting.next_deadline(),
                                     self.backfill.next_deadline()) if d is not None]
            if not deadlines or min(deadlines) > now:
                return
            for released in self.reorder.expired(now).values():
                for item, gap in released:
                    self._process(item, gap)
            for key, items in self.waiting.expired(now):
                self.log.warning("sparkplug_birth_wait_expired", node=key, messages=len(items),
                                 waited_s=self.waiting.wait)
                ack = _combined([i.ack for i in items])
                episode = self.waiting.close(key)
                if episode is not None:
                    self._quarantine_episode(key, episode, ack)
                elif ack is not None:
                    self._emitter.checkpoint(None, ack=ack)
            ended = self.backfill.expired(now)
            if ended:
                events = [self._burst_event(subject, burst) for subject, burst in ended]
                checkpoint = self.checkpoint()
                for index, event in enumerate(events):
                    self._emitter.event(event, checkpoint=checkpoint
                                        if index == len(events) - 1 else None)

    # -- the stages ----------------------------------------------------------------------------

    @property
    def _emitter(self) -> Emitter:
        assert self.emitter is not None
        return self.emitter

    def _held_acks(self) -> int:
        """Held messages whose ack waits (QoS >= 1), in the reorder and birth buffers."""
        count = sum(1 for node in self.reorder.nodes.values()
                    for _, held, _ in node.held.values() if held.ack is not None)
        return count + sum(1 for episode in self.waiting.episodes.values()
                           for _, _, held in episode.held if held.ack is not None)

    def _offer(self, item: Item, seq: int, fingerprint: int, now: float) -> None:
        offer = self.reorder.offer(item.key, seq, fingerprint, item, now)
        if offer.kind == "held" and item.ack is not None and \
                self._held_acks() > self.max_held:
            offer.kind, offer.released = "released", self.reorder.drain(item.key, now,
                                                                        "in-flight window")
        if offer.kind == "released":
            for released, gap in offer.released:
                self._process(released, gap)
        elif offer.kind == "duplicate":
            self.duplicates += 1
            if item.ack is not None:  # after the commit of the original (queued before it)
                self._emitter.checkpoint(None, ack=item.ack)
        elif offer.kind == "late":
            self.late += 1
            self._emitter.quarantine(
                item.payload, f"seq {seq} of node {item.key} arrived after the reorder timeout "
                f"gave up waiting for it: its values are older than those already posted",
                position=_hash_position(item.topic, item.payload),
                context={"topic": item.topic}, ack=item.ack)

    def _gap(self, item: Item, gap: Gap) -> None:
        self.gaps += 1
        self.log.warning("sparkplug_seq_gap", node=item.key, missing=list(gap.missing[:16]),
                         count=len(gap.missing), waited_s=round(gap.waited_s, 3),
                         reason=gap.reason, gaps=self.gaps)
        self.uncertain[item.key] = (gap.text(), set())
        if self.sp.sends_rebirth:
            self._rebirth(item)

    def _rebirth(self, item: Item) -> None:
        """NCMD Node Control/Rebirth (Primary Host only), at most once per node in
        max(5 s, reorder_timeout): a node that keeps losing messages is not flooded with
        requests it is still answering."""
        now = time.monotonic()
        last = self.rebirth_at.get(item.key)
        if last is not None and now - last < max(5.0, self.sp.reorder_timeout):
            return
        self.rebirth_at[item.key] = now
        topic = f"{item.prefix}spBv1.0/{item.levels[1]}/NCMD/{item.levels[3]}"
        self.log.info("sparkplug_rebirth_requested", node=item.key, topic=topic)
        # imported here: the protobuf module loads only when a Sparkplug source needs it
        from floorstream.adapters.mqtt.sparkplug_b import encode_payload

        self.publish(topic, encode_payload(
            [{"name": "Node Control/Rebirth", "datatype": "Boolean", "value": True}]))

    def _subject_of(self, item: Item) -> Callable[[dict[str, str]], str] | None:
        template = self.subject
        if template is None:
            return None  # the device id
        return lambda names: template.render(item.levels, item.topic, item.record, names)

    def _process(self, item: Item, gap: Gap | None, tried: bool = False) -> None:
        """One message in order: the session, then the pipeline (``tried``: :meth:`_plain`
        said no already)."""
        if gap is not None:
            self._gap(item, gap)
        elif not tried and self._plain(item.levels, item.topic, item.payload, item.record,
                                       item.observed, item.ack, item.key, item.prefix):
            return
        mtype = item.levels[2]
        device = item.device
        if "message" in item.record and not self._complete(item.record, item.topic,
                                                           item.payload, item.ack):
            return
        if mtype in ("NDATA", "DDATA") and self.waiting.waiting(item.key, device):
            self._hold(item, "behind earlier messages waiting for a birth", None)
            return
        birth = mtype in ("NBIRTH", "DBIRTH")
        if self.untold and mtype not in _DATA:
            self._tell(item.key)  # what came before a birth or death goes before it
        saved = self.sessions.nodes.get(item.key)
        saved_dump = saved.dump() if birth and saved is not None else None
        try:
            result = self.sessions.handle(item.levels, item.record, item.observed,
                                          self.static_attrs, self._subject_of(item),
                                          item.key)
        except MissingValue as exc:
            result = SparkplugResult(error=str(exc))
        if result.state_changed or saved is None:
            self.sessions.changed(item.key)
        if result.unresolved is not None:
            self._hold(item, result.unresolved, result.subject)
            return
        for change in result.changes:
            long = change.subject
            if len(long) > MAX_SUBJECT and result.error is None:
                result.error = (f"subject {long[:40]!r}... is {len(long)} characters long, "
                                f"more than {MAX_SUBJECT}")
        if result.error is not None:
            if birth:  # a refused birth leaves the session as it was
                self._restore(item.key, saved, saved_dump)
            self._emitter.quarantine(item.payload, result.error,
                                     position=_hash_position(item.topic, item.payload),
                                     context={"topic": item.topic}, ack=item.ack)
            return
        out: list[Change | Event] = []
        checkpoint = result.state_changed
        subject = result.subject
        if birth:
            # what waited for this birth goes first: it happened before the birth's values
            for waiting in self.waiting.take(item.key, device if mtype == "DBIRTH" else None):
                self._process(waiting, None)
            episode = self.waiting.close(item.key)
            if episode is not None:
                self._quarantine_episode(item.key, episode, None)
            marks = self.uncertain.get(item.key)
            if marks is not None:
                marks[1].add(subject)
        else:
            self._mark_uncertain(item.key, result)
        if mtype in ("NDEATH", "DDEATH"):
            ended = self.backfill.close_node(item.key) if mtype == "NDEATH" else (
                [(subject, b)] if (b := self.backfill.close(subject)) is not None else [])
            out.extend(self._burst_event(s, b) for s, b in ended)
            checkpoint = checkpoint or bool(ended)
        elif self.backfill.bursts and result.live:
            burst = self.backfill.close(subject)  # live values: the flush is over
            if burst is not None:
                out.append(self._burst_event(subject, burst))
                checkpoint = True
        out.extend(result.changes)
        if result.quiet:
            presence = self._quiet(item, subject)
            if presence is not None:
                out.append(presence)
        elif self.told and any(isinstance(c, Change) and c.data for c in result.changes):
            self._told(subject)
        if result.history and self.sp.historical == "feed":
            session = self.sessions.nodes.get(item.key)
            bdseq = session.bdseq if session is not None else None
            position = (f"{item.key}|{bdseq if bdseq is not None else '?'}|"
                        f"{item.record.get('seq')}|{item.record.get('timestamp')}")
            self.backfill.add(subject, item.key, position, {**self.static_attrs,
                              "group": item.levels[1], "node": item.levels[3]},
                              result.history, time.monotonic(),
                              session.units if session is not None else None)
            checkpoint = True
        self._emit(out, item.ack, self.checkpoint() if checkpoint else None)

    def _plain(self, levels: list[str], topic: str, payload: bytes, record: dict[str, Any],
               observed: datetime, ack: Ack, key: str, prefix: str) -> bool:
        """The common DATA message in few steps (``SparkplugSessions.plain_data``): emitted
        and True, or False for the general path. Only when none of the general path's other
        stages has anything to do with it: no subject template, nothing of the node waiting
        for a birth, not the subject's first values after a gap, no backfill burst open, a
        subject that fits. The message's fields one by one: most messages take this path,
        and an :class:`Item` for each was a tenth of the host's time."""
        if levels[2] not in _DATA:
            return False
        if len(levels) > 4:
            subject = levels[4]  # the device id (as the session names it, on NDATA too)
        elif levels[2] == "NDATA":
            subject = levels[3]
        else:
            return False  # DDATA without a device: the session's error
        if self.subject is not None or self.backfill.bursts or key in self.waiting.episodes \
                or len(subject) > MAX_SUBJECT:
            return False
        # everything read: the compact reader (values read inline) is the faster one then
        if self.sessions.fields is None and "message" in record and not self._complete(
                record, topic, payload, ack):
            return True  # quarantined
        change = self.sessions.plain_data(key, levels[1], levels[3], subject, record,
                                          observed, self.static_attrs)
        if change is None:
            return False
        marks = self.uncertain.get(key)
        if marks is not None and subject not in marks[1] and not isinstance(change, str):
            return False  # the subject's first values after a gap: marked uncertain there
        if isinstance(change, str):  # QUIET: nothing anyone reads
            change = self._quiet(Item(levels, topic, payload, record, observed, ack, key,
                                      prefix), subject)
            if change is None:
                if ack is not None:
                    self._emitter.checkpoint(None, ack=ack)
                return True
        elif self.told:
            self._told(subject)
        emitter = self.emitter  # (not the _emitter property: per message)
        assert emitter is not None
        emitter.emit(change, ack=ack, checkpoint=None)
        return True

    # -- presence of subjects whose values nobody reads ----------------------------------------

    def _quiet(self, item: Item, subject: str) -> Change | None:
        """A DATA message of ``subject`` of which nobody reads a value: its presence Change
        now if the pipeline has not heard of the subject for ``presence_lag``, else None (it
        is kept as the subject's latest, and told with the next :meth:`_tell`)."""
        now = time.monotonic()
        session = self.sessions.nodes.get(item.key)
        bdseq = session.bdseq if session is not None else None
        if now - self.told.get(subject, -1e18) < self.presence_lag:
            self.untold[subject] = (item, subject, bdseq)
            return None
        self.told[subject] = now
        self.untold.pop(subject, None)
        return self._presence(item, subject, bdseq)

    def _told(self, subject: str) -> None:
        """A Change of ``subject`` with values went out: its presence is told with it."""
        self.told[subject] = time.monotonic()
        self.untold.pop(subject, None)

    def _tell(self, key: str | None) -> None:
        """The untold presence of every subject (None), or of node ``key``'s subjects."""
        now = time.monotonic()
        if key is None:
            told, self.untold = list(self.untold.values()), {}
            self.told_at = now
        else:
            told = [entry for entry in self.untold.values() if entry[0].key == key]
            for entry in told:
                del self.untold[entry[1]]
        emit = self._emitter.emit
        for item, subject, bdseq in told:
            self.told[subject] = now
            emit(self._presence(item, subject, bdseq), ack=None, checkpoint=None)

    def _presence(self, item: Item, subject: str, bdseq: int | None) -> Change:
        levels = item.levels
        return self.sessions.presence(item.key, levels[1], levels[3], subject, item.record,
                                      item.observed, self.static_attrs, bdseq)

    def _complete(self, record: dict[str, Any], topic: str, payload: bytes, ack: Ack) -> bool:
        """Read the rest of a lazily decoded message (``decode_lazy``) for the general path;
        False, with the message quarantined, when that finds a value its decoder refuses."""
        from floorstream.adapters.mqtt.sparkplug_b import complete

        try:
            complete(record)
        except DecodeError as exc:
            self._emitter.quarantine(payload, str(exc), position=_hash_position(topic, payload),
                                     context={"topic": topic}, ack=ack)
            return False
        return True

    def _emit(self, out: list[Change | Event], ack: Ack, checkpoint: Checkpoint | None) -> None:
        emitter = self._emitter
        if not out:
            if ack is not None or checkpoint is not None:
                emitter.checkpoint(checkpoint, ack=ack)
            return
        last = len(out) - 1
        for index, thing in enumerate(out):
            if isinstance(thing, Event):
                emitter.event(thing, ack=ack if index == last else None,
                              checkpoint=checkpoint if index == last else None)
            else:
                emitter.emit(thing, ack=ack if index == last else None,
                             checkpoint=checkpoint if index == last else None)

    def _mark_uncertain(self, key: str, result: SparkplugResult) -> None:
        """The first values of each subject of a node after a gap: what came between is not
        known, so a change they show may hide others (``attrs.uncertain``)."""
        marks = self.uncertain.get(key)
        if marks is None:
            return
        why, done = marks
        for index, change in enumerate(result.changes):
            if isinstance(change, Change) and change.data and change.subject not in done:
                done.add(change.subject)
                result.changes[index] = Change._trusted(
                    {**change.__dict__, "attrs": {**change.attrs, "uncertain": why}})

    def _restore(self, key: str, saved: Any, saved_dump: dict[str, Any] | None) -> None:
        from floorstream.adapters.mqtt.sparkplug import NodeSession
        self.sessions.changed(key)
        if saved_dump is None:
            self.sessions.nodes.pop(key, None)
        else:
            self.sessions.nodes[key] = NodeSession.load(saved_dump)

    # -- waiting for a birth -------------------------------------------------------------------

    def _hold(self, item: Item, reason: str, subject: str | None) -> None:
        now = time.monotonic()
        room = item.ack is None or self._held_acks() < self.max_held
        new, held = self.waiting.hold(item.key, item.device, item, now, reason, room)
        if new and item.key not in self.reported:
            self.reported.add(item.key)
            shown = subject or item.device or item.levels[3]
            self.log.info("sparkplug_waiting_for_birth", node=item.key, subject=shown,
                          reason=reason)
            self._emitter.event(Event.create(
                type="sparkplug.awaiting_birth", source=self.source, subject=shown,
                position=(f"{item.key}|awaiting|{item.record.get('seq')}|"
                          f"{item.record.get('timestamp')}"),
                occurred_at=item.observed, severity=Severity.NOTICE,
                attrs={**self.static_attrs, "group": item.levels[1], "node": item.levels[3]},
                fields={"node": item.key, "reason": reason,
                        "summary": f"unresolved aliases from {shown}, waiting for a birth"},
                thread=item.levels[3]))
            episode = self.waiting.episodes[item.key]
            if self.sp.sends_rebirth and not episode.rebirth_asked:
                episode.rebirth_asked = True
                self._rebirth(item)
        if not held:
            episode = self.waiting.episodes[item.key]
            if not episode.held:  # nothing waits (birth_buffer 0): quarantined at once
                ended = self.waiting.close(item.key)
                if ended is not None:
                    self._quarantine_episode(item.key, ended, item.ack)
                return
            if episode.given_up == 1:
                self.log.warning("sparkplug_birth_buffer_full", node=item.key,
                                 limit=self.waiting.limit)
            if item.ack is not None:
                self._emitter.checkpoint(None, ack=item.ack)

    def _abandon(self, key: str) -> None:
        """An NDEATH: what still waits for a birth of this session never will."""
        held = self.waiting.abandon_held(key)
        episode = self.waiting.close(key, force=True)
        if episode is not None:
            self._quarantine_episode(key, episode, _combined([i.ack for i in held]))
        self.reported.discard(key)

    def _quarantine_episode(self, key: str, episode: Episode[Item], ack: Ack) -> None:
        """The one quarantine entry of an episode: the first message given up, and how many."""
        sample = episode.sample
        if sample is None or not episode.given_up:
            if ack is not None:
                self._emitter.checkpoint(None, ack=ack)
            return
        n = episode.given_up
        self._emitter.quarantine(
            sample.payload,
            f"{n} message{'s' if n != 1 else ''} from node {key} could not be resolved before "
            f"a birth ({episode.reason}); held at most {self.waiting.limit} for "
            f"{phrasing.duration(self.waiting.wait)}; this is the first of them",
            position=_hash_position(sample.topic, sample.payload) + f"|prebirth|{n}",
            context={"topic": sample.topic, "count": n, "node": key}, ack=ack)

    # -- backfill ------------------------------------------------------------------------------

    def _burst_event(self, subject: str, burst: Burst) -> Event:
        when_ms = burst.last_ms
        when = datetime.fromtimestamp(when_ms / 1000, UTC) if when_ms else utcnow()
        position = f"{burst.position}|backfill"
        attrs = dict(burst.attrs)
        return Event.create(
            type="metric.backfilled", source=self.source, subject=subject, position=position,
            occurred_at=when, severity=Severity.INFO, attrs=attrs,
            fields={"count": burst.count, "first_ms": burst.first_ms,
                    "last_ms": burst.last_ms, "maxima": dict(burst.maxima),
                    "summary": summary(subject, burst)})

