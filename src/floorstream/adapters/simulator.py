"""``simulator``: plays a few machines' telemetry, for the demo and for trying routes offline.

Deterministic for a given seed: the same config always plays the same story (spindle heating
past its limit, a stop, a fault), which makes the demo's feed stable and its posts replay-safe.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field

from floorstream.model import Change
from floorstream.plugin import Adapter, Duration, Emitter, Registry, SourceConfig, hookimpl


class SimulatorConfig(SourceConfig):
    machines: dict[str, str] = Field(
        default_factory=lambda: {"press-07": "pressing", "press-08": "pressing",
                                 "weld-02": "welding", "oven-2": "paint"},
        description="machine id → area")
    interval: Duration = Field(default=0.05, description="time between two readings")
    readings: int | None = Field(default=None, description="stop after this many (per machine)")
    seed: int = 7
    start: datetime = Field(default_factory=lambda: datetime(2026, 11, 2, 6, 0, tzinfo=UTC),
                            description="simulated clock start")
    step: Duration = Field(default=5.0, description="simulated seconds between readings")


class Simulator(Adapter[SimulatorConfig]):
    name: ClassVar[str] = "simulator"

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        config = self.config
        rng = random.Random(config.seed)
        done = int(self.context.checkpoint or 0)  # readings already committed per machine
        temps = {m: 70.0 + rng.random() * 5 for m in config.machines}
        states = dict.fromkeys(config.machines, "RUNNING")
        tick = 0
        while not stop.is_set() and (config.readings is None or tick < config.readings):
            when = config.start + timedelta(seconds=tick * config.step)
            last = len(config.machines) - 1
            for index, (machine, area) in enumerate(config.machines.items()):
                temps[machine], states[machine] = _next(rng, tick, temps[machine],
                                                        states[machine])
                if tick < done:
                    continue  # replaying the deterministic story up to the checkpoint
                change = Change(
                    source=config.name, subject=machine, kind="telemetry",
                    position=f"{tick}:{machine}", occurred_at=when,
                    data={"state": states[machine], "spindle_temp": round(temps[machine], 1),
                          "count": tick * 3},
                    attrs={"area": area, **config.attrs})
                # the tick counts as done only with its last machine, so a stop mid-tick
                # replays the whole tick (same positions, so nothing is posted twice)
                emitter.emit(change, checkpoint=str(tick + 1) if index == last else None)
            tick += 1
            if tick > done:
                stop.wait(config.interval)


def _next(rng: random.Random, tick: int, temp: float, state: str) -> tuple[float, str]:
    if state == "RUNNING":
        temp += rng.uniform(-0.6, 0.9)
        if rng.random() < 0.015:
            state = "STOPPED" if rng.random() < 0.7 else "FAULT"
    else:
        temp -= rng.uniform(0.5, 1.5)
        if rng.random() < 0.12:
            state = "RUNNING"
    return max(20.0, min(temp, 99.0)), state


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    registry.add(Simulator)
