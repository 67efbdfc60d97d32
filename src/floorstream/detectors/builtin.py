"""floorstream's own detectors, registered through the same hook as any third-party one.

By reference (``add_lazy``): a detector's module is imported when a config uses it, so a
daemon without ``silence`` or ``field_change`` does not load them (issue 16: RSS).
"""

from __future__ import annotations

from typing import Any

from floorstream.plugin import Registry, hookimpl

#: detector name → where it is
DETECTORS = {
    "state_change": "floorstream.detectors.state_change:StateChange",
    "threshold": "floorstream.detectors.threshold:Threshold",
    "field_change": "floorstream.detectors.field_change:FieldChange",
    "silence": "floorstream.detectors.silence:Silence",
}


@hookimpl
def register_detectors(registry: Registry[Any]) -> None:
    for name, target in DETECTORS.items():
        registry.add_lazy(name, target)
