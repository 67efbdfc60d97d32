"""What a source itself says about its fields: the unit of their values and what people call
them. A Sparkplug B birth carries both (the ``engUnit`` and ``displayName`` properties of a
metric), so a threshold on ``Process/Temperature`` reads "Temperature 92 °C, above the 85 °C
limit" without a ``unit:`` in the config.

The adapter that knows describes a subject's fields when it learns them (a birth, a restart
that loads its session) and replaces the description as a whole when they change (a rebirth
with another unit: used from then on). A detector asks :func:`field_info` when it words an
event, never per reading. What the config names wins over what a source describes.

Kept per process, by source name: the description is display, never part of an event's id,
and the adapter that gives it persists what it needs to give it again after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from threading import Lock

__all__ = ["FieldInfo", "describe", "field_info", "forget"]


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """``unit``: of the field's values as people write it (``°C``), "" when not said;
    ``label``: what people call the field (``Temperature``), None when not said."""

    unit: str = ""
    label: str | None = None


#: source → subject → (field → info, whether other fields are paths)
_described: dict[str, dict[str, tuple[dict[str, FieldInfo], bool]]] = {}
_lock = Lock()


def describe(source: str, subject: str, fields: dict[str, FieldInfo],
             paths: bool = False) -> None:
    """The fields of ``subject`` as ``source`` describes them now (the previous description
    of the subject is replaced, not merged: a rebirth that drops a unit drops it here).
    ``paths``: the subject's other fields are paths (``Process/Temperature``), called by
    their last element (``Temperature``), so a source need not list the fields it says
    nothing else about."""
    with _lock:
        _described.setdefault(source, {})[subject] = (dict(fields), paths)


def field_info(source: str, subject: str, field: str) -> FieldInfo | None:
    """How ``source`` described ``field`` of ``subject``; None when it did not."""
    subjects = _described.get(source)
    if subjects is None:
        return None
    found = subjects.get(subject)
    if found is None:
        return None
    info = found[0].get(field)
    if info is None and found[1] and "/" in field:
        return FieldInfo("", field.rsplit("/", 1)[-1].strip() or field)
    return info


def forget(source: str) -> None:
    """Drop what ``source`` described (its adapter starts anew, or a test ends)."""
    with _lock:
        _described.pop(source, None)
