"""``field_change``: before → after for the listed fields of a record (ERP rows).

It reads the record kinds the ``erp.table`` adapter documents (docs/erp.md): ``row.inserted``,
``row.updated``, ``row.upserted``, ``row.created``, ``row.deleted``, rows of a mass update
(attribute ``mass_run``) and the ``row.mass_update`` change that ends such a run.

When the source knows the row before the change (audit logs, triggers) that is the truth;
otherwise the last values seen are kept as state, so even a cursor-polled table reports
"state Confirmed → In progress". Each changed field is one event, so routing and flood control
can treat "price changed" differently from "state changed".

A source that knows its records' idioms says so in *virtual* fields of ``change.data`` (names
starting with ``_``, never columns; the ``erp.table`` adapter fills them, docs/erp.md):

- ``_thread`` (str): every event of the record joins that thread instead of the subject's;
- ``_origin`` (``{"verb": "amended"|"backorder"|"split", "of": str}``): the record was made
  from another one; the first time it is seen (instead of ``record.created``, or ahead of
  what its first logged change says) it is one ``record.<verb>`` event naming ``of``, an
  ``update`` of that thread's story;
- ``_action`` (``{"field": f, "verb": "submitted"|"cancelled", "status": s}``): when field
  ``f`` changes, everything that change changed is ONE ``record.<verb>`` event (a user
  action), with the current value of field ``s`` (the document's status) and the other
  changed fields; ``cancelled`` is a ``retraction`` of the record's ``submitted`` event;
- ``_steps`` (``{"polled_every_s": s}``): the change compares the record as it is now with
  the last state seen (a polled table), so edits between two polls are not seen one by one;
  its ``record.field_changed`` events say so, as the SAP status mode's do
  (``intermediate_unseen``, ``changes`` null, ``polled_every_s``): "… Confirmed → Done
  (intermediate states may be missing: polled every 5 s)";
- ``_lifecycle`` (``{"field": f, "state": "active"|"archived"|"deleted"|"blocked", "flag":
  v}``, with ``"was"`` when the source knows the state before): the record's life as its ERP
  flags it (Odoo ``active``, SAP ``LOEKZ``). A change of state is ONE ``record.archived``,
  ``record.deleted`` (``flagged``: the record is still there), ``record.blocked`` or
  ``record.restored`` event instead of a field change of ``f``: "WH/MO/00042 archived",
  "4500012/10 flagged for deletion (LOEKZ L)".
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

from pydantic import Field

from floorstream.model import Change, Event, Severity
from floorstream.plugin import (
    Detector,
    DetectorOptions,
    DetectorState,
    SeverityName,
    lookup,
)


class FieldChangeOptions(DetectorOptions):
    fields: list[str] = Field(min_length=1, description="the columns whose changes matter")
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="column → how people call it")
    severity: SeverityName = "info"
    field_severity: dict[str, SeverityName] = Field(default_factory=dict,
                                           description="column → severity of its changes")
    created: bool = Field(default=True, description="post when a record appears")
    deleted: bool = Field(default=True, description="post when a record disappears")


def _plain(value: Any) -> Any:
    """JSON-able form of a value, so state and fields round-trip through the store."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


#: virtual-field verbs this detector words (see the module docstring)
ORIGIN_VERBS = frozenset({"amended", "backorder", "split"})
ACTION_VERBS = frozenset({"submitted", "cancelled"})
#: state keys that outlive a record's values (ids of its action events, by verb)
_KEEP = ("acts",)
#: a record's life (virtual field ``_lifecycle``) → the event type of entering it
LIFE_EVENTS = {"archived": "record.archived", "deleted": "record.deleted",
               "blocked": "record.blocked", "active": "record.restored"}


def _virtual(data: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None,
                                            dict[str, Any] | None]:
    """(thread, origin, action) from a change's virtual fields, when well-formed."""
    thread = data.get("_thread")
    origin = data.get("_origin")
    action = data.get("_action")
    return (thread if isinstance(thread, str) and thread else None,
            origin if isinstance(origin, dict) and origin.get("verb") in ORIGIN_VERBS
            else None,
            action if isinstance(action, dict) and action.get("verb") in ACTION_VERBS
            and isinstance(action.get("field"), str) else None)


#: a time zone's abbreviation as strftime %Z gives it (CET, CEST, UTC, +03)
_ZONE_LABEL = re.compile(r"[A-Z]{2,5}|[+-]\d{2,4}")


def _state_like(before: Any, after: Any) -> bool:
    """A change between two words or codes (Confirmed → Done, 'B' → 'C'): a state, whose
    steps between two polls may have been missed and the post must say so. A number, a date
    or a flag that moved is its new value, whatever it went through: the note on every
    quantity and date of a polled table was noise (found in the web-feed trial)."""
    def word(value: Any) -> bool:
        if not isinstance(value, str) or not value.strip():
            return False
        try:
            float(value)
        except ValueError:
            pass
        else:
            return False
        return not _DATELIKE.match(value)
    return word(before) and word(after)


_DATELIKE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _relabelled(before: Any, after: Any) -> bool:
    """The same time, now labelled with its zone ("06:00" → "06:00 UTC"): a state written
    before times in posts named their zone is not a change of the value."""
    if not (isinstance(before, str) and isinstance(after, str)):
        return False
    head, _, label = after.rpartition(" ")
    return head == before and _ZONE_LABEL.fullmatch(label) is not None


def _life(data: dict[str, Any]) -> dict[str, Any] | None:
    """The record's lifecycle (virtual field ``_lifecycle``), when well-formed."""
    life = data.get("_lifecycle")
    return life if isinstance(life, dict) and life.get("state") in LIFE_EVENTS \
        and isinstance(life.get("field"), str) else None


class FieldChange(Detector):
    name: ClassVar[str] = "field_change"
    options_model: ClassVar[type[DetectorOptions]] = FieldChangeOptions

    def __init__(self, options: DetectorOptions, source: str) -> None:
        super().__init__(options, source)
        assert isinstance(options, FieldChangeOptions)
        self.opts = options
        self.severity = Severity.parse(options.severity)
        self.field_severity = {k: Severity.parse(v) for k, v in options.field_severity.items()}
        #: mass-update run → (field, before, after) → rows, until the run's summary comes
        self._mass: dict[str, Counter[tuple[str, Any, Any]]] = {}

    def on_change(self, change: Change, state: DetectorState) -> list[Event]:
        tracked = self.opts.fields
        if change.kind == "row.mass_update":
            return self._mass_summary(change)
        run = change.attrs.get("mass_run")
        if run is not None:
            # a row of a mass update (emitted as a baseline: nothing found here is posted):
            # remember it and count what it changed into the run's one summary
            if change.kind == "row.deleted":
                state.replace({"deleted": True})
            else:
                self._mass_row(change, state, run,
                               {name: _plain(lookup(change.data, name)) for name in tracked})
            return []
        thread, origin, action = _virtual(change.data)
        life = _life(change.data)
        current = {name: _plain(lookup(change.data, name)) for name in tracked}
        if change.kind == "row.deleted":
            # what the record held: the source's before image, else the last values seen
            if change.before is not None:
                last = {name: _plain(lookup(change.before, name)) for name in tracked}
            else:
                last = state.data.get("values", current)
            state.replace({"deleted": True})
            if not self.opts.deleted:
                return []
            return [self.event(change, "record.deleted", Severity.NOTICE, {"values": last},
                               position=f"{change.position}#{self.key}:deleted",
                               thread=thread)]
        previous: dict[str, Any] | None
        if change.before is not None:
            previous = {name: _plain(lookup(change.before, name)) for name in tracked}
        else:
            previous = state.data.get("values")
        # never seen before: a record made from another one is announced as such
        announce = origin is not None and "values" not in state.data \
            and "deleted" not in state.data
        was_life = None if life is None else life.get("was") or state.data.get("life")
        kept = {k: state.data[k] for k in _KEEP if k in state.data}
        state.replace({"values": current, **kept,
                       **({"life": life["state"]} if life is not None else {})})
        events: list[Event] = []
        if announce:
            assert origin is not None
            events.append(self.event(
                change, f"record.{origin['verb']}", self.severity,
                {"verb": origin["verb"], "of": _plain(origin.get("of")), "values": current},
                position=f"{change.position}#{self.key}:{origin['verb']}", thread=thread,
                relation="update"))
        if change.kind == "row.created" or (
                previous is None and change.kind in ("row.inserted", "row.upserted")):
            if announce or not self.opts.created:
                return events
            return [self.event(change, "record.created", Severity.INFO, {"values": current},
                               position=f"{change.position}#{self.key}:created",
                               thread=thread)]
        if previous is None:  # first sight without history: baseline silently
            return events
        changed = [name for name in tracked if previous.get(name) != current[name]
                   and not _relabelled(previous.get(name), current[name])]
        if life is not None and was_life not in (None, life["state"]):
            assert isinstance(was_life, str)
            flag = life["field"].lower()
            changed = [name for name in changed if name.lower() != flag]
            if life["state"] != "deleted" or self.opts.deleted:
                events.append(self._life_event(change, life, was_life, thread))
        if action is not None and action["field"] in changed:
            events.append(self._action(change, state, action, previous, current, changed,
                                       thread))
            return events
        steps = change.data.get("_steps")
        unseen = {"intermediate_unseen": True, "changes": None,
                  "polled_every_s": steps.get("polled_every_s")} \
            if isinstance(steps, dict) else {}
        for name in changed:
            before, after = previous.get(name), current[name]
            fields = {"field": name, "label": self._label(name), "before": before,
                      "after": after, **(unseen if _state_like(before, after) else {})}
            events.append(self.event(change, "record.field_changed",
                                     self.field_severity.get(name, self.severity), fields,
                                     position=f"{change.position}#{self.key}:{name}",
                                     thread=thread))
        return events

    def _life_event(self, change: Change, life: dict[str, Any], was: str,
                    thread: str | None) -> Event:
        """The record archived, flagged for deletion, blocked, or back from one of them."""
        now, field = life["state"], life["field"]
        fields = {"state": now, "was": was, "field": field, "flag": _plain(life.get("flag")),
                  "flagged": now == "deleted"}
        severity = self.field_severity.get(field) or (
            Severity.NOTICE if now in ("deleted", "blocked") else self.severity)
        return self.event(change, LIFE_EVENTS[now], severity, fields,
                          position=f"{change.position}#{self.key}:life:{now}", thread=thread)

    def _label(self, name: str) -> str:
        return self.opts.labels.get(name, name.replace("_", " "))

    def _action(self, change: Change, state: DetectorState, action: dict[str, Any],
                previous: dict[str, Any], current: dict[str, Any], changed: list[str],
                thread: str | None) -> Event:
        """One event for a user action (a document submitted, cancelled): the status it
        left the record in and whatever else that change changed."""
        verb, status = action["verb"], action.get("status")
        status_value = _plain(lookup(change.data, status)) if isinstance(status, str) else None
        others = [{"field": n, "label": self._label(n), "before": previous.get(n),
                   "after": current[n]} for n in changed if n not in (action["field"], status)]
        acts = dict(state.data.get("acts") or {})
        fields = {"action": verb, "field": action["field"],
                  "status": status_value, "status_label": self._label(status)
                  if isinstance(status, str) else None, "changes": others}
        event = self.event(change, f"record.{verb}",
                           self.field_severity.get(action["field"], self.severity), fields,
                           position=f"{change.position}#{self.key}:{verb}", thread=thread,
                           relation="retraction" if verb == "cancelled" else "update",
                           refers_to=acts.get("submitted") if verb == "cancelled" else None)
        acts[verb] = event.id
        state.replace({**state.data, "acts": acts})
        return event

    # -- mass updates (erp.table): one summary of what really changed ------------------------

    def _mass_row(self, change: Change, state: DetectorState, run: str,
                  current: dict[str, Any]) -> None:
        """Count one row of a mass update against what it held before: the source's before
        image, else the last values seen. A replayed row (its state already written by this
        very change before a restart) uses the before kept with that state, so a replay
        counts the same."""
        if change.before is not None:
            previous: dict[str, Any] | None = {
                n: _plain(lookup(change.before, n)) for n in self.opts.fields}
        elif state.data.get("at") == change.position:
            previous = state.data.get("prev")
        else:
            previous = state.data.get("values")
        counts = self._mass.get(run)
        if counts is None:
            while len(self._mass) >= 16:  # runs whose summary never came (a crash)
                self._mass.pop(next(iter(self._mass)))
            counts = self._mass[run] = Counter()
        # a record archived or flagged by the mass update is counted as that ("record active
        # → archived ×1,500"), not as a change of its flag column
        life = _life(change.data)
        was_life = None
        if life is not None:
            replay = state.data.get("at") == change.position
            was_life = life.get("was") or state.data.get("prev_life" if replay else "life")
            if was_life is not None and was_life != life["state"]:
                counts[("_lifecycle", was_life, life["state"])] += 1
        flag = life["field"].lower() if life is not None else None
        for name, after in current.items():
            if name not in change.data or name.lower() == flag:
                continue  # a field of another table of the source, or the record's flag
            before = None if previous is None else previous.get(name)
            if before == after and (previous is not None or after is None):
                continue
            if len(counts) < 10_000 or (name, before, after) in counts:
                counts[(name, before, after)] += 1
        kept = {k: state.data[k] for k in _KEEP if k in state.data}
        state.replace({"values": current, "at": change.position, "prev": previous, **kept,
                       **({"life": life["state"], "prev_life": was_life}
                          if life is not None else {})})

    def _mass_summary(self, change: Change) -> list[Event]:
        counts = self._mass.pop(str(change.data.get("run")), Counter())
        top = [{"field": name, "label": "record" if name == "_lifecycle"
                else self.opts.labels.get(name, name.replace("_", " ")),
                "before": before, "after": after, "count": n}
               for (name, before, after), n in counts.most_common(5)]
        fields = {"table": change.data.get("table"), "count": change.data.get("count"),
                  "kinds": change.data.get("kinds"), "changes": top}
        return [self.event(change, "record.mass_update", Severity.NOTICE, fields,
                           position=f"{change.position}#{self.key}:mass")]
