"""The mass-update summary counts what each row really changed, against the detector state.

Driven through ``field_change`` directly: rows of one run arrive (as baselines) with the
run's marker, then the ``row.mass_update`` change asks for the summary. A fresh detector (a
restart) that is fed the same run again against the states already written counts the same.
"""

from __future__ import annotations

import json
from typing import Any

from floorstream.detectors.field_change import FieldChange, FieldChangeOptions
from floorstream.model import Change, Event
from floorstream.plugin.detector import DetectorState
from floorstream.testing.detectors import phrase

OPTIONS = FieldChangeOptions(fields=["state", "product_id"], labels={"state": "status"})


def _row(i: int, state: str, product: str = "M8 bolt") -> Change:
    return Change(source="orders", subject=f"WH/MO/{i:05d}", kind="row.updated",
                  position=f"production_order:{i}:t9", attrs={"mass_run": "run-1"},
                  data={"id": i, "state": state, "product_id": product})


def _feed(detector: FieldChange, states: dict[str, DetectorState], rows: list[Change]
          ) -> list[Event]:
    for row in rows:
        state = states.setdefault(row.subject, DetectorState())
        assert detector.on_change(row, state) == []
        states[row.subject] = DetectorState(json.loads(json.dumps(state.data)))  # as stored
    summary = Change(source="orders", subject="production_order", kind="row.mass_update",
                     position="production_order:mass:run-1",
                     data={"run": "run-1", "table": "production_order", "count": len(rows),
                           "kinds": {"row.upserted": len(rows)}})
    return detector.on_change(summary, DetectorState())


def _changes(event: Event) -> list[tuple[Any, ...]]:
    return [(c["field"], c["before"], c["after"], c["count"]) for c in event.fields["changes"]]


def test_only_changed_columns_with_before_and_after_counts_and_replay_counts_the_same() -> None:
    states: dict[str, DetectorState] = {}
    baseline = FieldChange(OPTIONS, "orders")
    for i in range(1, 11):  # last seen values: 6 Confirmed, 4 Draft, all the same product
        row = _row(i, "Confirmed" if i <= 6 else "Draft")
        row = row.model_copy(update={"attrs": {}, "position": f"production_order:{i}:t1"})
        baseline.on_change(row, states.setdefault(row.subject, DetectorState()))
    # one statement: everything → Done; rows 11 and 12 were never seen (before unknown)
    rows = [_row(i, "Done") for i in range(1, 13)]
    (event,) = _feed(FieldChange(OPTIONS, "orders"), states, rows)
    expected = [("state", "Confirmed", "Done", 6), ("state", "Draft", "Done", 4),
                ("state", None, "Done", 2), ("product_id", None, "M8 bolt", 2)]
    assert event.type == "record.mass_update"
    assert _changes(event) == expected
    assert phrase(event) == ("production_order: 12 rows changed at once (status "
                                      "Confirmed → Done ×6; status Draft → Done ×4)")
    # a restart before the summary was committed: the run comes again, states already moved
    (again,) = _feed(FieldChange(OPTIONS, "orders"), states, rows)
    assert _changes(again) == expected
    assert again.id == event.id
    # the next single edit sees the mass update's values as its before
    edit = Change(source="orders", subject="WH/MO/00003", kind="row.upserted",
                  position="production_order:3:t10",
                  data={"id": 3, "state": "Cancelled", "product_id": "M8 bolt"})
    (single,) = FieldChange(OPTIONS, "orders").on_change(edit, states["WH/MO/00003"])
    assert phrase(single) == "WH/MO/00003: status Done → Cancelled"
