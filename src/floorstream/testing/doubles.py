"""Test doubles that stand in for the pipeline when testing one adapter in isolation."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from floorstream.model import Change, Event
from floorstream.plugin import Ack, Checkpoint, checkpoint_text


@dataclass
class Quarantined:
    raw: bytes
    error: str
    position: str | None
    context: dict[str, Any]


@dataclass
class RecordingEmitter:
    """Records what an adapter emits; acks immediately (as a pipeline would after commit) and
    remembers the last checkpoint, like the store does. Optionally stops the adapter after
    ``stop_after`` emitted items so a conformance test can interrupt it mid-stream."""

    stop: threading.Event = field(default_factory=threading.Event)
    stop_after: int | None = None
    auto_ack: bool = True
    #: everything that reaches the stream, in emit order: changes, baselines and events
    emitted: list[Change | Event] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    #: changes sent through ``baseline`` (learnt by detectors, never posted)
    baselines: list[Change] = field(default_factory=list)
    #: events the adapter decided itself (``Emitter.event``)
    events: list[Event] = field(default_factory=list)
    #: how many ``Emitter.checkpoint`` calls (progress without data) were made
    marks: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: the last checkpoint, as the store would hold it after the commits so far
    last_checkpoint: str | None = None
    #: the adapter's keyed state rows (``Emitter.checkpoint(state=...)``), as committed so far
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_acks: list[Ack] = field(default_factory=list)

    def load_state(self, keys: Collection[str]) -> dict[str, dict[str, Any]]:
        """``AdapterContext.load_state`` over :attr:`states` (what a restart would read)."""
        return {key: self.states[key] for key in keys if key in self.states}

    def emit(self, change: Change, *, ack: Ack | None = None,
             checkpoint: Checkpoint | None = None) -> None:
        if self._stopping():
            return  # not committed: must be emitted again after a restart
        self.changes.append(change)
        self.emitted.append(change)
        self._settle(ack, checkpoint)

    def _stopping(self) -> bool:
        """True once ``stop_after`` items were taken: from then on nothing is "committed"
        (no item, checkpoint or ack), as if the process died right there."""
        if self.stop_after is not None and len(self.emitted) >= self.stop_after:
            self.stop.set()
            return True
        return False

    def baseline(self, change: Change, *, ack: Ack | None = None,
                 checkpoint: Checkpoint | None = None) -> None:
        if self._stopping():
            return
        self.baselines.append(change)
        self.emitted.append(change)
        self._settle(ack, checkpoint)

    def event(self, event: Event, *, ack: Ack | None = None,
              checkpoint: Checkpoint | None = None) -> None:
        if self._stopping():
            return
        self.events.append(event)
        self.emitted.append(event)
        self._settle(ack, checkpoint)

    def checkpoint(self, checkpoint: Checkpoint | None, *, ack: Ack | None = None,
                   state: Mapping[str, dict[str, Any]] | None = None) -> None:
        if self._stopping():
            return
        self.marks += 1
        self.states.update(state or {})
        self._settle(ack, checkpoint)

    def quarantine(self, raw: bytes, error: str, *, position: str | None = None,
                   context: dict[str, Any] | None = None, ack: Ack | None = None,
                   checkpoint: Checkpoint | None = None) -> None:
        if self._stopping():
            return
        self.quarantined.append(Quarantined(raw, error, position, context or {}))
        self._settle(ack, checkpoint)

    def problem(self, subject: str, message: str, *, position: str,
                fields: dict[str, Any] | None = None) -> None:
        self.problems.append((subject, message))

    def _settle(self, ack: Ack | None, checkpoint: Checkpoint | None) -> None:
        if checkpoint is not None:
            self.last_checkpoint = checkpoint_text(checkpoint)
        if ack is not None:
            if self.auto_ack:
                ack()
            else:
                self.pending_acks.append(ack)
