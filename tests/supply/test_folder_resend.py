"""``supply.folder``: a file re-sent under the same name before the first copy is committed.

The pipeline is replaced by a recording emitter whose acks are held back, so the test decides
when "the commit" happens; the folder, files and moves are real.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from floorstream.adapters.supply.folder import FolderConfig, SupplyFolder
from floorstream.plugin.adapter import AdapterContext
from floorstream.plugins import build_plugins
from floorstream.testing.doubles import RecordingEmitter
from support import sentinel, wait_for

from .make_214 import x12_214

FIRST = x12_214(11, [("AF", "NS", "20261120", "0800")])
SECOND = x12_214(12, [("D1", "NS", "20261121", "0900")])  # same size, other interchange
#: another file dropped behind the re-sent copy: once it was read, a later scan came by
SENTINEL = x12_214(13, [("AF", "NS", "20261122", "1000")], pro="SENTINEL")


def _markers(emitter: RecordingEmitter) -> list[str]:
    return [f"mark:{i}" for i in range(emitter.marks)]


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, RecordingEmitter]]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "status.edi").write_bytes(FIRST)
    config = FolderConfig(name="supply", adapter="supply.folder", path=str(inbox), settle=0,
                          poll=0.02)
    context = AdapterContext("supply", None, build_plugins(load_entry_points=False).decoders)
    emitter = RecordingEmitter(auto_ack=False)
    adapter = SupplyFolder(config, context)
    thread = threading.Thread(target=adapter.run, args=(emitter, emitter.stop), daemon=True)
    thread.start()
    try:
        yield inbox, emitter
    finally:
        emitter.stop.set()
        thread.join(5)
        adapter.close()


def _drop(inbox: Path, name: str, raw: bytes) -> None:
    """Write beside the inbox and rename in, as a careful uploader does."""
    (inbox.parent / "upload.tmp").write_bytes(raw)
    os.replace(inbox.parent / "upload.tmp", inbox / name)


def _commit(emitter: RecordingEmitter) -> None:
    acks, emitter.pending_acks[:] = list(emitter.pending_acks), []
    for ack in acks:
        ack()


@pytest.mark.parametrize("how", ["rename", "in_place_same_mtime"])
def test_a_copy_resent_before_commit_stays_for_the_next_scan(
        folder: tuple[Path, RecordingEmitter], how: str) -> None:
    inbox, emitter = folder
    path = inbox / "status.edi"
    wait_for(lambda: len(_markers(emitter)) == 1, timeout=10)
    assert len(FIRST) == len(SECOND)
    if how == "rename":  # an uploader writing beside the inbox and renaming in
        (inbox.parent / "upload.tmp").write_bytes(SECOND)
        os.replace(inbox.parent / "upload.tmp", path)
    else:  # rewritten in place with the old mtime put back (rsync --inplace -t)
        stat = path.stat()
        path.write_bytes(SECOND)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # a scan after the resend reads the sentinel file but not the name still in flight
    sentinel(lambda: _drop(inbox, "sentinel.edi", SENTINEL),
             lambda: len(_markers(emitter)) == 2, timeout=10)
    assert [e.subject for e in emitter.events if "SENTINEL" not in e.subject] == [
        emitter.events[0].subject]  # the first copy only
    _commit(emitter)  # the first copy's posts are committed: its ack runs now
    assert (inbox / "done" / "status.edi").read_bytes() == FIRST  # what was read is archived
    assert path.exists()  # the new copy was not moved away unread
    wait_for(lambda: len(_markers(emitter)) == 3, timeout=10)
    _commit(emitter)
    assert not path.exists()
    assert (inbox / "done" / "status.edi.1").read_bytes() == SECOND
    kinds = [e.type for e in emitter.events if "SENTINEL" not in e.subject]
    assert kinds == ["shipment.status_changed", "shipment.delivered"]  # both were read


def test_an_identical_copy_resent_before_commit_is_read_again_and_archived(
        folder: tuple[Path, RecordingEmitter]) -> None:
    """Same bytes, new file: read again (the source's memory knows the interchange already, so
    nothing new is emitted), both archived."""
    inbox, emitter = folder
    wait_for(lambda: len(_markers(emitter)) == 1, timeout=10)
    (inbox.parent / "upload.tmp").write_bytes(FIRST)
    os.replace(inbox.parent / "upload.tmp", inbox / "status.edi")
    _commit(emitter)
    wait_for(lambda: len(_markers(emitter)) == 2, timeout=10)
    _commit(emitter)
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["status.edi", "status.edi.1"]
    events = list(emitter.events)
    assert len(events) == 1  # the copy's events would be the same ones: none are re-emitted


def test_an_unchanged_file_is_moved_as_before(folder: tuple[Path, RecordingEmitter]) -> None:
    inbox, emitter = folder
    wait_for(lambda: len(_markers(emitter)) == 1, timeout=10)
    _commit(emitter)
    assert not (inbox / "status.edi").exists()
    assert [p.name for p in (inbox / "done").iterdir()] == ["status.edi"]
