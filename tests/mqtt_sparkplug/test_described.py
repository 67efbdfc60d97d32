"""What a birth says about its metrics is what the posts say: the ``engUnit`` property is the
unit of the values (normalised: ``degC`` → ``°C``), the ``displayName`` property or else the
last element of the path is the label, a unit changed on a rebirth is used from then on, the
config's unit wins (logged once when it differs), and all of it survives a restart."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from floorstream.adapters.mqtt.engunits import metric_label, normalise_unit

from .conftest import Session

pytestmark = pytest.mark.mqtt

DETECT = """      - state_change: {field: State}
      - threshold: {field: Process/Temperature, above: 85, clear_below: 80}
      - threshold: {field: Inputs/Speed, above: 1000}
      - threshold: {field: Outputs/Temp, above: 50}
      - threshold: {field: Process/Pressure, above: 6, unit: bar}
      - threshold: {field: Process/Flow, above: 10}"""

BIRTH = {"State": "RUNNING", "Process/Temperature": 72.5, "Inputs/Speed": 900.0,
         "Inputs/Temp": 20.0, "Outputs/Temp": 30.0, "Process/Pressure": 5.0,
         "Process/Flow": 1.0}
UNITS = {"Process/Temperature": "degC", "Inputs/Speed": "RPM", "Outputs/Temp": "DEG C",
         "Process/Pressure": "psi", "Process/Flow": "gal/min"}
LABELS = {"Inputs/Speed": "Spindle speed"}


def test_the_units_and_names_of_a_birth_are_the_posts(
        sparkplug: Callable[..., Session], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="floorstream.plugin.described")
    sp = sparkplug("reorder_timeout: 0.3", detect=DETECT)
    node = sp.node("Line3-Edge")
    sp.publisher.publish_all([
        node.nbirth(),
        node.dbirth("Filler3", BIRTH,
                    units=UNITS, labels=LABELS),
        node.ddata("Filler3", {"Process/Temperature": 92.0}),
        node.ddata("Filler3", {"Inputs/Speed": 1200.0}),
        node.ddata("Filler3", {"Outputs/Temp": 55.0}),
        node.ddata("Filler3", {"Process/Pressure": 7.0}),
        node.ddata("Filler3", {"Process/Pressure": 8.0}),
        node.ddata("Filler3", {"Process/Flow": 12.0})])
    sp.sentinel()
    assert sp.summaries() == [
        "Filler3: Temperature 92 °C, above the 85 °C limit",
        "Filler3: Spindle speed 1200 rpm, above the 1000 rpm limit",  # displayName
        "Filler3: Outputs/Temp 55 °C, above the 50 °C limit",  # Inputs/Temp too: the path
        "Filler3: Pressure 7 bar, above the 6 bar limit",  # the config's unit wins
        "Filler3: Pressure up to 8 bar (was 7 bar), still above the 6 bar limit after 1 s",
        "Filler3: Flow 12 gal/min, above the 10 gal/min limit",  # unknown: as given
    ]
    warned = [r.getMessage() for r in caplog.records if "differs" in r.getMessage()]  # once
    assert len(warned) == 1 and "'bar'" in warned[0] and "'psi'" in warned[0]

    sp.restart()  # the births' descriptions come back from the checkpoint
    sp.publisher.publish_all([node.ddata("Filler3", {"Inputs/Speed": 100.0}),
                              node.ddata("Filler3", {"Inputs/Speed": 1500.0})])
    sp.sentinel()
    assert sp.summaries()[6:] == [
        "Filler3: Spindle speed back to 100 rpm, below 1000 rpm (peak 1200 rpm, 5 s)",
        "Filler3: Spindle speed 1500 rpm, above the 1000 rpm limit"]

    # a rebirth in another unit: used from then on (the clear is in °F, the peak it had
    # before in °C: never converted, never relabelled)
    sp.publisher.publish_all([
        node.dbirth("Filler3", {**BIRTH, "Process/Temperature": 70.0},
                    units={**UNITS, "Process/Temperature": "degF"}, labels=LABELS)])
    sp.sentinel()
    assert sp.summaries()[8:] == [
        "Filler3: Temperature back to 70 °F, below 80 °F (peak 92 °C, 8 s)",
        "Filler3: Spindle speed back to 900 rpm, below 1000 rpm (peak 1500 rpm, 1 s)",
        "Filler3: Outputs/Temp back to 30 °C, below 50 °C (peak 55 °C, 6 s)",
        "Filler3: Pressure back to 5 bar, below 6 bar (peak 8 bar, 5 s)",
        "Filler3: Flow back to 1 gal/min, below 10 gal/min (peak 12 gal/min, 3 s)"]
    assert not sp.store.quarantined(source="sp")


def test_unit_spellings_and_labels() -> None:
    assert [normalise_unit(u) for u in ("degC", "DEG C", "°C", "C", "deg_c", "degF", "%",
                                        "bar", "PSI", "rpm", "mm/s", " kW ", "furlongs", "")
            ] == ["°C", "°C", "°C", "°C", "°C", "°F", "%", "bar", "psi", "rpm", "mm/s", "kW",
                  "furlongs", ""]
    assert metric_label("Process/Temperature") == "Temperature"
    assert metric_label("Inputs/Spindle Temp", "Spindle temperature") == "Spindle temperature"
    assert metric_label("Flat", "  ") == "Flat"


SHORT = """      - state_change: {field: State}
      - threshold: {field: Temperature, above: 85}
      - threshold: {field: Temp, above: 50}
      - threshold: {field: Speed, above: 1000}"""


@pytest.mark.parametrize("everything", [False, True], ids=["interest", "every-field"])
def test_a_config_may_name_a_metric_by_the_last_element_of_its_path(
        sparkplug: Callable[..., Session], everything: bool) -> None:
    """``field: Temperature`` reads ``Process/Temperature`` (by alias, the fast path, and by
    name, the general one); ``Temp`` ends two paths and reads neither. The same when a
    detector of the source reads every field (``field_change`` declares none)."""
    detect = SHORT + ("\n      - field_change: {fields: [Counter]}" if everything else "")
    sp = sparkplug("reorder_timeout: 0.3", detect=detect)
    node = sp.node("Line3-Edge")
    sp.publisher.publish_all([
        node.nbirth(),
        node.dbirth("Filler3", BIRTH, units={"Process/Temperature": "degC"}),
        node.ddata("Filler3", {"Process/Temperature": 92.0}),
        node.ddata("Filler3", {"Inputs/Temp": 60.0, "Outputs/Temp": 60.0}),
        node.ddata("Filler3", {"Inputs/Speed": 1200.0}, named=True)])
    sp.sentinel()
    assert sp.summaries() == [
        "Filler3: Temperature 92 °C, above the 85 °C limit",
        "Filler3: Speed 1200, above the 1000 limit"]
