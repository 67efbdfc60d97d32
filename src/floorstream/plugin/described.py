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

import logging
from dataclasses import dataclass
from threading import Lock

__all__ = ["FieldInfo", "describe", "expect_unit", "field_info", "forget"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """``unit``: of the field's values as people write it (``°C``), "" when not said;
    ``label``: what people call the field (``Temperature``), None when not said."""

    unit: str = ""
    label: str | None = None


#: source → subject → (field → info, whether other fields are paths)
_described: dict[str, dict[str, tuple[dict[str, FieldInfo], bool]]] = {}
_lock = Lock()
#: source → field → the unit a detector's config names (it wins over the source's)
_expected: dict[str, dict[str, str]] = {}
#: (source, subject, field, unit) whose disagreement with the config was logged
_warned: set[tuple[str, str, str, str]] = set()


def expect_unit(source: str, field: str, unit: str) -> None:
    """A detector of ``source`` shows ``field`` in ``unit`` (its config says so): when a
    source describes the field in another unit, :func:`describe` logs it, once per subject
    and unit. The config's unit is shown; nothing is converted."""
    if unit:
        with _lock:
            _expected.setdefault(source, {})[field] = unit


def describe(source: str, subject: str, fields: dict[str, FieldInfo],
             paths: bool = False) -> None:
    """The fields of ``subject`` as ``source`` describes them now (the previous description
    of the subject is replaced, not merged: a rebirth that drops a unit drops it here).
    ``paths``: the subject's other fields are paths (``Process/Temperature``), called by
    their last element (``Temperature``), so a source need not list the fields it says
    nothing else about."""
    with _lock:
        _described.setdefault(source, {})[subject] = (dict(fields), paths)
        expected = _expected.get(source)
        if not expected:
            return
        for field, info in fields.items():
            unit = expected.get(field)
            if unit and info.unit and unit.casefold() != info.unit.casefold() and \
                    (source, subject, field, info.unit) not in _warned:
                _warned.add((source, subject, field, info.unit))
                _log.warning("%s of %s (source %s): the config's unit %r differs from the "
                             "unit the source gives, %r; posts show %r, the values are not "
                             "converted", field, subject, source, unit, info.unit, unit)


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
