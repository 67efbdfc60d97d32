"""One MTConnect observation → one floorstream :class:`Change`, the same way for both sources.

The value goes under the data item's name (its id when it has none), so the existing
detectors apply unchanged: ``threshold: {field: Sload, above: 90}``, ``silence``,
``state_change: {field: avail, normal: [AVAILABLE]}``. Samples become numbers when they read as
one. ``UNAVAILABLE`` is the agent saying it does not know: the field is left out (a detector sees
"no reading", never a value) and ``mtconnect.unavailable`` says so. What the MTConnect
detectors need (the item's type, its component, a condition's level and native code) rides in
``data["mtconnect"]``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from floorstream.model import Change
from floorstream_mtconnect.documents import DataItem, Observation, parse_time

__all__ = ["META", "UNAVAILABLE", "item_type", "to_change"]

#: the key of the MTConnect details in a change's data
META = "mtconnect"
UNAVAILABLE = "UNAVAILABLE"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def item_type(element: str) -> str:
    """``PartCount`` → ``PART_COUNT``: the type a Streams element names, without a probe."""
    return _CAMEL.sub("_", element).upper()


def _typed(value: str, category: str, kind: str) -> Any:
    if category == "SAMPLE":
        try:
            return float(value)
        except ValueError:
            return value  # a 3D position, a time series: kept as written
    if category == "EVENT" and kind.endswith("COUNT"):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def to_change(source: str, obs: Observation, position: str, *, item: DataItem | None,
              attrs: dict[str, str], observed_at: datetime,
              active: list[str] | None = None, active_at: str = "") -> Change:
    """The change for ``obs``; ``item`` is its data item from the device model, if known;
    ``active``: for a condition in a ``/current``, the native codes active on its item
    (``active_at``: that document's ``instanceId:nextSequence``, which tells two reads
    apart that repeat the same observation)."""
    kind = item.type if item is not None else item_type(obs.element)
    category = item.category if item is not None else obs.category
    if obs.category == "CONDITION":
        category = "CONDITION"
    key = item.key if item is not None else (obs.name or obs.item_id)
    meta: dict[str, Any] = {"item": obs.item_id, "key": key, "type": kind,
                            "category": category, "component": obs.component or
                            (item.component if item is not None else ""),
                            "component_id": obs.component_id or
                            (item.component_id if item is not None else "")}
    if item is not None and item.units:
        meta["units"] = item.units
    if item is not None and item.sub_type:
        meta["sub_type"] = item.sub_type
    if obs.sequence:
        meta["sequence"] = obs.sequence
    data: dict[str, Any] = {}
    if category == "CONDITION":
        meta.update(level=obs.value, native_code=obs.native_code,
                    native_severity=obs.native_severity, qualifier=obs.qualifier,
                    text=obs.text, condition_type=obs.condition_type)
        if active is not None:
            meta["active"], meta["active_at"] = sorted(active), active_at
        data[key] = obs.value
    elif obs.entries is not None:  # a data set or table: key → value (cells as written)
        data[key] = {k: _typed(v, category, kind) for k, v in obs.entries}
    elif obs.value == UNAVAILABLE and kind != "AVAILABILITY":
        meta["unavailable"] = True  # (for AVAILABILITY itself it is the value people want)
    else:
        data[key] = _typed(obs.value, category, kind)
    data[META] = meta
    return Change(source=source, subject=obs.device, kind=f"mtconnect.{category.lower()}",
                  position=position, occurred_at=parse_time(obs.timestamp),
                  observed_at=observed_at, data=data, attrs=attrs)
