"""A test adapter plugin: replays JSON lines from a file, like a broker replays unacked messages.

Its resume point is the offset it *acked* (kept in a side file, as a broker keeps it), not the
committed checkpoint: so a process killed after commit and before ack replays those lines, and
the test can check that the replay adds no post. Lines that are not JSON are quarantined.
``{"event": ...}`` lines become adapter-decided events (one post each).
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from floorstream.plugin import (
    Adapter,
    Change,
    Emitter,
    Event,
    Registry,
    Severity,
    SourceConfig,
    hookimpl,
)

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


class LinesConfig(SourceConfig):
    path: Path
    acked: Path = Field(description="file holding the number of lines acked so far")
    repeat: int = Field(default=1, description="emit every line this many times")
    resume: Literal["acked", "checkpoint"] = Field(
        default="acked", description="acked: like a broker redelivering unacked messages; "
                                     "checkpoint: like a file/ERP adapter, from the commit")


class LinesAdapter(Adapter[LinesConfig]):
    name: ClassVar[str] = "test.lines"

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        config = self.config
        start = int(config.acked.read_text() or 0) if config.acked.exists() else 0
        if config.resume == "checkpoint":
            start = max(start, int(self.context.checkpoint or 0))
        lines = config.path.read_text(encoding="utf-8").splitlines()
        for number in range(start, len(lines)):
            if stop.is_set():
                return
            ack = _acker(config.acked, number + 1)
            raw = lines[number]
            try:
                record: dict[str, Any] = json.loads(raw)
            except json.JSONDecodeError as exc:
                emitter.quarantine(raw.encode(), f"invalid JSON: {exc}", position=str(number),
                                   ack=ack, checkpoint=str(number + 1))
                continue
            subject = str(record.pop("subject", "m1"))
            when = T0 + timedelta(seconds=number)  # replay-stable
            for _ in range(config.repeat):
                if "type" in record:
                    emitter.event(Event.create(
                        type=str(record["type"]), source=config.name, subject=subject,
                        position=str(number), occurred_at=when,
                        severity=Severity.parse(record.get("severity", "info")),
                        fields=dict(record.get("fields") or {})),
                        ack=ack, checkpoint=str(number + 1))
                else:
                    emitter.emit(Change(source=config.name, subject=subject, kind="telemetry",
                                        position=str(number), data=record, occurred_at=when),
                                 ack=ack, checkpoint=str(number + 1))
        stop.wait()  # like a subscription: stay until stopped


def _acker(path: Path, value: int) -> Any:
    def ack() -> None:
        current = int(path.read_text() or 0) if path.exists() else 0
        if value > current:  # atomically: a reader never sees a half-written file
            tmp = path.with_suffix(".tmp")
            tmp.write_text(str(value))
            os.replace(tmp, path)
    return ack


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    registry.add(LinesAdapter)
