"""The example plugin's own tests: floorstream's conformance suite plus its specifics."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from floorstream_example_plugin import csv_tail
from floorstream_example_plugin.csv_tail import CsvTail

from floorstream.plugin import AdapterContext
from floorstream.plugins import build_plugins
from floorstream.testing import AdapterConformance, RecordingEmitter

FILE = Path(tempfile.mkdtemp(prefix="csvtail-")) / "bench.csv"
ROWS = "machine,temp,state\n" + "".join(
    f"press-0{i % 3},{70 + i},{'RUNNING' if i % 4 else 'STOPPED'}\n" for i in range(8))


class TestCsvTailConformance(AdapterConformance):
    adapter = CsvTail
    config = {"name": "bench", "adapter": "csv.tail", "path": str(FILE), "subject": "machine",
              "interval": 0.02}
    min_changes = 8
    timeout = 5.0

    def prepare_source(self) -> None:
        FILE.write_text(ROWS, encoding="utf-8")

    def test_adapter_is_registered_through_the_hook(self) -> None:
        # not installed in this environment: registered the way an entry point would be
        plugins = build_plugins(extra=[csv_tail], load_entry_points=False)
        assert plugins.adapters.get("csv.tail") is CsvTail


def _follow(path: Path, checkpoint: str | None, until: int) -> RecordingEmitter:
    config = CsvTail.config_model.model_validate(
        {"name": "bench", "adapter": "csv.tail", "path": str(path), "subject": "machine",
         "interval": 0.02})
    emitter = RecordingEmitter()
    adapter = CsvTail(config, AdapterContext("bench", checkpoint,
                                             build_plugins(load_entry_points=False).decoders))
    thread = threading.Thread(target=adapter.run, args=(emitter, emitter.stop))
    thread.start()
    deadline = time.monotonic() + 5
    while len(emitter.changes) + len(emitter.quarantined) < until and time.monotonic() < deadline:
        time.sleep(0.01)
    emitter.stop.set()
    thread.join(5)
    return emitter


def test_rows_become_typed_changes_and_bad_rows_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"machine,temp,state\npress-07,91.5,RUNNING\npress-07,oops\n"
                     b"press-08,70,STOPPED\npress-09,7")  # last row still being written
    emitter = _follow(path, None, 3)
    assert [c.data for c in emitter.changes] == [
        {"machine": "press-07", "temp": 91.5, "state": "RUNNING"},
        {"machine": "press-08", "temp": 70, "state": "STOPPED"}]
    assert [c.subject for c in emitter.changes] == ["press-07", "press-08"]
    (bad,) = emitter.quarantined
    assert bad.raw == b"press-07,oops\n" and "2 cells" in bad.error
    assert emitter.last_checkpoint == str(len(path.read_bytes()) - len(b"press-09,7"))


def test_appended_rows_are_picked_up_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("machine,temp\npress-07,1\n", encoding="utf-8")
    first = _follow(path, None, 1)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("press-07,2\npress-07,3\n")
    second = _follow(path, first.last_checkpoint, 2)
    assert [c.data["temp"] for c in second.changes] == [2, 3]
    assert {c.position for c in first.changes}.isdisjoint(c.position for c in second.changes)
