"""Test doubles that stand in for the pipeline when testing one adapter in isolation."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from floorstream.adapters.base import Ack
from floorstream.model import Change


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
    ``stop_after`` changes so a conformance test can interrupt it mid-stream."""

    stop: threading.Event = field(default_factory=threading.Event)
    stop_after: int | None = None
    auto_ack: bool = True
    changes: list[Change] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    checkpoint: str | None = None
    pending_acks: list[Ack] = field(default_factory=list)

    def emit(self, change: Change, *, ack: Ack | None = None,
             checkpoint: str | None = None) -> None:
        if self.stop_after is not None and len(self.changes) >= self.stop_after:
            self.stop.set()
            return  # not committed: must be emitted again after a restart
        self.changes.append(change)
        self._settle(ack, checkpoint)

    def quarantine(self, raw: bytes, error: str, *, position: str | None = None,
                   context: dict[str, Any] | None = None, ack: Ack | None = None,
                   checkpoint: str | None = None) -> None:
        self.quarantined.append(Quarantined(raw, error, position, context or {}))
        self._settle(ack, checkpoint)

    def problem(self, subject: str, message: str, *, position: str,
                fields: dict[str, Any] | None = None) -> None:
        self.problems.append((subject, message))

    def _settle(self, ack: Ack | None, checkpoint: str | None) -> None:
        if checkpoint is not None:
            self.checkpoint = checkpoint
        if ack is not None:
            if self.auto_ack:
                ack()
            else:
                self.pending_acks.append(ack)
