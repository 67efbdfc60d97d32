"""The plugin test kit, run on the builtin simulator adapter as a plugin author would."""

from __future__ import annotations

import importlib

from floorstream.adapters.simulator import Simulator
from floorstream.plugins import build_plugins
from floorstream.testing import AdapterConformance, RecordingEmitter
from floorstream.testing.detectors import DetectorConformance

#: the test modules that run the kits on the builtins
KIT_MODULES = ["test_testing_kit", "erp.test_conformance", "supply.test_conformance",
               "test_mqtt_conformance", "test_detectors_state_change", "test_detectors_threshold",
               "test_detectors_field_change", "test_detectors_silence"]


class TestSimulatorConformance(AdapterConformance):
    adapter = Simulator
    config = {"name": "sim", "adapter": "simulator", "interval": 0.001, "readings": 6}
    min_changes = 24  # 6 readings x 4 machines


def test_recording_emitter_keeps_the_checkpoint_of_the_last_acknowledged_change() -> None:
    emitter = RecordingEmitter(auto_ack=False)
    acked: list[int] = []
    emitter.quarantine(b"\xff", "not UTF-8", position="1", ack=lambda: acked.append(1),
                       checkpoint="1")
    assert emitter.last_checkpoint == "1"
    assert acked == [] and len(emitter.pending_acks) == 1
    emitter.pending_acks[0]()
    assert acked == [1]
    assert emitter.quarantined[0].error == "not UTF-8"


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    return found.union(*(_subclasses(sub) for sub in found))


def test_every_builtin_adapter_and_detector_runs_its_kit() -> None:
    for name in KIT_MODULES:
        importlib.import_module(name)
    plugins = build_plugins(load_entry_points=False)
    checked = {c.adapter.name for c in _subclasses(AdapterConformance) if hasattr(c, "adapter")}
    assert {e.name for e in plugins.adapters} <= checked
    checked = {c.detector.name for c in _subclasses(DetectorConformance)
               if hasattr(c, "detector")}
    assert {e.name for e in plugins.detectors} <= checked
