"""The plugin test kit, run on the builtin simulator adapter as a plugin author would."""

from __future__ import annotations

from floorstream.adapters.simulator import Simulator
from floorstream.testing import AdapterConformance, RecordingEmitter


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
