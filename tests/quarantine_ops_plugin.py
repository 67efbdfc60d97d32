"""A test adapter plugin that implements ``Adapter.replay``: JSON readings, one per line of a
file, with a ``types:`` check like the MQTT adapter's. A line that is not JSON, or whose
field has the wrong type, is quarantined; ``replay`` decodes a quarantined line again with
the config of now, exactly as ``run`` does (same subject, same position), which is what
``quarantine replay`` needs after a fix."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from floorstream.plugin import (
    Adapter,
    Change,
    DecodeError,
    Emitter,
    Registry,
    ReplayContext,
    SourceConfig,
    hookimpl,
)

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
_TYPES: dict[str, tuple[type, ...]] = {"number": (int, float), "string": (str,)}


class ReadingsConfig(SourceConfig):
    path: Path
    types: dict[str, Literal["number", "string"]] = Field(default_factory=dict)


def decode(config: ReadingsConfig, raw: bytes, number: int) -> Change:
    """One line → one change; DecodeError with the reason people read."""
    try:
        record: dict[str, Any] = json.loads(raw)
    except ValueError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    for name, kind in config.types.items():
        value = record.get(name)
        if value is not None and not isinstance(value, _TYPES[kind]):
            raise DecodeError(f"field {name!r} should be a {kind}, got {value!r}")
    subject = str(record.pop("subject", "m1"))
    return Change(source=config.name, subject=subject, kind="telemetry",
                  position=f"line:{number}", data=record,
                  occurred_at=T0 + timedelta(seconds=number))


class ReadingsAdapter(Adapter[ReadingsConfig]):
    name: ClassVar[str] = "test.readings"

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        start = int(self.context.checkpoint or 0)
        lines = self.config.path.read_bytes().splitlines()
        for number in range(start, len(lines)):
            raw = lines[number]
            try:
                change = decode(self.config, raw, number)
            except DecodeError as exc:
                emitter.quarantine(raw, str(exc), position=f"line:{number}",
                                   context={"line": number}, checkpoint=str(number + 1))
                continue
            emitter.emit(change, checkpoint=str(number + 1))
        stop.wait()

    @classmethod
    def replay(cls, raw: bytes, context: ReplayContext) -> list[Change]:
        return [decode(context.config, raw, int(context.context["line"]))]


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    registry.add(ReadingsAdapter)
