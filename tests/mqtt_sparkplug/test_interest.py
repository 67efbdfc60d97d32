"""A Sparkplug source reads only the metrics its detectors name, end to end (Mosquitto, the
daemon): the interest reaches the session, a message with nothing of interest posts nothing
yet keeps the device heard of, and a watched metric's change after it still posts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from floorstream.plugin import Interest

from .conftest import Session

pytestmark = pytest.mark.mqtt

DETECT = """      - state_change: {field: State, reason: Reason}
      - threshold: {field: Temperature, above: 85, clear_below: 80, unit: "°C"}
      - silence: {after: 60s}"""


def test_only_the_watched_metrics_are_read(sparkplug: Callable[..., Session]) -> None:
    session = sparkplug(options="reorder_timeout: 0s", detect=DETECT)
    adapter: Any = session.daemon.daemon._adapters["sp"]
    host = adapter.sparkplug
    assert host.sessions.fields == {"State", "Reason", "Temperature"}
    assert host.presence_lag == 1.0  # silence after 60 s: min(1 s, 15 s)
    node = session.node("Gw1")
    messages = [node.nbirth(), node.dbirth("Press7", {
        "State": "RUNNING", "Reason": "", "Temperature": 70.0, "Speed": 1200.0,
        "Count": 1})]
    messages += [node.ddata("Press7", {"Speed": 1200.0 + k, "Count": k}) for k in range(20)]
    messages += [node.ddata("Press7", {"State": "STOPPED", "Reason": "Jam at infeed",
                                       "Speed": 0.0}),
                 node.ddata("Press7", {"Temperature": 91.0, "Count": 99})]
    session.publisher.publish_all(messages)
    session.sentinel()
    assert session.summaries() == [
        "Press7 stopped (was running) — Jam at infeed",
        "Press7: Temperature 91 °C, above the 85 °C limit"]
    state = session.daemon.daemon.processor.sources["sp"].states[("Press7", "silence")].data
    assert state["silent"] is False and state["position"].endswith(str(node.clock))
    assert session.daemon.daemon._interest(session.daemon.config.sources[0]) == Interest(
        frozenset({"State", "Reason", "Temperature"}), 1.0)
