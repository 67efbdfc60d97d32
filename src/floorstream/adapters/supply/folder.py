"""``supply.folder``: watch an inbox folder for ASN, carrier-status and supplier files.

A file is read only once it has *settled*: its size and modification time unchanged for
``settle`` seconds (an FTP/SMB upload still being written keeps changing them). Names starting
with a dot and upload temporaries (``*.part``, ``*.tmp``, ``*.filepart``, ``*~``) are never
read; with ``marker: .ok`` a file waits for its ``<name>.ok`` companion. A file is moved to
``done/`` (parsed) or ``failed/`` (quarantined) only in the ack, i.e. after its posts are
committed; after a crash the files still in the inbox are read again and their deterministic
event ids make the replay post nothing twice.

The ack moves *the file that was read*, not whatever carries its name by then: a partner may
re-send ``asn.edi`` while the first ``asn.edi`` is still waiting for its commit. The read
remembers the file's identity (device, inode, size, mtime, ctime and SHA-256 of the bytes); at
ack time a file that no longer matches is left in the inbox for the next scan, and the bytes
that were read are written to ``done/`` instead, so ``done/`` still holds every file handled.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from floorstream.adapters.supply.feed import SupplyAdapter, SupplyConfig
from floorstream.plugin import Adapter, Duration, Emitter, Registry, hookimpl

if TYPE_CHECKING:
    from floorstream.adapters.supply.handler import Received

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
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1,
                           description="bigger files are quarantined unparsed (their first "
                                       "max_bytes kept) and moved to failed/")

    def check_warnings(self) -> list[str]:
        """Static warnings for ``floorstream check``: ``run`` creates a missing inbox, so a
        typo in ``path`` would wait on a new empty folder while the partner's files pile up
        in the real one, with nothing to say so."""
        if Path(self.path).is_dir():
            return []
        return [f"path: the inbox {self.path!r} does not exist (yet); run creates it empty"]


class SupplyFolder(SupplyAdapter[FolderConfig]):
    name: ClassVar[str] = "supply.folder"

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        from floorstream.adapters.supply.handler import FeedHandler  # parsers load here

        config = self.config
        inbox = Path(config.path)
        done = Path(config.done) if config.done else inbox / "done"
        failed = Path(config.failed) if config.failed else inbox / "failed"
        for folder in (inbox, done, failed):
            folder.mkdir(parents=True, exist_ok=True)
        self.handler = FeedHandler(config, self.context.checkpoint, self.context.log,
                                   self.context.load_state,
                                   self.context.load_state_of)
        seen: dict[str, tuple[int, int, float]] = {}  # name → size, mtime_ns, stable since
        in_flight: set[str] = set()
        lock = threading.Lock()
        wanted = _name_filter(config.pattern, config.ignore)

        while not stop.is_set():
            now = time.monotonic()
            ready: list[tuple[int, str]] = []
            present: set[str] = set()
            with os.scandir(inbox) as entries:
                for entry in entries:
                    name = entry.name
                    if not wanted(name):
                        continue
                    try:
                        if not entry.is_file():
                            continue
                        with lock:
                            if name in in_flight:
                                present.add(name)
                                continue
                        stat = entry.stat()
                    except FileNotFoundError:
                        continue  # moved to done/ by a commit's ack since the listing
                    present.add(name)
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
            if not ready:  # idle: waiting ASNs are looked up again without a new file
                self.handler.recheck(emitter)
            names = [name for _mtime, name in ready]
            position = 0
            while position < len(names):
                # a backlog is read a few files at a time (at most _CHUNK files, _CHUNK_BYTES):
                # one store query for the stories of them all, then each file in order
                files: list[_File] = []
                size = 0
                while position < len(names) and len(files) < _CHUNK and size < _CHUNK_BYTES:
                    name = names[position]
                    position += 1
                    seen.pop(name, None)
                    file = self._read(inbox, name)
                    if file is not None:
                        files.append(file)
                        size += len(file.raw)
                fetched = 0
                for index, file in enumerate(files):
                    if stop.is_set():
                        return
                    if index >= fetched:  # the next files, up to _PREFETCH documents
                        fetched = self._prefetch(files, index)
                    while len(in_flight) >= config.max_in_flight and not stop.is_set():
                        stop.wait(0.01)  # the pipeline is behind: do not queue the whole folder
                    self._hand_over(emitter, inbox, file, done, failed, in_flight, lock)
            stop.wait(config.poll)

    def _read(self, inbox: Path, name: str) -> _File | None:
        """Read and parse one file; None when it went away or cannot be read (yet)."""
        config = self.config
        path = os.path.join(inbox, name)  # a str: a Path costs ~10 us per file here
        try:
            # a descriptor, not a file object: open, fstat, read, close (the buffered file
            # object added an fstat, an ioctl, an lseek and a read to each file)
            fd = os.open(path, _READ)
            try:
                stat = os.fstat(fd)
                raw = _read_up_to(fd, stat.st_size, config.max_bytes + 1)
                oversized = len(raw) > config.max_bytes
                if oversized:  # hash the rest without holding it: the move checks identity
                    digest = _sha256(fd, raw)
                    raw = raw[:config.max_bytes]
                else:
                    digest = hashlib.sha256(raw).hexdigest()
            finally:
                os.close(fd)
            # the stat from before the read: a write during or after it changes the ctime,
            # so the ack finds another file and leaves it for the next scan
            identity = _Identity.of(stat, digest)
        except FileNotFoundError:
            return None  # taken away between scan and read
        except OSError as exc:  # unreadable (permissions): leave it, say so, try again later
            self.context.log.error("supply_file_unreadable", file=name, error=str(exc))
            return None
        received = None if oversized else self.handler.prepare(raw, name, digest=digest)
        return _File(name, raw, digest, identity, received)

    def _prefetch(self, files: list[_File], start: int) -> int:
        """Read the stories of ``files[start:]`` in one query, as many files as hold
        :data:`_PREFETCH` documents (at least one file); returns where that stopped."""
        end, documents = start, 0
        while end < len(files) and (end == start or documents < _PREFETCH):
            received = files[end].received
            documents += len(received.parsed.documents) if received and received.parsed else 0
            end += 1
        self.handler.prefetch([f.received for f in files[start:end] if f.received is not None])
        return end

    def _hand_over(self, emitter: Emitter, inbox: Path, file: _File, done: Path, failed: Path,
                   in_flight: set[str], lock: threading.Lock) -> None:
        """Emit a read file's events (or quarantine it); the ack moves it after the commit."""
        config = self.config
        name, raw, identity = file.name, file.raw, file.identity
        path = os.path.join(inbox, name)
        with lock:
            in_flight.add(name)
        log = self.context.log

        def move(target: Path) -> None:
            try:
                if _move_if_same(path, identity, os.path.join(target, name)):
                    if config.marker:
                        companion = inbox / (name + config.marker)
                        if companion.exists():
                            _move(str(companion), str(target / companion.name))
                else:  # re-sent under the same name meanwhile: the new copy waits its turn
                    kept = _write_new(target / name, raw)
                    log.info("supply_file_replaced_before_commit", file=name, kept=kept.name)
            except OSError as exc:
                log.error("supply_file_move_failed", file=name, error=str(exc))
            with lock:
                in_flight.discard(name)

        if file.received is None:  # oversized
            self.handler.quarantine(
                emitter, raw, name, f"file of {identity.size} bytes exceeds max_bytes "
                f"{config.max_bytes}; not parsed (first {config.max_bytes} bytes kept, the "
                "whole file is in failed/)", ack=lambda: move(failed),
                position=f"file:{file.digest}",
                context={"truncated": True, "size": identity.size})
            return
        self.handler.finish(emitter, file.received, ack=lambda: move(done),
                            on_failure=lambda: move(failed))


#: files read and parsed at a time; their stories are read in one query per
#: ``_PREFETCH`` documents (far fewer than a source's ``remember``: the cache must hold them)
_CHUNK = 32
_CHUNK_BYTES = 8 * 1024 * 1024
_PREFETCH = 256


@dataclass(frozen=True, slots=True)
class _File:
    name: str
    raw: bytes
    digest: str
    identity: _Identity
    received: Received | None  # None: over max_bytes, not parsed


@dataclass(frozen=True, slots=True)
class _Identity:
    """What makes a file *this* file: a re-sent copy differs in inode, times or bytes."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    sha256: str

    @classmethod
    def of(cls, stat: os.stat_result, sha256: str) -> _Identity:
        return cls(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
                   sha256)

    def same_stat(self, stat: os.stat_result) -> bool:
        return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns) == (
            self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)


def _name_filter(pattern: str, ignore: list[str]) -> Callable[[str], bool]:
    """Whether a file name is read: it matches ``pattern`` and none of ``ignore``. The globs
    are compiled once into two regular expressions (``fnmatchcase`` per glob per name per
    scan cost ~7 calls a file)."""
    match = re.compile(fnmatch.translate(pattern)).match
    if not ignore:
        return lambda name: match(name) is not None
    skip = re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob in ignore)).match
    return lambda name: match(name) is not None and skip(name) is None


def _move_if_same(path: str, identity: _Identity, target: str) -> bool:
    """Move ``path`` to ``target`` (unique name) if it is still the file read; False if not.

    Checked twice: before the move (stat and bytes), and after it (inode), in case a sender
    renamed a new copy in during the microseconds between check and move; then the new copy is
    put back into the inbox (under a twin name if its own is taken again) to be read.
    """
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return False
    try:
        if not identity.same_stat(os.fstat(fd)):
            return False
        # a file of the size read is read whole in one call (one more byte asked: a file that
        # grew differs); a big one in blocks (the 1 MiB block buffer was mapped and unmapped
        # for every 600-byte ASN)
        if identity.size < _BLOCK:
            digest = hashlib.sha256(_read_up_to(fd, identity.size, identity.size + 1))
            if digest.hexdigest() != identity.sha256:
                return False
        elif _sha256(fd) != identity.sha256:
            return False
    finally:
        os.close(fd)
    moved = _move(path, target)
    if os.stat(moved).st_ino == identity.ino:
        return True
    while True:  # never over a third copy that arrived meanwhile: then under a twin name
        try:
            os.link(moved, _free(path))
            break
        except FileExistsError:
            continue
    os.unlink(moved)
    return False


def _read_up_to(fd: int, size: int, limit: int) -> bytes:
    """At most ``limit`` bytes of an open file that ``fstat`` said has ``size``. ``read(limit)``
    with a 20 MiB limit allocates 20 MiB for a 600-byte ASN (~15 us a file): ask for the size
    the file has and one byte more (to see it grew), which is one ``read`` for a file that
    kept its size; a short read or a file that grew is read on to its end or ``limit``."""
    raw = os.read(fd, min(size + 1, limit))
    if len(raw) == size or len(raw) >= limit:
        return raw
    parts, total = [raw], len(raw)
    while total < limit:
        block = os.read(fd, min(limit - total, _BLOCK))
        if not block:
            break
        parts.append(block)
        total += len(block)
    return b"".join(parts)


def _sha256(fd: int, head: bytes = b"") -> str:
    """SHA-256 of ``head`` and the rest of the open file ``fd``, read in blocks (a file over
    max_bytes may be far bigger than memory should hold)."""
    digest = hashlib.sha256(head)
    while block := os.read(fd, _BLOCK):
        digest.update(block)
    return digest.hexdigest()


#: how files are opened for reading (O_BINARY: Windows' text mode would change the bytes)
_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)
_BLOCK = 1 << 20


def _move(source: str, target: str) -> str:
    """Move without overwriting: a re-sent file with the same name gets a numbered twin."""
    candidate = _free(target)
    os.replace(source, candidate)
    return candidate


def _write_new(target: Path, raw: bytes) -> Path:
    """Write ``raw`` under a free variant of ``target`` (exclusive create: never overwrite)."""
    while True:
        candidate = Path(_free(str(target)))
        try:
            with open(candidate, "xb") as handle:
                handle.write(raw)
            return candidate
        except FileExistsError:
            continue


def _free(target: str) -> str:
    """``target``, or ``target.1``, ``target.2``… whichever does not exist yet (str paths:
    this runs once per file on the pipeline thread, where a Path costs more than the stat)."""
    candidate, number = target, 1
    while os.path.lexists(candidate):
        candidate = f"{target}.{number}"
        number += 1
    return candidate


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    registry.add(SupplyFolder)
