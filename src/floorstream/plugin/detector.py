"""The detector contract.

A detector instance is built once per (source, detect entry) from its validated options and is
shared by every subject of that source; everything it must remember about one subject lives in
the :class:`DetectorState` the pipeline hands it. The pipeline persists dirty states in the same
transaction as the posts they led to, which is what makes a restart neither re-alert nor forget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from floorstream.model import Change, Event, Relation, Severity
from floorstream.plugin.durations import Duration

__all__ = ["Detector", "DetectorOptions", "DetectorState", "FlapOptions", "Interest",
           "SettleOptions", "SeverityName", "field_keys"]


def _severity_name(value: str) -> str:
    Severity.parse(value)  # raises ValueError listing the valid names
    return value


#: A severity as written in a config (``warning``); checked when the config is validated, so
#: ``floorstream check`` reports a misspelt one instead of the daemon failing at start.
SeverityName = Annotated[str, AfterValidator(_severity_name)]


class DetectorOptions(BaseModel):
    """Base of every detector's options: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FlapOptions(BaseModel):
    """``flap: {changes: 5, within: 1m, stable: 2m}``: that many transitions of one stream
    within the window make one "flapping" post; then nothing until the stream has kept one
    state for ``stable`` (default: ``within``), then one summary with the count."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    changes: int = Field(default=5, ge=2, description="transitions that mean flapping")
    within: Duration = Field(default=60.0, gt=0, description="…within this long (event time)")
    stable: Duration | None = Field(default=None, gt=0,
                                    description="quiet this long ends it (default: within)")
    severity: SeverityName = "warning"


class SettleOptions(BaseModel):
    """A source's ``states: {settle: 2s, flap: {...}}`` (``states: 2s`` for short): the
    state-like posts of its subjects (state changes, online/offline, a plugin's declared
    transitions) wait until the new state has lasted ``settle``; shorter states are folded into
    the next post, and a run that ends where it started becomes one "briefly …" line
    (floorstream/settle.py). ``flap`` adds flap detection."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    settle: Duration = Field(default=0.0, ge=0,
                             description="how long a state must last to be posted on its own")
    flap: FlapOptions | None = Field(default=None, description="flap detection (off: null)")

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        """``states: 2s`` is short for ``states: {settle: 2s}``."""
        return {"settle": data} if isinstance(data, str | int | float) else data


class DetectorState:
    """What one detector remembers about one subject: a JSON-able dict plus a dirty flag.

    Marking a state dirty also files its key in the owner's ``dirty`` set, so the pipeline
    persists exactly the states that changed without scanning every subject it knows (an ERP
    table can have a million).

    Two kinds of change: :meth:`update`/:meth:`replace` are *urgent* — committed before the
    input that caused them is acknowledged, because a later post depends on them (a machine's
    state, a threshold's peak). :meth:`update_lazily`/:meth:`replace_lazily` are *lazy* — what
    a restart may lose without a wrong post following (a silence detector's last-seen time):
    written with the next commit, or within a second by the pipeline's timer, so a steady
    stream that changes nothing urgent costs no transaction per batch.
    """

    __slots__ = ("_dirty", "_key", "_lazy_sink", "_sink", "data")

    def __init__(self, data: dict[str, Any] | None = None, *,
                 key: Any = None, sink: set[Any] | None = None,
                 lazy_sink: set[Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {}
        self._dirty = False
        self._key = key
        self._sink = sink
        #: where lazy changes are filed; without one they are urgent like any other
        self._lazy_sink = lazy_sink

    @property
    def dirty(self) -> bool:
        return self._dirty

    @dirty.setter
    def dirty(self, value: bool) -> None:
        self._dirty = value
        if value and self._sink is not None:
            self._sink.add(self._key)

    def update(self, **values: Any) -> None:
        self.data.update(values)
        self.dirty = True

    def replace(self, data: dict[str, Any]) -> None:
        self.data = data
        self.dirty = True

    def update_lazily(self, **values: Any) -> None:
        """Like :meth:`update`, for a change that may be persisted later than the ack (see
        the class docstring); an urgent change of the same state still commits it at once."""
        self.data.update(values)
        self._lazy()

    def replace_lazily(self, data: dict[str, Any]) -> None:
        """Like :meth:`replace`, persisted lazily (see :meth:`update_lazily`)."""
        self.data = data
        self._lazy()

    def _lazy(self) -> None:
        sink = self._lazy_sink
        if sink is None:
            self.dirty = True
        elif not self._dirty:
            sink.add(self._key)


class Detector:
    """Base class: subclasses set ``name`` and ``options_model`` and override :meth:`on_change`.

    ``on_tick`` is called about once a second for every subject with a state for this detector
    (persisted ones included), for detectors that react to the passage of time (silence). Both
    return the events found; they must be deterministic functions of (options, state, input) so
    that a replay yields the same event ids.
    """

    name: ClassVar[str]
    options_model: ClassVar[type[DetectorOptions]] = DetectorOptions
    #: True when the detector needs ``on_tick`` calls.
    ticks: ClassVar[bool] = False

    def __init__(self, options: DetectorOptions, source: str) -> None:
        self.options = options
        self.source = source

    @property
    def key(self) -> str:
        """Identifies this detector's state among the others of the same source."""
        return self.name

    def on_change(self, change: Change, state: DetectorState) -> list[Event]:
        raise NotImplementedError

    def reads(self) -> frozenset[str] | None:
        """The payload fields this detector reads from ``change.data`` (and ``change.before``),
        as written in its options (a dotted path counts with its first key too, see
        :func:`field_keys`); None, the default, for "any of them".

        Optional, and only a saving: an adapter that can read less (the Sparkplug session
        reads only the metrics some detector, template or route of the source uses) hands
        this detector Changes whose ``data`` holds only the declared fields that the message
        carried, and sends no Change at all for a message that carried none of them (see
        :meth:`presence_lag`). A detector that declares nothing gets every field of every
        message, as before. Declaring a field and then reading another is a bug: the other
        is absent whenever an adapter reads less."""
        return None

    def presence_lag(self) -> float | None:
        """How stale, in wall-clock seconds, this detector may see a subject's last message
        when the messages carried none of the fields it reads; None (the default): such a
        message need not reach it at all.

        A detector about *whether* a subject speaks (``silence``) reads no field but needs
        to hear of every message: it says ``frozenset()`` in :meth:`reads` and a lag here,
        and an adapter that reads less sends a Change with empty ``data`` for a subject whose
        messages carried nothing of interest at least that often (the first one at once)."""
        return None

    def on_tick(self, now: datetime, subject: str, state: DetectorState) -> list[Event]:
        return []

    def event(
        self,
        change: Change,
        type: str,
        severity: Severity,
        fields: dict[str, Any],
        *,
        position: str | None = None,
        occurred_at: datetime | None = None,
        clears: str | None = None,
        thread: str | None = None,
        relation: Relation | None = None,
        refers_to: str | None = None,
    ) -> Event:
        """An event about ``change``'s subject; its id derives from the change's position."""
        return Event.create(
            type=type,
            source=change.source,
            subject=change.subject,
            position=position if position is not None else change.position,
            occurred_at=occurred_at or change.when,
            severity=severity,
            fields=fields,
            attrs=change.attrs,
            change=change,
            clears=clears,
            thread=thread,
            relation=relation,
            refers_to=refers_to,
        )


def field_keys(path: str) -> frozenset[str]:
    """The top-level keys of ``change.data`` that :func:`lookup` may read for ``path``: the
    path itself (a key may contain dots: a Sparkplug metric ``Motor.Speed``) and, for a dotted
    path, its first part (``spindle.temp`` → ``spindle``)."""
    return frozenset({path, path.split(".", 1)[0]})


@dataclass(frozen=True, slots=True)
class Interest:
    """What a source's consumers read of its payloads (the host works it out from the
    detectors' :meth:`Detector.reads` and :meth:`Detector.presence_lag`, the summary templates
    and the plugins' render/route hooks; adapters get it as ``AdapterContext.interest``).

    ``fields`` None: everything (the default: an adapter that ignores this is right). A set:
    only these top-level keys of ``change.data`` are read by anyone, so an adapter may leave
    the others out, and leave out a Change whose ``data`` would hold none of them — provided
    it still sends, for each subject, a Change (its ``data`` may be empty) at least every
    ``presence_lag`` seconds of wall time while the subject's messages come, the first one at
    once: that is what keeps ``silence`` and the source's event-time watermark moving."""

    fields: frozenset[str] | None = None
    presence_lag: float = 1.0

    def wants(self, name: str) -> bool:
        return self.fields is None or name in self.fields


def lookup(data: dict[str, Any], path: str) -> Any:
    """A value by dotted path (``spindle.temp``); None when any step is missing."""
    if path in data:
        return data[path]
    value: Any = data
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value
