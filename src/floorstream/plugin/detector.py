"""The detector contract.

A detector instance is built once per (source, detect entry) from its validated options and is
shared by every subject of that source; everything it must remember about one subject lives in
the :class:`DetectorState` the pipeline hands it. The pipeline persists dirty states in the same
transaction as the posts they led to, which is what makes a restart neither re-alert nor forget.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from floorstream.model import Change, Event, Relation, Severity

__all__ = ["Detector", "DetectorOptions", "DetectorState", "SeverityName"]


def _severity_name(value: str) -> str:
    Severity.parse(value)  # raises ValueError listing the valid names
    return value


#: A severity as written in a config (``warning``); checked when the config is validated, so
#: ``floorstream check`` reports a misspelt one instead of the daemon failing at start.
SeverityName = Annotated[str, AfterValidator(_severity_name)]


class DetectorOptions(BaseModel):
    """Base of every detector's options: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DetectorState:
    """What one detector remembers about one subject: a JSON-able dict plus a dirty flag.

    Marking a state dirty also files its key in the owner's ``dirty`` set, so the pipeline
    persists exactly the states that changed without scanning every subject it knows (an ERP
    table can have a million).
    """

    __slots__ = ("_dirty", "_key", "_sink", "data")

    def __init__(self, data: dict[str, Any] | None = None, *,
                 key: Any = None, sink: set[Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {}
        self._dirty = False
        self._key = key
        self._sink = sink

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
