"""``csv.tail``: follow a CSV file that another program appends to (a test bench, a scale, a
legacy MES export), one change per new row.

The checkpoint is the byte offset just after the last committed row, so a restart resumes
exactly there: no row is lost and none is read twice. A row's position is its byte offset,
which stays the same on every replay, so the ids of the events it produces are stable too. A
row that does not match the header (too many or too few cells) goes to quarantine, raw.
"""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from floorstream.plugin import (
    Adapter,
    Change,
    Duration,
    Emitter,
    Registry,
    SourceConfig,
    hookimpl,
)

__all__ = ["CsvTail", "CsvTailConfig", "register_adapters"]


class CsvTailConfig(SourceConfig):
    """``csv.tail`` source keys (plus the common ones: name, detect, attrs…)."""

    path: Path = Field(description="the CSV file to follow; its first line is the header")
    subject: str = Field(description="column naming the entity a row is about (machine id)")
    kind: str = Field(default="telemetry", description="the changes' kind")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    numeric: bool = Field(default=True, description="turn cells that look like numbers "
                                                    "into numbers")
    interval: Duration = Field(default=0.5, gt=0, description="how often to look for new rows")


class CsvTail(Adapter[CsvTailConfig]):
    """Reads complete lines only: a row still being written (no newline yet) waits for the next
    look, so a half-written row is never taken for a bad one."""

    name: ClassVar[str] = "csv.tail"

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        config = self.config
        offset = int(self.context.checkpoint or 0)
        header: list[str] | None = None
        while not stop.is_set():
            if config.path.exists():
                with config.path.open("rb") as handle:
                    header_line = handle.readline()
                    if header_line.endswith(b"\n"):
                        header = _cells(header_line, config.delimiter)
                        offset = max(offset, len(header_line))
                        handle.seek(offset)
                        offset = self._read(handle, header, offset, emitter, stop)
            if header is None or not stop.is_set():
                stop.wait(config.interval)

    def _read(self, handle: io.BufferedReader, header: list[str], offset: int,
              emitter: Emitter, stop: threading.Event) -> int:
        config = self.config
        for raw in iter(handle.readline, b""):
            if stop.is_set() or not raw.endswith(b"\n"):
                break  # stopping, or a row still being written: take it next time
            position, offset = str(offset), offset + len(raw)
            if not raw.strip():
                continue
            try:
                cells = _cells(raw, config.delimiter)
            except (UnicodeDecodeError, csv.Error) as exc:
                emitter.quarantine(raw, f"unreadable row: {exc}", position=position,
                                   checkpoint=str(offset))
                continue
            if len(cells) != len(header):
                emitter.quarantine(raw, f"row has {len(cells)} cells, the header "
                                        f"{len(header)}", position=position,
                                   context={"file": str(config.path)}, checkpoint=str(offset))
                continue
            row = dict(zip(header, cells, strict=True))
            data = {k: _number(v) for k, v in row.items()} if config.numeric else dict(row)
            emitter.emit(Change(source=config.name, subject=row.get(config.subject) or "?",
                                kind=config.kind, position=position, data=data,
                                attrs=dict(config.attrs)),
                         checkpoint=str(offset))
        return offset


def _cells(line: bytes, delimiter: str) -> list[str]:
    text = line.decode("utf-8").rstrip("\r\n")
    return next(csv.reader([text], delimiter=delimiter), [])


def _number(cell: str) -> str | int | float:
    for convert in (int, float):
        try:
            return convert(cell)
        except ValueError:
            pass
    return cell


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    registry.add(CsvTail)
