"""``supply.folder``: watch an inbox folder for ASN, carrier-status and supplier files.

A file is read only once it has *settled*: its size and modification time unchanged for
``settle`` seconds (an FTP/SMB upload still being written keeps changing them). Names starting
with a dot and upload temporaries (``*.part``, ``*.tmp``, ``*.filepart``, ``*~``) are never
read; with ``marker: .ok`` a file waits for its ``<name>.ok`` companion. A file is moved to
``done/`` (parsed) or ``failed/`` (quarantined) only in the ack, i.e. after its posts are
committed; after a crash the files still in the inbox are read again and their deterministic
event ids make the replay post nothing twice.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from floorstream._markers import hookimpl
from floorstream.adapters.base import Adapter, Emitter, SourceConfig
from floorstream.adapters.supply.feed import FeedHandler, SupplyConfig, check_erp
from floorstream.durations import Duration
from floorstream.registry import Registry

__all__ = ["FolderConfig", "SupplyFolder"]


class FolderConfig(SupplyConfig):
    path: str = Field(description="the inbox folder")
    done: str | None = Field(default=None, description="where parsed files go (<path>/done)")
    failed: str | None = Field(default=None,
                               description="where unreadable files go (<path>/failed)")
    pattern: str = Field(default="*", description="glob of the file names to read")
    ignore: list[str] = Field(default_factory=lambda: [".*", "*.part", "*.tmp", "*.filepart",
                                                       "*~", "*.ok"],
                              description="globs never read (uploads in progress, markers)")
    marker: str | None = Field(default=None,
                               description="suffix of a companion file that must exist first "
                                           "(e.g. .ok); it is moved along")
    settle: Duration = Field(default=2.0, description="size+mtime unchanged this long first")
    poll: Duration = Field(default=1.0, description="time between two scans")
    max_in_flight: int = Field(default=500, ge=1,
                               description="files handed to the pipeline but not committed yet")


class SupplyFolder(Adapter):
    name: ClassVar[str] = "supply.folder"
    config_model: ClassVar[type[SourceConfig]] = FolderConfig

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        config = self.config
        assert isinstance(config, FolderConfig)
        inbox = Path(config.path)
        done = Path(config.done) if config.done else inbox / "done"
        failed = Path(config.failed) if config.failed else inbox / "failed"
        for folder in (inbox, done, failed):
            folder.mkdir(parents=True, exist_ok=True)
        self.handler = FeedHandler(config, self.context.checkpoint, self.context.log)
        seen: dict[str, tuple[int, int, float]] = {}  # name → size, mtime_ns, stable since
        in_flight: set[str] = set()
        lock = threading.Lock()

        while not stop.is_set():
            now = time.monotonic()
            ready: list[tuple[int, str]] = []
            present: set[str] = set()
            with os.scandir(inbox) as entries:
                for entry in entries:
                    name = entry.name
                    if not self._wanted(name, config) or not entry.is_file():
                        continue
                    present.add(name)
                    with lock:
                        if name in in_flight:
                            continue
                    stat = entry.stat()
                    previous = seen.get(name)
                    if previous is None or previous[:2] != (stat.st_size, stat.st_mtime_ns):
                        seen[name] = (stat.st_size, stat.st_mtime_ns, now)
                        if config.settle > 0:
                            continue
                        previous = seen[name]
                    if now - previous[2] < config.settle:
                        continue
                    if config.marker and not (inbox / (name + config.marker)).exists():
                        continue
                    ready.append((stat.st_mtime_ns, name))
            for name in list(seen):
                if name not in present:
                    del seen[name]
            ready.sort()
            for _mtime, name in ready:
                if stop.is_set():
                    return
                while len(in_flight) >= config.max_in_flight and not stop.is_set():
                    stop.wait(0.01)  # the pipeline is behind: do not queue the whole folder
                self._read(emitter, inbox, name, done, failed, in_flight, lock)
                seen.pop(name, None)
            stop.wait(config.poll)

    def _wanted(self, name: str, config: FolderConfig) -> bool:
        if not fnmatch.fnmatchcase(name, config.pattern):
            return False
        return not any(fnmatch.fnmatchcase(name, glob) for glob in config.ignore)

    def _read(self, emitter: Emitter, inbox: Path, name: str, done: Path, failed: Path,
              in_flight: set[str], lock: threading.Lock) -> None:
        config = self.config
        assert isinstance(config, FolderConfig)
        path = inbox / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return  # taken away between scan and read
        except OSError as exc:  # unreadable (permissions): leave it, say so, try again later
            self.context.log.error("supply_file_unreadable", file=name, error=str(exc))
            return
        with lock:
            in_flight.add(name)

        def move(target: Path) -> None:
            try:
                _move(path, target / name)
                if config.marker:
                    companion = inbox / (name + config.marker)
                    if companion.exists():
                        _move(companion, target / companion.name)
            except OSError as exc:
                self.context.log.error("supply_file_move_failed", file=name, error=str(exc))
            with lock:
                in_flight.discard(name)

        self.handler.handle(emitter, raw, name, ack=lambda: move(done),
                            on_failure=lambda: move(failed))

    @classmethod
    def check(cls, config: SourceConfig) -> list[str]:
        return check_erp(config)

    def close(self) -> None:
        handler = getattr(self, "handler", None)
        if handler is not None:
            handler.close()


def _move(source: Path, target: Path) -> None:
    """Move without overwriting: a re-sent file with the same name gets a numbered twin."""
    candidate, number = target, 1
    while candidate.exists():
        candidate = target.with_name(f"{target.name}.{number}")
        number += 1
    os.replace(source, candidate)


@hookimpl
def register_adapters(registry: Registry[type[Adapter]]) -> None:
    registry.add(SupplyFolder)
