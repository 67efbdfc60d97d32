"""floorstream's own detectors, registered through the same hook as any third-party one."""

from __future__ import annotations

from typing import Any

from floorstream.detectors.field_change import FieldChange
from floorstream.detectors.silence import Silence
from floorstream.detectors.state_change import StateChange
from floorstream.detectors.threshold import Threshold
from floorstream.plugin import Registry, hookimpl


@hookimpl
def register_detectors(registry: Registry[Any]) -> None:
    for detector in (StateChange, Threshold, FieldChange, Silence):
        registry.add(detector)
