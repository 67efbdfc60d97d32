"""Settling and flap detection: a pipeline stage for every state-like event of a source.

A PackML machine goes Holding → Held in 400 ms; a Sparkplug node dies and is reborn within
300 ms. Posting each raw transition is a wrong post twice over. With ``states: {settle: 2s}``
on the source a state must last two seconds (event time) before its post goes out:

- a state that lasted less is folded into the next post: "Held (via Holding)";
- a run of short states that ends where it started is one ``machine.blip`` line ("briefly
  offline (0.3 s), online again") instead of two posts, so it is still on record;
- with ``flap:``, N transitions within a window make one ``machine.flapping`` post, then
  silence until the stream has been stable for a while, then one ``machine.stable`` post with
  the count, as the resolution of the flapping post (design.md §9: the same thread).

Which events are transitions: ``machine.state_changed`` (one stream per state field),
``machine.offline``/``machine.online`` (the stream ``online``, whoever made them: silence, a
last will, a Sparkplug death and birth), and any event whose fields carry
``transition: {stream, state, before}`` (a plugin's own). Everything else passes untouched.

Time is event time (``floorstream.timebase``): a held state is posted once the subject's event
time passes its settle time, or after the settle time in wall time at the latest; the held
events are persisted with the detector state, so a stop does not lose them. Every raw
transition ends up a post or counted in one (``fields["transitions"]``), which is what the
time-model tests assert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from floorstream.model import Event, Severity
from floorstream.plugin import DetectorState, SettleOptions, phrasing
from floorstream.timebase import due

__all__ = ["Settle", "Transition", "transition"]

#: folded event ids remembered per subject, to point later posts at the post they went into
REFS_KEPT = 32


@dataclass(frozen=True, slots=True)
class Transition:
    """What makes an event a state transition: its stream and the states on both sides."""

    stream: str
    state: str
    before: str | None
    label: str
    before_label: str | None


def transition(event: Event) -> Transition | None:
    """The transition ``event`` is, or None for every other kind of event."""
    f = event.fields
    declared = f.get("transition")
    if isinstance(declared, dict) and "stream" in declared and "state" in declared:
        state, before = str(declared["state"]), declared.get("before")
        return Transition(str(declared["stream"]), state,
                          None if before is None else str(before),
                          str(declared.get("label", state)),
                          None if before is None else str(declared.get("before_label",
                                                                       before)))
    kind = event.type
    if kind == "machine.state_changed" and "after" in f:
        after, before = str(f["after"]), f.get("before")
        return Transition(f"state:{f.get('field', 'state')}", after,
                          None if before is None else str(before),
                          str(f.get("after_label", after)),
                          None if before is None else str(f.get("before_label", before)))
    if kind == "machine.offline":
        return Transition("online", "offline", "online", "offline", "online")
    if kind == "machine.online":
        return Transition("online", "online", "offline", "online", "offline")
    return None


class Settle:
    """The stage of one source; its state per subject is one ``settle`` row of streams."""

    key: ClassVar[str] = "settle"

    def __init__(self, options: SettleOptions, source: str) -> None:
        self.options = options
        self.source = source
        self.wait = options.settle
        flap = options.flap
        self.flap = flap
        self.stable = (flap.stable if flap.stable is not None else flap.within) if flap else 0.0
        self.flap_severity = Severity.parse(flap.severity) if flap else Severity.WARNING
        #: raw transitions not posted on their own (folded into a later post, or a blip)
        self.folded = 0
        #: raw transitions held back by flap detection (counted in its posts)
        self.flapped = 0
        #: the held events of this process, with their changes (a template may use them);
        #: after a restart they are rebuilt from the persisted state
        self._held: dict[str, Event] = {}

    # -- events in --------------------------------------------------------------------------

    def admit(self, event: Event, state: DetectorState, wall: float) -> list[Event]:
        """What to post in place of ``event`` now: itself, nothing, or what it settled."""
        found = transition(event)
        if found is None:
            return [event]
        streams: dict[str, Any] = state.data.setdefault("streams", {})
        st: dict[str, Any] = streams.setdefault(found.stream, {})
        state.dirty = True
        event = self._remap(event, st)
        at = event.occurred_at.timestamp()
        out: list[Event] = []
        if self.flap is not None:
            flap = st.get("flap")
            if flap and flap.get("flapping"):
                if at - flap["last"] >= self.stable:
                    out.append(self._stable(event.subject, found.stream, st))
                else:
                    flap.update(suppressed=flap["suppressed"] + 1, last=max(at, flap["last"]),
                                seen=wall, state=found.state, label=found.label)
                    self.flapped += 1
                    return out
            flapping = self._flap(event, found, st, at, wall)
            if flapping is not None:
                out.append(flapping)
                return out
        if self.wait <= 0:
            out.append(event)
            return out
        pending: list[dict[str, Any]] = st.get("pending") or []
        if pending and at - st["last"] >= self.wait:
            out.append(self._flush(event.subject, st))
            pending = []
        if pending and found.state == pending[0]["before"]:
            out.append(self._blip(event.subject, st, event, found))
            return out
        pending.append(self._hold(event, found))
        st.update(pending=pending, last=at, seen=wall)
        return out

    def tick(self, now: datetime, subject: str, state: DetectorState,
             event_now: float | None) -> list[Event]:
        """Post what has settled by now (event time, or its wait in wall time at most), and
        the end of a flapping run that has been quiet long enough."""
        streams: dict[str, Any] = state.data.get("streams") or {}
        wall = now.timestamp()
        out: list[Event] = []
        for stream, st in streams.items():
            pending = st.get("pending")
            if pending and due(st["last"] + self.wait, st.get("seen"), self.wait, event_now,
                               wall):
                out.append(self._flush(subject, st))
                state.dirty = True
            flap = st.get("flap")
            if (flap and flap.get("flapping")
                    and due(flap["last"] + self.stable, flap.get("seen"), self.stable,
                            event_now, wall)):
                out.append(self._stable(subject, stream, st))
                state.dirty = True
        return out

    # -- settling ---------------------------------------------------------------------------

    def _hold(self, event: Event, found: Transition) -> dict[str, Any]:
        self._held[event.id] = event
        if len(self._held) > 10_000:  # only a restart's worth is ever needed; stay bounded
            self._held.pop(next(iter(self._held)))
        return {"id": event.id, "type": event.type, "severity": int(event.severity),
                "position": event.position, "at": event.occurred_at.timestamp(),
                "fields": event.fields, "attrs": event.attrs, "thread": event.thread,
                "relation": event.relation, "refers_to": event.refers_to,
                "state": found.state, "label": found.label, "before": found.before,
                "before_label": found.before_label}

    def _event(self, subject: str, held: dict[str, Any]) -> Event:
        kept = self._held.pop(held["id"], None)
        if kept is not None:
            return kept
        return Event.create(
            type=held["type"], source=self.source, subject=subject, position=held["position"],
            occurred_at=datetime.fromtimestamp(held["at"], UTC),
            severity=Severity(held["severity"]), fields=held["fields"], attrs=held["attrs"],
            thread=held["thread"], relation=held["relation"], refers_to=held["refers_to"])

    def _flush(self, subject: str, st: dict[str, Any]) -> Event:
        """The post for the held transitions: the last one, saying which states it went
        through when there were several."""
        pending: list[dict[str, Any]] = st.pop("pending")
        st.pop("seen", None)
        events = [self._event(subject, held) for held in pending]
        last = events[-1]
        if len(events) == 1:
            return last
        first = pending[0]
        chain = {e.id for e in events[:-1]}
        fields = dict(last.fields)
        fields["via"] = [held["label"] for held in pending[:-1]]
        fields["transitions"] = len(events)
        if "before" in fields:
            fields["before"] = first["before"]
        if "before_label" in fields:
            fields["before_label"] = first["before_label"]
        refers_to, relation = last.refers_to, last.relation
        if refers_to in chain:  # it answers a post that was folded away: it stands alone
            refers_to, relation = None, "new"
            fields.pop("duration_s", None)
        # a return that lasted less than the settle time ("execute again" for 1 s, then
        # holding): the stop it answered goes on, so this post is an update of that stop,
        # and the return that finally comes answers that stop, counted from its start
        answered = next((e for e in events[:-1] if e.relation == "resolution"
                         and e.refers_to and e.refers_to not in chain
                         and isinstance(e.fields.get("duration_s"), int | float)), None)
        goes_on = answered is not None and last.relation != "resolution"
        if goes_on:
            assert answered is not None
            refers_to, relation = answered.refers_to, "update"
        self.folded += len(events) - 1
        folded = Event.create(
            type=last.type, source=self.source, subject=subject, position=last.position,
            occurred_at=last.occurred_at, severity=last.severity, fields=fields,
            attrs=last.attrs, change=last.change, thread=last.thread, relation=relation,
            refers_to=refers_to)
        self._refer(st, chain, folded.id)
        if goes_on:
            assert answered is not None and answered.refers_to is not None
            began = answered.occurred_at.timestamp() - float(answered.fields["duration_s"])
            goes: dict[str, Any] = st.setdefault("goes_on", {})
            goes[folded.id] = {"stop": answered.refers_to, "since": began}
            while len(goes) > REFS_KEPT:
                goes.pop(next(iter(goes)))
        return folded

    def _blip(self, subject: str, st: dict[str, Any], event: Event,
              found: Transition) -> Event:
        """Short states that ended where they started: one line on record, not two posts."""
        pending: list[dict[str, Any]] = st.pop("pending")
        st.pop("seen", None)
        for held in pending:
            self._held.pop(held["id"], None)
        first = pending[0]
        count = len(pending) + 1
        blip = Event.create(
            type="machine.blip", source=self.source, subject=subject,
            position=f"{event.position}#blip", occurred_at=datetime.fromtimestamp(first["at"],
                                                                                  UTC),
            severity=Severity.INFO, attrs=event.attrs, thread=event.thread,
            fields={"stream": found.stream, "states": [held["label"] for held in pending],
                    "back": found.label, "transitions": count,
                    "duration_s": max(0.0, event.occurred_at.timestamp() - first["at"])})
        self.folded += count
        self._refer(st, {*(held["id"] for held in pending), event.id}, blip.id)
        return blip

    def _refer(self, st: dict[str, Any], ids: set[str], to: str) -> None:
        refs: dict[str, str] = st.setdefault("refs", {})
        for old in ids:
            refs[old] = to
        while len(refs) > REFS_KEPT:
            refs.pop(next(iter(refs)))

    def _remap(self, event: Event, st: dict[str, Any]) -> Event:
        """An event answering a post that went into another one answers that one; a return
        from a post that continued an earlier stop answers that stop, counted from its
        start (see :meth:`_flush`)."""
        refers = event.refers_to or ""
        target = (st.get("refs") or {}).get(refers, refers)
        fields = event.fields
        goes = (st.get("goes_on") or {}).get(target)
        if goes is not None and event.relation == "resolution":
            target = goes["stop"]
            if isinstance(fields.get("duration_s"), int | float):
                fields = {**fields, "duration_s": max(
                    0.0, event.occurred_at.timestamp() - float(goes["since"]))}
        if target == refers:
            return event
        return Event.create(
            type=event.type, source=event.source, subject=event.subject,
            position=event.position, occurred_at=event.occurred_at, severity=event.severity,
            fields=fields, attrs=event.attrs, change=event.change, thread=event.thread,
            relation=event.relation, refers_to=target or None)

    # -- flapping ---------------------------------------------------------------------------

    def _flap(self, event: Event, found: Transition, st: dict[str, Any], at: float,
              wall: float) -> Event | None:
        assert self.flap is not None
        flap = st.setdefault("flap", {})
        times = [t for t in flap.get("times") or () if t > at - self.flap.within]
        times.append(at)
        flap["times"] = times[-self.flap.changes:]
        if len(times) < self.flap.changes:
            return None
        pending: list[dict[str, Any]] = st.pop("pending", None) or []
        st.pop("seen", None)
        for held in pending:
            self._held.pop(held["id"], None)
        labels: list[str] = []
        for label in [*(h["label"] for h in pending), found.before_label, found.label]:
            if label is not None and label not in labels:
                labels.append(label)
        held_count = len(pending) + 1
        self.flapped += held_count
        flapping = Event.create(
            type="machine.flapping", source=self.source, subject=event.subject,
            position=f"{event.position}#flapping", occurred_at=event.occurred_at,
            severity=self.flap_severity, attrs=event.attrs, thread=event.thread,
            fields={"stream": found.stream, "changes": len(times),
                    "within_s": self.flap.within, "span_s": at - min(times),
                    "states": labels, "held": held_count,
                    "transitions": held_count, "stable_s": self.stable})
        self._refer(st, {*(h["id"] for h in pending), event.id}, flapping.id)
        st["flap"] = {"flapping": True, "event": flapping.id, "position": event.position,
                      "since": min(times), "last": at, "seen": wall, "suppressed": 0,
                      "state": found.state, "label": found.label, "thread": event.thread,
                      "attrs": event.attrs, "changes": len(times)}
        return flapping

    def _stable(self, subject: str, stream: str, st: dict[str, Any]) -> Event:
        flap = st["flap"]
        st["flap"] = {"times": []}
        return Event.create(
            type="machine.stable", source=self.source, subject=subject,
            position=f"{flap['position']}#stable",
            occurred_at=datetime.fromtimestamp(flap["last"], UTC), severity=Severity.INFO,
            attrs=flap.get("attrs") or {}, thread=flap.get("thread"), relation="resolution",
            refers_to=flap["event"],
            fields={"stream": stream, "state": flap["state"], "label": flap["label"],
                    "suppressed": flap["suppressed"], "transitions": flap["suppressed"],
                    "changes": flap["changes"] + flap["suppressed"],
                    "duration_s": max(0.0, flap["last"] - flap["since"])})


def _stream_name(stream: str) -> str:
    return "connection" if stream == "online" else stream.split(":", 1)[-1].replace("_", " ")


def _blip_phrase(e: Event) -> str:
    f = e.fields
    states = ", ".join(f["states"])
    return (f"{e.subject} briefly {states} ({phrasing.lasted(f['duration_s'])}), "
            f"{f['back']} again")


def _flapping_phrase(e: Event) -> str:
    """"filler-3 flapping: 5 state changes in 6 s (…)": the time they took, not the window
    they fell in (which read "in 30 s" for a machine toggling every second or so)."""
    f = e.fields
    span = f.get("span_s", f["within_s"])
    return (f"{e.subject} flapping: {f['changes']} {_stream_name(f['stream'])} changes in "
            f"{phrasing.duration(span)} ({' ↔ '.join(f['states'])}); quiet until "
            f"stable for {phrasing.duration(f['stable_s'])}")


def _stable_phrase(e: Event) -> str:
    f = e.fields
    noun = "change" if f["changes"] == 1 else "changes"
    return (f"{e.subject} stable again, {f['label']}, after flapping: {f['changes']} {noun} "
            f"in {phrasing.duration(f['duration_s'])} ({f['suppressed']} not shown)")


PHRASES = {"machine.blip": _blip_phrase, "machine.flapping": _flapping_phrase,
           "machine.stable": _stable_phrase}
