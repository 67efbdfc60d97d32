"""Row changes → emitted :class:`Change` s, with mass updates folded into one summary.

A run of changes sharing one statement marker (the same ``write_date`` from one UPDATE, the
same audit transaction) that reaches ``mass_update`` rows becomes one ``record.mass_update``
event. Its rows are still emitted, through ``Emitter.baseline`` with the run's first position
in their ``mass_run`` attribute: the detectors learn their new values silently, so the next
single-row edit shows the right "before", and ``field_change`` counts what each row really
changed against its state (the ``row.mass_update`` change that ends the run asks it for the
summary), so unchanged columns are not listed. Rows of a first start (``initial: baseline``)
go out through ``Emitter.baseline`` too: learnt, not posted.
Memory stays bounded: at most ``mass_update`` rows are held back while a run is undecided.

Checkpoints travel with the changes: each emitted change carries the source's checkpoint as
it stands after that row, so a commit never records a position ahead of what it contains.

A :class:`RowChange` with an :class:`EventSpec` is something the adapter understood itself
(an SAP status set that changed, a Frappe child-table row): it goes out as an event through
``Emitter.event``, skipping the detectors. A row's ``row_attrs`` (the virtual field
``_attrs``, see :mod:`.values`) become attrs of its change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from floorstream.adapters.erp.alpha import alpha_out
from floorstream.adapters.erp.config import TableConfig, subject_environment
from floorstream.adapters.erp.values import ATTRS
from floorstream.model import Change, Event, Relation, Severity, utcnow
from floorstream.plugin import Emitter

__all__ = ["BASELINE", "FLUSH", "NO_GROUP", "EventSpec", "Publisher", "RowChange",
           "SubjectMaker"]

#: the kind of a :class:`RowChange` read on a first start with ``initial: baseline``: it goes
#: out through ``Emitter.baseline`` (learnt by the detectors, not posted)
BASELINE = "row.baseline"

#: group of a change that belongs to no statement run (never part of a mass update)
NO_GROUP = object()
#: in a watcher's stream of changes: the runs so far are complete (see ``Publisher.publish``)
FLUSH = None
_NO_GROUP = NO_GROUP


@dataclass
class EventSpec:
    """An event the adapter decided itself, for :meth:`Publisher.publish` to emit."""

    type: str
    fields: dict[str, Any]
    severity: Severity = Severity.INFO
    relation: Relation = "new"
    thread: str | None = None
    refers_to: str | None = None


@dataclass
class RowChange:
    """One observed row change, values already humanised."""

    table: str
    key: Any
    kind: str  # row.created | row.updated | row.deleted | row.upserted | row.baseline
    position: str
    data: dict[str, Any]
    before: dict[str, Any] | None = None
    occurred_at: datetime | None = None
    group: Any = _NO_GROUP
    after: Any = None  # the table's checkpoint position once this row is committed
    subject: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    event: EventSpec | None = None


class SubjectMaker:
    """Renders a table's ``subject:`` template; falls back to ``table:key`` (an ALPHA key
    without its leading zeros)."""

    def __init__(self, config: TableConfig) -> None:
        self.table = config.table
        self.template = subject_environment().from_string(config.subject) if config.subject \
            else None
        self.alpha_key = config.key in config.alpha

    def __call__(self, key: Any, row: dict[str, Any]) -> str:
        fallback = f"{self.table}:{alpha_out(key) if self.alpha_key else key}"
        if self.template is None:
            return fallback
        try:
            text = self.template.render(row=row, key=key, table=self.table).strip()
        except Exception:
            return fallback
        return text[:255] or fallback


class Publisher:
    """Emits one table's row changes for a source whose checkpoint covers all its tables."""

    def __init__(self, source: str, emitter: Emitter, attrs: dict[str, str],
                 checkpoint: Callable[[str, Any], str], *, detector_summary: bool = False
                 ) -> None:
        self.source = source
        self.emitter = emitter
        self.attrs = attrs
        self.checkpoint = checkpoint
        #: a ``field_change`` detector sums up mass updates: it knows each row's last values
        #: (its state), so the summary lists only what changed, with before → after
        self.detector_summary = detector_summary

    def publish(self, config: TableConfig, changes: Iterable[RowChange | None]) -> int:
        """Emit the changes in order; returns how many changes (rows) were emitted.

        ``None`` in the stream (:data:`FLUSH`) says no later change can join the current
        statement run (the cursor mode's new rows are done; the overlap re-read follows), so
        rows held back to see whether the run grows into a mass update go out now.
        """
        threshold = config.mass_update
        run: list[RowChange] = []
        massed: _MassRun | None = None
        emitted = 0
        for change in changes:
            if change is FLUSH:
                for held in run:
                    self._emit(held)
                run = []
                if massed is not None:
                    self._summary(config, massed)
                    massed = None
                continue
            emitted += 1
            if massed is not None:
                if change.group is massed.group or change.group == massed.group:
                    massed.add(change)
                    self._emit(change, with_checkpoint=False, run=massed.first_position)
                    continue
                self._summary(config, massed)
                massed = None
            if run and not _same_group(run[-1], change):
                for held in run:
                    self._emit(held)
                run = []
            if (threshold and change.group is not _NO_GROUP and change.kind != BASELINE
                    and change.event is None):
                run.append(change)
                if len(run) >= threshold:
                    massed = _MassRun(config, run[0].group, run[0].position)
                    for held in run:
                        massed.add(held)
                        self._emit(held, with_checkpoint=False, run=massed.first_position)
                    run = []
            else:
                self._emit(change)
        for held in run:
            self._emit(held)
        if massed is not None:
            self._summary(config, massed)
        return emitted

    def mark(self, table: str, position: Any) -> None:
        """Commit a table's position when there is no change to carry it (a baseline taken
        on an empty table, audit-log rows of other objects)."""
        self.emitter.checkpoint(self.checkpoint(table, position))

    def _emit(self, row: RowChange, *, with_checkpoint: bool = True,
              run: str | None = None) -> None:
        attrs = {**self.attrs, **row.attrs, "table": row.table}
        extra = row.data.pop(ATTRS, None)
        if extra:
            attrs.update(extra)
        if row.before is not None:
            row.before.pop(ATTRS, None)
        if row.event is not None:
            spec = row.event
            event = Event.create(
                type=spec.type, source=self.source, subject=row.subject,
                position=row.position, occurred_at=row.occurred_at or utcnow(),
                severity=spec.severity, fields=spec.fields, attrs=attrs, thread=spec.thread,
                relation=spec.relation, refers_to=spec.refers_to)
            self.emitter.event(event, checkpoint=(self.checkpoint(row.table, row.after)
                                                  if with_checkpoint and row.after is not None
                                                  else None))
            return
        if run is not None:
            attrs["mass_run"] = run  # field_change counts the row into the run's summary
        first_sight = row.kind == BASELINE
        change = Change(source=self.source, subject=row.subject,
                        kind="row.upserted" if first_sight else row.kind,
                        position=row.position, occurred_at=row.occurred_at, data=row.data,
                        before=row.before, attrs=attrs)
        checkpoint = (self.checkpoint(row.table, row.after)
                      if with_checkpoint and row.after is not None else None)
        if first_sight or run is not None:
            self.emitter.baseline(change, checkpoint=checkpoint)
        else:
            self.emitter.emit(change, checkpoint=checkpoint)

    def _summary(self, config: TableConfig, run: _MassRun) -> None:
        last = run.last
        assert last is not None
        fields = run.fields(config)
        position = f"{config.table}:mass:{run.first_position}"
        attrs = {**self.attrs, "table": config.table}
        if self.detector_summary:
            change = Change(
                source=self.source, subject=config.table, kind="row.mass_update",
                position=position, occurred_at=last.occurred_at, attrs=attrs,
                data={"run": run.first_position, "table": config.table, "count": run.count,
                      "kinds": dict(run.kinds)})
        else:  # no field_change detector: only the source's before images are known
            event = Event.create(
                type="record.mass_update", source=self.source, subject=config.table,
                position=position, occurred_at=last.occurred_at or utcnow(),
                severity=Severity.NOTICE, fields=fields, attrs=attrs)
            checkpoint = (None if last.after is None
                          else self.checkpoint(config.table, last.after))
            self.emitter.event(event, checkpoint=checkpoint)
            return
        checkpoint = None if last.after is None else self.checkpoint(config.table, last.after)
        self.emitter.emit(change, checkpoint=checkpoint)


def _same_group(a: RowChange, b: RowChange) -> bool:
    return a.group is not _NO_GROUP and (a.group is b.group or a.group == b.group)


class _MassRun:
    """Counts of one mass update: rows, and per tracked field the transitions seen."""

    def __init__(self, config: TableConfig, group: Any, first_position: str) -> None:
        self.config = config
        self.group = group
        self.first_position = first_position
        self.count = 0
        self.kinds: Counter[str] = Counter()
        self.transitions: Counter[tuple[str, str, str]] = Counter()
        self.last: RowChange | None = None

    def add(self, change: RowChange) -> None:
        self.count += 1
        self.kinds[change.kind] += 1
        self.last = change
        for name in self.config.track:
            after = change.data.get(name)
            before = None if change.before is None else change.before.get(name)
            if change.before is not None and before == after:
                continue
            self.transitions[(name, _text(before), _text(after))] += 1

    def fields(self, config: TableConfig) -> dict[str, Any]:
        top = [{"field": name, "label": config.labels.get(name, name.replace("_", " ")),
                "before": None if before == "\0" else before, "after": after, "count": n}
               for (name, before, after), n in self.transitions.most_common(5)]
        return {"table": config.table, "count": self.count, "kinds": dict(self.kinds),
                "changes": top}


def _text(value: Any) -> str:
    return "\0" if value is None else str(value)
