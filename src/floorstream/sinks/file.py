"""``file``: append posts as JSON lines, rotating the file at a size limit.

For archives, log shippers and scripts. Rotation renames ``posts.jsonl`` → ``posts.jsonl.1`` →
… up to ``backups`` files, the way logrotate's ``rotate N`` would. Every worker of every file
sink in the process writes under one lock per path, so lines never interleave.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from floorstream.model import Post
from floorstream.plugin import DeliveryError, Outgoing, Sink, SinkConfig
from floorstream.sinks import payloads

__all__ = ["FileSink", "FileSinkConfig"]

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path.resolve()), threading.Lock())


class FileSinkConfig(SinkConfig):
    path: str = Field(description="the JSON-lines file")
    max_bytes: int = Field(default=10_000_000, ge=1_000, description="rotate beyond this size")
    backups: int = Field(default=5, ge=0, description="rotated files kept")
    format: Literal["activity", "post"] = Field(
        default="activity", description="AS2.0 objects or floorstream's own post records")
    fsync: bool = Field(default=False, description="fsync after each line (slower, safer)")


class FileSink(Sink[FileSinkConfig]):
    name: ClassVar[str] = "file"

    def __init__(self, config: FileSinkConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.path = Path(config.path)
        self.lock = _lock(self.path)

    def line(self, post: Post, outgoing: Outgoing) -> bytes:
        if self.cfg.format == "post":
            record = post.model_dump(mode="json")
            record["team"] = outgoing.team
        else:
            record = payloads.activity(post, outgoing)
        record["idempotency_key"] = outgoing.idempotency_key
        return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()

    def deliver(self, post: Post, outgoing: Outgoing) -> str | None:
        data = self.line(post, outgoing)
        try:
            with self.lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                size = self.path.stat().st_size if self.path.exists() else 0
                if size and size + len(data) > self.cfg.max_bytes:
                    self._rotate()
                with self.path.open("ab") as out:
                    out.write(data)
                    out.flush()
                    if self.cfg.fsync:
                        os.fsync(out.fileno())
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return None

    def _rotate(self) -> None:
        if self.cfg.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self.cfg.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
