"""Sparkplug B host-side session state: births, aliases, bdSeq, seq and deaths.

floorstream is a passive Sparkplug host. Per edge node (``group/node``) it remembers the
``bdSeq`` of the current NBIRTH, the last ``seq``, the alias → name map of the node's and its
devices' births, and which devices it has. With that:

- DATA messages that carry only aliases are named; an alias no birth defined makes the message
  undecidable for now: :attr:`SparkplugResult.unresolved` says so and the caller holds it until
  a birth names it (:mod:`.prebirth`).
- ``seq`` order is the caller's business (:mod:`.reorder`): messages reach :meth:`handle` in
  order, and those after a gap carry the reason they are uncertain.
- NDEATH is one ``machine.offline`` event for the node listing its devices, not one per device.
  An NDEATH whose ``bdSeq`` differs from the current NBIRTH's is stale (the broker delivered
  the last session's will after the new birth) and is ignored, as is a second NDEATH for a node
  already offline (the node's own NDEATH plus the broker's will).
- ``is_historical`` metrics, and values whose timestamp is older than the newest already seen
  of the subject by more than ``late_ms``, never reach detectors: they are handed back in
  :attr:`SparkplugResult.history` for a backfill summary (:mod:`.backfill`).
- Node and device offline/online events carry ``fields.state`` (``offline``/``online``), the
  node's events are in the node's thread: ordinary events that settle/flap logic can fold.

The session map is small and changes only on births and deaths, so it travels in the source's
checkpoint (committed with the posts of those messages): a restarted daemon still resolves
aliases of nodes that were born before it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from floorstream.adapters.mqtt.engunits import LABEL_PREFIX, metric_label, normalise_unit
from floorstream.model import Change, Event, Severity, event_id
from floorstream.plugin import described

__all__ = ["QUIET", "NodeSession", "SparkplugResult", "SparkplugSessions"]

#: :meth:`SparkplugSessions.plain_data` for a DATA message of which nobody reads a value
QUIET: Final = "quiet"

#: the kind of a Change that says the source posted a subject's death (the ``silence``
#: detector's convention: floorstream.detectors.silence.OFFLINE_TOLD)
OFFLINE_TOLD: Final = "presence.offline"

_NODE_TYPES = ("NBIRTH", "NDATA", "NDEATH", "NCMD")
_DEVICE_TYPES = ("DBIRTH", "DDATA", "DDEATH", "DCMD")


@dataclass
class NodeSession:
    bdseq: int | None = None
    seq: int | None = None
    aliases: dict[int, str] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    online: bool = True
    offline_event: str | None = None
    offline_at: float | None = None
    dead_devices: dict[str, list[Any]] = field(default_factory=dict)  # device → [event, at]
    newest: dict[str, int] = field(default_factory=dict)  # subject → newest ms (not saved)
    control: set[str] = field(default_factory=set)  # bdSeq/Node Control/* names among aliases
    units: dict[str, str] = field(default_factory=dict)  # metric → engUnit from the births
    #: subject → metric → [unit, label] of its last birth (what detectors show, see
    #: :meth:`SparkplugSessions._describe`)
    described: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: the aliases resolved against the source's interest (SparkplugSessions.resolve): alias →
    #: the name of a metric someone reads, True for other telemetry, False for bookkeeping;
    #: None until the first plain DATA after a birth (not saved)
    kinds: dict[int, str | bool] | None = None
    #: the metric names of the births (not saved: after a restart, the aliases' names)
    names: set[str] = field(default_factory=set)
    #: full path → the last element a config names instead (``Temperature`` for
    #: ``Process/Temperature``), worked out with :attr:`kinds` (SparkplugSessions.short_names);
    #: None until then (not saved)
    also: dict[str, str] | None = None

    def learn(self, alias: int, name: str) -> None:
        self.aliases[alias] = name
        self.kinds = None
        self.also = None
        if _is_control(name):
            self.control.add(name)

    def dump(self) -> dict[str, Any]:
        return {"bdseq": self.bdseq, "aliases": {str(k): v for k, v in self.aliases.items()},
                "devices": self.devices, "online": self.online,
                "offline_event": self.offline_event, "offline_at": self.offline_at,
                "dead_devices": self.dead_devices, **({"units": self.units} if self.units else {}),
                **({"described": self.described} if self.described else {})}

    @classmethod
    def load(cls, data: dict[str, Any]) -> NodeSession:
        session = cls(bdseq=data.get("bdseq"), devices=list(data.get("devices") or []),
                      online=data.get("online", True), offline_event=data.get("offline_event"),
                      offline_at=data.get("offline_at"),
                      dead_devices=dict(data.get("dead_devices") or {}),
                      units=dict(data.get("units") or {}),
                      described={str(k): dict(v) for k, v in
                                 (data.get("described") or {}).items()})
        for alias, name in (data.get("aliases") or {}).items():
            session.learn(int(alias), name)
        return session


def _add_short(values: dict[str, Any], also: dict[str, str]) -> None:
    """The values a config names by their path's last element, under that name too."""
    for full, short in also.items():
        if full in values:
            values[short] = values[full]


def _tell(source: str, subject: str, found: dict[str, list[str]]) -> None:
    """What a birth said of the subject's metrics, for the detectors' posts; the metrics it
    said nothing of are called by the last element of their path."""
    described.describe(source, subject, {
        name: described.FieldInfo(str(info[0]), str(info[1])) for name, info in found.items()},
        paths=True)


def _learn_units(session: NodeSession, record: dict[str, Any]) -> None:
    """A birth's engineering units (normalised), for the backfill summary."""
    for name, unit in (record.get("units") or {}).items():
        if not name.startswith(LABEL_PREFIX):
            session.units[name] = normalise_unit(unit)


def _is_control(name: str) -> bool:
    """Metrics that are Sparkplug's own bookkeeping, not telemetry."""
    return name == "bdSeq" or name.startswith("Node Control/")


@dataclass
class SparkplugResult:
    """What one message led to: changes to emit, or a reason to quarantine it."""

    changes: list[Change | Event] = field(default_factory=list)
    error: str | None = None
    state_changed: bool = False  # a birth or death: emit the checkpoint with it
    rebirth: str | None = None   # node topic to send a rebirth request to (when configured)
    unresolved: str | None = None  # an alias no birth defined: hold the message for a birth
    history: list[tuple[str, Any, int | None]] = field(default_factory=list)  # backfill
    subject: str = ""
    #: the message carried live values, whether or not anyone reads them (it ends a backfill
    #: burst of its subject)
    live: bool = False
    #: a DATA message with live values of which nobody reads any: no Change, only the
    #: subject's presence (SparkplugHost tells the pipeline, lazily)
    quiet: bool = False


#: payload timestamps outside these years are refused (they overflow once stored)
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999


#: the last millisecond of LATEST_YEAR (a positive time is after EARLIEST_YEAR anyway)
_LATEST_MS = int(datetime(LATEST_YEAR + 1, 1, 1, tzinfo=UTC).timestamp()) * 1000 - 1


_from_ts = datetime.fromtimestamp


def _when(ms: Any) -> datetime | None:
    """A Sparkplug millisecond timestamp as a datetime; None when absent or out of range
    (:meth:`SparkplugSessions.handle` refuses a message whose own timestamp is). Checked
    against the range in milliseconds: one per message, the datetime's year read twice
    cost as much as making it."""
    if not isinstance(ms, int) or ms <= 0 or ms > _LATEST_MS:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


class SparkplugSessions:
    """All nodes' sessions of one source, and the translation of messages into changes."""

    def __init__(self, source: str, kind: str, historical: str, severity: str,
                 late_ms: int | None = None, fields: frozenset[str] | None = None,
                 named: frozenset[str] = frozenset()) -> None:
        #: the metrics the source's detectors and templates read (Interest.fields; None: all):
        #: the others are left out of every Change
        self.fields = fields
        #: the names the source's config mentions (its detectors' options): with ``fields``
        #: None, the candidates for a metric named by its path's last element
        self.named = named
        self._read: Callable[[Any, dict[int, str | bool]],
                             tuple[dict[str, Any], bool] | None] | None = None
        self.source = source
        self.kind = kind
        self.historical = historical
        self.severity = severity
        self.late_ms = late_ms
        self.nodes: dict[str, NodeSession] = {}
        #: node → its JSON in the checkpoint (alone, and after a comma), while unchanged
        self._texts: dict[str, tuple[str, str]] = {}
        described.forget(source)  # a source's sessions start anew: so does what they said

    # -- persistence --------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {key: node.dump() for key, node in self.nodes.items()}

    def dump_text(self) -> str:
        """:meth:`dump` as JSON (:meth:`dump_parts` joined)."""
        return "".join(self.dump_parts())

    def dump_parts(self) -> list[str]:
        """:meth:`dump` as JSON in parts whose join is the text, each node's part kept until
        the node changes: a checkpoint goes with every birth, and 200 nodes x 10 devices x 10
        aliases re-encoded per birth made a fleet's births quadratic (8 s of 18 for 2,200
        births); the checkpoints queued behind a birth storm hold these shared parts, not a
        copy of the text each (``CheckpointParts``)."""
        texts = self._texts
        parts = ["{"]
        for key, node in self.nodes.items():
            text = texts.get(key)
            if text is None:
                body = (f"{json.dumps(key)}:"
                        f"{json.dumps(node.dump(), separators=(',', ':'))}")
                text = texts[key] = (body, "," + body)
            parts.append(text[len(parts) > 1])
        parts.append("}")
        return parts

    def changed(self, key: str) -> None:
        """The node's session changed: its checkpoint part is encoded again."""
        self._texts.pop(key, None)

    def load(self, data: dict[str, Any]) -> None:
        self.nodes = {key: NodeSession.load(value) for key, value in data.items()}
        self._texts.clear()
        for node in self.nodes.values():  # what the births said, shown again after a restart
            for subject, metrics in node.described.items():
                _tell(self.source, subject, metrics)

    def _describe(self, session: NodeSession, subject: str, record: dict[str, Any]) -> None:
        """A birth's units and readable names of the subject's metrics, for the detectors'
        posts (:mod:`floorstream.plugin.described`): the ``engUnit`` property normalised
        (``degC`` → ``°C``), the ``displayName`` property, else the last element of the
        path, unless another metric of the birth ends alike (then the full path). Replaces
        what an earlier birth said: a unit changed on a rebirth is used from then on. Once
        per birth, never per DATA message."""
        raw = record.get("units") or {}
        names = [m[0] for m in record["metrics"] if m[0] and not _is_control(m[0])]
        ends: dict[str, int] = {}
        for name in names:
            end = metric_label(name)
            ends[end] = ends.get(end, 0) + 1
        found: dict[str, list[str]] = {}  # only what the last element does not say
        for name in names:
            shown = raw.get(LABEL_PREFIX + name)
            unit = raw.get(name)
            if shown is None and unit is None and ends.get(metric_label(name), 0) < 2:
                continue  # the common metric: no properties, its own last element
            label = metric_label(name, shown)
            if ends.get(label, 0) > 1 and not shown:
                label = name  # "Inputs/Temp" and "Outputs/Temp": both keep their path
            found[name] = [normalise_unit(str(unit or "")), label]
        for name in list(found):  # a config may name it by its last element: said there too
            end = metric_label(name)
            if end != name and ends.get(end) == 1:
                found[end] = found[name]
        session.described[subject] = found
        _tell(self.source, subject, found)

    # -- messages -----------------------------------------------------------------------

    def handle(self, levels: list[str], record: dict[str, Any], observed_at: datetime,
               attrs: dict[str, str], subject_of: Any, key: str | None = None
               ) -> SparkplugResult:
        """``levels``: ``spBv1.0/<group>/<type>/<node>[/<device>]``; ``record``: the decoded
        payload, its metrics as ``(name, alias, timestamp, is_historical, value)`` tuples
        (``SparkplugDecoder.decode_compact``); ``subject_of(names)`` renders the configured
        subject template (None: the device id); ``key`` the node's session key
        (``group/node``, behind a bridge prefix ``<prefix>group/node``)."""
        group, mtype, node = levels[1], levels[2], levels[3]
        device = levels[4] if len(levels) > 4 else None
        key = key or f"{group}/{node}"
        session = self.nodes.get(key)
        result = SparkplugResult()
        if mtype in ("NCMD", "DCMD"):
            return result  # commands to the node; not telemetry
        stamp = record.get("timestamp")
        when = _when(stamp)
        if when is None and isinstance(stamp, int) and stamp > 0:
            result.error = (f"payload timestamp {stamp} is out of range (a millisecond time "
                            f"in {EARLIEST_YEAR}-{LATEST_YEAR} expected)")
            return result
        attrs = {**attrs, "group": group, "node": node}
        if mtype == "NDEATH":
            return self._node_death(key, node, session, record, observed_at, attrs, result,
                                    subject_of, group)
        if mtype == "NBIRTH":
            previous = session
            session = self.nodes[key] = NodeSession(bdseq=_bdseq(record),
                                                    seq=record.get("seq"))
            for metric in record["metrics"]:
                if metric[1] is not None and metric[0]:
                    session.learn(metric[1], metric[0])
                if metric[0]:
                    session.names.add(metric[0])
            session.also = None
            _learn_units(session, record)
            result.state_changed = True
            if previous is not None and not previous.online and previous.offline_event:
                result.changes.append(self._back_online(
                    node, key, record, observed_at, attrs, previous.offline_event,
                    previous.offline_at))
        elif session is None:
            session = self.nodes[key] = NodeSession()  # joined mid-session: names only
        if mtype in _DEVICE_TYPES and device is None:
            result.error = f"{mtype} topic without a device id"
            return result
        if device is None:
            subject = node
        elif subject_of is None:  # no subject template: the device id
            subject = device
        else:
            subject = _subject(subject_of, {"group": group, "node": node, "device": device},
                               device)
        result.subject = subject
        if mtype in ("NBIRTH", "DBIRTH"):
            self._describe(session, subject, record)
        if mtype == "DBIRTH":
            assert device is not None
            for metric in record["metrics"]:
                if metric[1] is not None and metric[0]:
                    session.learn(metric[1], metric[0])
                if metric[0]:
                    session.names.add(metric[0])
            session.also = None
            _learn_units(session, record)
            if device not in session.devices:
                session.devices.append(device)
            result.state_changed = True
            dead = session.dead_devices.pop(device, None)
            if dead is not None:
                result.changes.append(self._back_online(
                    subject, key, record, observed_at, attrs, dead[0], dead[1]))
        if mtype == "DDEATH":
            assert device is not None
            position = self._position(key, session, record) + "|ddeath"
            change = self._event(subject, position, record, observed_at, attrs,
                                 "machine.offline", self.severity,
                                 {"silent_s": 0, "node": node, "reason": "DDEATH",
                                  "state": "offline"})
            session.dead_devices[device] = [
                event_id(self.source, subject, position, "machine.offline"),
                change.occurred_at.timestamp()]
            result.state_changed = True
            result.changes.append(change)
            result.changes.append(self._death_told(subject, position, change, attrs,
                                                   observed_at))
            return result
        history = result.history
        stamp = stamp if isinstance(stamp, int) else None
        aliases = session.aliases
        metrics = record["metrics"]
        values: dict[str, Any] | None = None
        if record.get("plain") and mtype in ("NDATA", "DDATA"):
            try:  # the common case: every metric by a known alias, live, no bookkeeping
                values = {aliases[m[1]]: m[4] for m in metrics}
            except KeyError:
                values = None
            if values is not None and session.control and \
                    not session.control.isdisjoint(values):
                values = None
        if values is not None:
            metrics = ()
        else:
            values = {}
        for name, alias, metric_ms, historical, value in metrics:
            if not name:
                name = aliases.get(alias) if alias is not None else None
                if name is None:
                    result.unresolved = (f"unknown alias {alias} from node {key}: no birth "
                                         f"seen that defines it")
                    result.rebirth = f"spBv1.0/{group}/NCMD/{node}"
                    result.changes.clear()
                    history.clear()
                    return result
            if name == "bdSeq" or name[:13] == "Node Control/":
                continue
            if historical:
                history.append((name, value, metric_ms or stamp))
            else:
                values[name] = value
        if values and stamp is not None and mtype in ("NDATA", "DDATA") and \
                self.late_ms is not None:
            newest = session.newest.get(subject)
            if newest is not None and stamp < newest - self.late_ms:
                # an old reading (a store-and-forward flush without is_historical): history
                history.extend((name, value, stamp) for name, value in values.items())
                values = {}
            elif newest is None or stamp > newest:
                session.newest[subject] = stamp
        elif stamp is not None and mtype in ("NBIRTH", "DBIRTH"):
            session.newest[subject] = max(stamp, session.newest.get(subject, stamp))
        fields = self.fields
        if values:
            result.live = True
            also = session.also
            if also is None:
                also = self.short_names(session)
            if fields is not None:
                values = {name: value for name, value in values.items()
                          if name in fields or name in also}
                if not values and mtype in ("NDATA", "DDATA"):
                    result.quiet = True  # live values nobody reads: only the presence
                    return result
            if also:
                _add_short(values, also)
        if values or mtype in ("NBIRTH", "DBIRTH"):
            result.changes.append(Change._trusted({
                "source": self.source, "subject": subject, "kind": self.kind,
                "position": self._position(key, session, record), "observed_at": observed_at,
                "occurred_at": when, "data": values, "before": None, "attrs": attrs}))
        return result

    def plain_data(self, key: str, group: str, node: str, subject: str,
                   record: dict[str, Any], observed_at: datetime, attrs: dict[str, str]
                   ) -> Change | Literal["quiet"] | None:
        """The common DATA message, as :meth:`handle` would translate it, with less work:
        every metric alias-only and live, every alias named by a birth of the node, some
        telemetry among them (not only bdSeq or Node Control/*), a payload time in range and
        not late. ``subject`` is the node or device id (no subject template). Only the metrics
        of interest are read (:attr:`fields`, resolved to the node's aliases by
        :meth:`resolve`); ``"quiet"`` when it carried none of them (no Change: the caller
        tells the pipeline of the subject's presence). Anything else is None and goes
        through :meth:`handle`, which decides it the same way or explains it. The session
        state is read, and only the subject's newest time written, as there.

        ``record`` is :meth:`SparkplugDecoder.decode_lazy`'s (the parsed payload, metrics not
        read yet) or :meth:`SparkplugDecoder.decode_compact`'s (metrics read, ``plain``)."""
        session = self.nodes.get(key)
        if session is None:
            return None
        kinds = session.kinds
        if kinds is None:
            kinds = self.resolve(session)
        message = record.get("message")
        found: tuple[dict[str, Any], bool] | None
        if message is not None:
            read = self._read
            if read is None:
                from floorstream.adapters.mqtt.sparkplug_b import read_wanted
                read = self._read = read_wanted
            found = read(message, kinds)
        elif not record.get("plain"):  # (a plugin's decoder, without "plain": None)
            found = None
        elif self.fields is None:  # everything: one comprehension (the commonest case then)
            aliases = session.aliases
            try:
                values = {aliases[m[1]]: m[4] for m in record["metrics"]}
            except KeyError:
                return None
            if session.control and not session.control.isdisjoint(values):
                return None  # bookkeeping among them: handle() leaves it out
            found = values, bool(values)
        else:
            found = _wanted_of_compact(record["metrics"], kinds)
        if found is None or not found[1]:
            return None  # not plain, an alias without a birth, or bookkeeping only
        values = found[0]
        if session.also:
            _add_short(values, session.also)
        stamp = record.get("timestamp")
        when = None
        if stamp is not None:
            if stamp.__class__ is int and 0 < stamp <= _LATEST_MS:  # _when, inline
                when = _from_ts(stamp / 1000, UTC)
            else:
                when = _when(stamp)
            if when is None:
                return None  # out of range: handle() refuses it with the reason
            if self.late_ms is not None:
                newest = session.newest.get(subject)
                if newest is not None and stamp < newest - self.late_ms:
                    return None  # a late reading: history, handle() sums it up
                if newest is None or stamp > newest:
                    session.newest[subject] = stamp
        if not values:
            return QUIET
        bdseq = session.bdseq
        change: Change = Change._trusted({
            "source": self.source, "subject": subject, "kind": self.kind,
            "position": f"{key}|{bdseq if bdseq is not None else '?'}|{record.get('seq')}|{stamp}",
            "observed_at": observed_at, "occurred_at": when, "data": values, "before": None,
            "attrs": {**attrs, "group": group, "node": node}})
        return change

    def resolve(self, session: NodeSession) -> dict[int, str | bool]:
        """The source's interest as the node's aliases (after each birth, at its first plain
        DATA): :attr:`NodeSession.kinds`."""
        fields = self.fields
        also = self.short_names(session)
        kinds: dict[int, str | bool] = {}
        for alias, name in session.aliases.items():
            if _is_control(name):
                kinds[alias] = False
            else:
                kinds[alias] = name if fields is None or name in fields or name in also \
                    else True
        session.kinds = kinds
        return kinds

    def short_names(self, session: NodeSession) -> dict[str, str]:
        """The metrics a config names by the last element of their path: a field someone
        reads (:attr:`fields`) that is no metric's full name, and the end of exactly one
        metric path of the node's births (``Temperature`` → ``Process/Temperature``). The
        value is then under both keys (the full path stays the field's key). An end that
        two paths share (``Inputs/Temp``, ``Outputs/Temp``) resolves to neither: the config
        must name the path. Worked out after each birth, not per message
        (:attr:`NodeSession.also`); when everything is read (``fields`` None), for the names
        the config mentions (:attr:`named`)."""
        also: dict[str, str] = {}
        fields = self.fields if self.fields is not None else self.named
        if fields:
            names = session.names | set(session.aliases.values())
            wanted = [f for f in fields if "/" not in f and f not in names]
            if wanted:
                ends: dict[str, list[str]] = {}
                for name in names:
                    if "/" in name and not _is_control(name):
                        ends.setdefault(name.rsplit("/", 1)[-1], []).append(name)
                for short in wanted:
                    paths = ends.get(short)
                    if paths is not None and len(paths) == 1:
                        also[paths[0]] = short
        session.also = also
        return also

    def presence(self, key: str, group: str, node: str, subject: str,
                 record: dict[str, Any], observed_at: datetime, attrs: dict[str, str],
                 bdseq: int | None) -> Change:
        """A Change with no data for a DATA message of which nobody reads a value (see
        ``Interest``): at the message's position and time, so ``silence`` and the source's
        watermark move as with the full Change."""
        stamp = record.get("timestamp")
        change: Change = Change._trusted({
            "source": self.source, "subject": subject, "kind": self.kind,
            "position": f"{key}|{bdseq if bdseq is not None else '?'}|{record.get('seq')}|{stamp}",
            "observed_at": observed_at, "occurred_at": _when(stamp), "data": {},
            "before": None, "attrs": {**attrs, "group": group, "node": node}})
        return change

    def _node_death(self, key: str, node: str, session: NodeSession | None,
                    record: dict[str, Any], observed_at: datetime, attrs: dict[str, str],
                    result: SparkplugResult, subject_of: Any = None, group: str = ""
                    ) -> SparkplugResult:
        bdseq = _bdseq(record)
        if session is not None:
            if session.bdseq is not None and bdseq is not None and bdseq != session.bdseq:
                return result  # stale will of an earlier session
            if not session.online:
                return result  # the node's own NDEATH and the broker's will: one post
        else:
            session = self.nodes[key] = NodeSession(bdseq=bdseq)
        devices = list(session.devices)
        count = len(devices)
        summary = f"{node} offline" + (
            f" — {count} machine{'s' if count != 1 else ''} silent" if count else "")
        position = f"{key}|{bdseq if bdseq is not None else '?'}|ndeath"
        change = self._event(node, position, record, observed_at, attrs, "machine.offline",
                             self.severity, {"silent_s": 0, "devices": devices,
                                             "bdSeq": bdseq, "reason": "NDEATH",
                                             "state": "offline", "summary": summary},
                             thread=node)
        session.online = False
        session.offline_event = event_id(self.source, node, position, "machine.offline")
        session.offline_at = change.occurred_at.timestamp()
        session.dead_devices.clear()
        result.changes.append(change)
        result.changes.append(self._death_told(node, position, change, attrs, observed_at))
        for device in devices:  # the node's death is its devices' too: told, not silent
            subject = device if subject_of is None else _subject(
                subject_of, {"group": group, "node": node, "device": device}, device)
            result.changes.append(self._death_told(subject, position, change, attrs,
                                                   observed_at))
        result.state_changed = True
        return result

    def _death_told(self, subject: str, position: str, death: Event, attrs: dict[str, str],
                    observed_at: datetime) -> Change:
        """The Change that tells the source's detectors a death was posted for ``subject``
        (:data:`OFFLINE_TOLD`): ``silence`` then takes it as offline without a post of its
        own, and its birth as back without one (the birth's own post says so). No data:
        every other detector passes it by."""
        change: Change = Change._trusted({
            "source": self.source, "subject": subject, "kind": OFFLINE_TOLD,
            "position": f"{position}|{subject}|told", "observed_at": observed_at,
            "occurred_at": death.occurred_at, "data": {}, "before": None, "attrs": attrs})
        return change

    def _back_online(self, subject: str, key: str, record: dict[str, Any],
                     observed_at: datetime, attrs: dict[str, str], clears: str,
                     offline_at: float | None) -> Event:
        when = _when(record.get("timestamp")) or observed_at
        silent = max(0.0, when.timestamp() - offline_at) if offline_at else 0.0
        position = f"{key}|{_bdseq(record)}|{record.get('seq')}|{record.get('timestamp')}|online"
        return self._event(subject, position, record, observed_at, attrs, "machine.online",
                           "info", {"silent_s": silent, "state": "online"}, clears=clears,
                           thread=subject)

    def _position(self, key: str, session: NodeSession, record: dict[str, Any]) -> str:
        return (f"{key}|{session.bdseq if session.bdseq is not None else '?'}|"
                f"{record.get('seq')}|{record.get('timestamp')}")

    def _event(self, subject: str, position: str, record: dict[str, Any],
               observed_at: datetime, attrs: dict[str, str], type: str, severity: str,
               fields: dict[str, Any], clears: str | None = None,
               thread: str | None = None) -> Event:
        return Event.create(
            type=type, source=self.source, subject=subject, position=position,
            occurred_at=_when(record.get("timestamp")) or observed_at,
            severity=Severity.parse(severity), fields=fields, attrs=attrs, clears=clears,
            thread=thread)


def _wanted_of_compact(metrics: list[tuple[Any, ...]], kinds: dict[int, str | bool]
                       ) -> tuple[dict[str, Any], bool] | None:
    """:func:`~floorstream.adapters.mqtt.sparkplug_b.read_wanted` for a plain record whose
    metrics were read already (``decode_compact``'s tuples)."""
    values: dict[str, Any] = {}
    telemetry = False
    for metric in metrics:
        kind = kinds.get(metric[1])
        if kind is None:
            return None
        if kind is not False:
            telemetry = True
            if kind is not True:
                values[kind] = metric[4]
    return values, telemetry


def _subject(subject_of: Any, names: dict[str, str], fallback: str) -> str:
    try:
        value = subject_of(names)
    except LookupError:
        return fallback
    return str(value) if value else fallback


def _bdseq(record: dict[str, Any]) -> int | None:
    for metric in record["metrics"]:
        if metric[0] == "bdSeq" and isinstance(metric[4], int):
            return int(metric[4])
    return None


def is_sparkplug(levels: list[str]) -> bool:
    return len(levels) >= 4 and levels[0] == "spBv1.0" and levels[2] in (
        _NODE_TYPES + _DEVICE_TYPES)


def sparkplug_levels(levels: list[str]) -> tuple[str, list[str]]:
    """What a topic is to a Sparkplug source without a configured prefix, and its levels from
    ``spBv1.0`` (or a 2.2 ``STATE``) on; see :func:`classify`."""
    kind, tail, _ = classify(levels, None)
    return kind, tail


def classify(levels: list[str], prefix: list[str] | None) -> tuple[str, list[str], str]:
    """``(kind, levels from spBv1.0 on, the prefix before it as text)``.

    ``kind``: ``"edge"`` an edge node or device message; ``"state"`` a host application's
    ``spBv1.0/STATE/<host>`` (3.0, JSON) or ``STATE/<host>`` (2.2, ``ONLINE``/``OFFLINE``);
    ``"other"`` anything else. ``prefix``: the configured bridge prefix as levels (``site/``
    → ``["site"]``; ``[]`` none): the topic must start with exactly it. None: any levels before
    ``spBv1.0`` are taken as a bridge's prefix (bridges add one when they forward a broker's
    tree).
    """
    if prefix is not None:
        n = len(prefix)
        if levels[:n] != prefix:
            return "other", levels, ""
        start = n
        if len(levels) > start and levels[start] == "STATE":
            return ("state", levels[start:], "") if len(levels) > start + 1 else (
                "other", levels, "")
        if len(levels) <= start or levels[start] != "spBv1.0":
            return "other", levels, ""
    else:
        try:
            start = levels.index("spBv1.0")
        except ValueError:
            if len(levels) >= 2 and levels[-2] == "STATE":
                return "state", levels[-2:], ""
            return "other", levels, ""
    tail = levels[start:]
    if len(tail) >= 3 and tail[1] == "STATE":
        return "state", tail, ""
    if is_sparkplug(tail):
        return "edge", tail, "/".join(levels[:start]) + "/" if start else ""
    return "other", levels, ""


def dumps(sessions: SparkplugSessions) -> str:
    return json.dumps(sessions.dump(), separators=(",", ":"), sort_keys=True)
