"""OPC UA values as detector fields, and the positions that make their ids stable.

A detector compares plain values (``"FAULT"``, ``86.5``), so a Variant's value is turned into
JSON: numbers and strings stay, a LocalizedText is its text, an enumeration its number, a
DateTime its ISO string, arrays lists. A value that has no plain form (a structure the server
did not describe) raises :class:`Unreadable` and the notification goes to quarantine.
"""

from __future__ import annotations

import enum
import math
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

__all__ = ["Unreadable", "plain", "position"]


class Unreadable(ValueError):
    """A value floorstream cannot turn into a field."""


def plain(value: Any, depth: int = 0) -> Any:
    """The value as detectors and templates see it (JSON types only)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise Unreadable(f"{value} is not a number floorstream can compare")
    if isinstance(value, enum.Enum):
        return plain(value.value, depth + 1)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if depth > 8:
        raise Unreadable("value nested too deep")
    if isinstance(value, list | tuple):
        return [plain(v, depth + 1) for v in value]
    text = getattr(value, "Text", _MISSING)  # LocalizedText
    if text is not _MISSING:
        return text
    name = getattr(value, "Name", _MISSING)  # QualifiedName
    if name is not _MISSING and hasattr(value, "NamespaceIndex"):
        return name
    if hasattr(value, "to_string") and hasattr(value, "Identifier"):  # NodeId
        return value.to_string()
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), int):
        return value.value  # StatusCode
    raise Unreadable(f"a {type(value).__name__} has no plain value (a structure the server "
                     "did not describe?)")


_MISSING = object()


def position(key: str, when: datetime | None, value: Any) -> str:
    """``<subject or item>@<source time>#<value crc>``: the same values read again (a re-read
    after a reconnect that finds them unchanged) give the same position, hence the same
    ids. The crc tells apart two readings a coarse PLC clock stamped with one time (and the
    session's ordinal, ``~N``, a value that came back within it: A → B → A)."""
    stamp = when.isoformat() if when is not None else "-"
    return f"{key}@{stamp}#{zlib.crc32(repr(value).encode()):08x}"
