"""How numbers, units, durations and times read in a post: ``92 °C``, ``42 min``, ``2 h 5
min``, ``10:15 CET``; and the note of a post that compared two states across steps it did
not see."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

__all__ = ["clock", "display_zone", "duration", "in_zone", "lasted", "number", "quantity",
           "steps_unseen", "value"]

#: the plant's display zone while a post is worded (the renderer sets it from ``display:``)
_ZONE: ContextVar[tzinfo] = ContextVar("floorstream_display_zone", default=UTC)


def display_zone() -> tzinfo:
    """The zone times are shown in while a post is worded (``display.timezone``; UTC)."""
    return _ZONE.get()


@contextmanager
def in_zone(zone: tzinfo) -> Iterator[None]:
    """Word posts with times shown in ``zone`` (what the renderer does around a phrase)."""
    token = _ZONE.set(zone)
    try:
        yield
    finally:
        _ZONE.reset(token)


def clock(moment: datetime | str, fmt: str = "%H:%M", zone: tzinfo | None = None) -> str:
    """A moment as the plant reads it, with its zone's abbreviation: ``10:15 CET``. An aware
    time (or ISO text) is converted to ``zone`` (default: :func:`display_zone`); a naive one
    is taken as UTC, as floorstream keeps times."""
    at = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(zone or display_zone())
    return f"{local.strftime(fmt)} {local.tzname() or ''}".rstrip()


def steps_unseen(fields: Mapping[str, Any]) -> str:
    """The note of a post that compares two states across steps it may not have seen (a
    polled table, an SAP status set): " (3 status changes since the last poll; intermediate
    states not seen: polled every 5 s)", " (intermediate states may be missing: polled every
    5 s)"; "" when ``fields`` has no ``intermediate_unseen``."""
    if not fields.get("intermediate_unseen"):
        return ""
    every = fields.get("polled_every_s")
    polled = "" if not isinstance(every, int | float) else \
        f": polled every {every * 1000:.0f} ms" if every < 1 else \
        f": polled every {duration(every)}"
    changes = fields.get("changes")
    if isinstance(changes, int) and changes > 1:
        return f" ({changes} status changes since the last poll; intermediate states not " \
               f"seen{polled})"
    return f" (intermediate states may be missing{polled})"


def number(v: float | int | Decimal) -> str:
    """Plain decimal without noise: 92.0 → 92, 71.346 → 71.35, 0.00123 → 0.00123."""
    if isinstance(v, bool):
        return str(v).lower()
    f = float(v)
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    if abs(f) >= 1:
        return f"{f:.2f}".rstrip("0").rstrip(".")
    return f"{f:.3g}"


def quantity(v: Any, unit: str = "") -> str:
    """A value with its unit: ``92 °C``, ``45%``."""
    text = value(v)
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("%", "°", "‰") else f"{text} {unit}"


def value(v: Any) -> str:
    """Any field value as people read it (None → "(empty)")."""
    if v is None or v == "":
        return "(empty)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float | Decimal):
        return number(v)
    if isinstance(v, datetime):
        return v.strftime("%-d %b %Y %H:%M")
    if isinstance(v, date):
        return v.strftime("%-d %b %Y")
    return str(v)


def lasted(seconds: float) -> str:
    """How long something lasted, for a span that may be shorter than a second: "under 1 s"
    (an alarm of 0.3 s read "0 s", as if it had not happened), else :func:`duration`."""
    return "under 1 s" if seconds < 0.5 else duration(seconds)


def duration(seconds: float) -> str:
    """30 s, 1 min 50 s, 4 min, 2 h 5 min, 3 d 4 h: under 10 min to 5 s, else rounded to the
    nearest of the smallest unit shown. A stop of 1 min 50 s once read "1 min": the rest was
    cut off, nearly half the time for short stops, which are the common ones.
    """
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 600:  # to 5 s: a tick's jitter (61 s) is not worth "1 min 1 s"
        s = (s + 2) // 5 * 5
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    minutes = (s + 30) // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod((s + 1800) // 3600, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
